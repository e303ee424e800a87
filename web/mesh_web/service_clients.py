"""gRPC clients of the mesh's services, as the web app's states use them.

Addresses and the call deadline come from the environment (read on first use,
not at import):

    ANALYTICS_ADDR             host:port of analytics_svc, which also serves AuthService
                               (default 127.0.0.1:50051)
    NOTIFY_ADDR                host:port of notify_svc (default 127.0.0.1:50053)
    LLM_ADDR                   host:port of llm_svc, for its health (default 127.0.0.1:50052)
    REST_BASE_URL              Envoy's REST listener, for its health (default http://127.0.0.1:18080)
    MAIL_API_URL               the mail catcher's (or mailpit's) HTTP API (default http://127.0.0.1:18025)
    MESH_CALL_TIMEOUT_SECONDS  deadline of each call in seconds (default 5)

Calls that need a signed-in caller take ``metadata=bearer_metadata(token)``;
the web app's AuthState (auth_state.py) supplies the token and renews it.

Channels are opened lazily through ``mesh_runtime.clients.open_channel`` (the
one client factory: default deadline, request id), one set per event loop,
because a grpc.aio channel belongs to the loop it was created on and the
backend's workers each run their own loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import urllib.parse
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import grpc
import httpx
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.analytics.v1 import analysis_pb2, analytics_service_pb2, analytics_service_pb2_grpc, dataset_pb2
from mesh.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from mesh.notify.v1 import notify_service_pb2, notify_service_pb2_grpc, subscription_pb2
from mesh_runtime.clients import open_channel
from mesh_runtime.config import ConfigError, load_settings, parse_float, parse_port, positive, setting
from mesh_runtime.errors import DeadlineExceeded, FailedPrecondition, MeshError, Unavailable, from_rpc_error


def parse_grpc_target(raw: str) -> str:
    """A ``host:port`` address (``[::1]:50051`` for IPv6), as given."""
    value = raw.strip()
    host, sep, port = value.rpartition(":")
    if not sep or not host.strip("[]"):
        raise ValueError(f"expected HOST:PORT, got {raw!r}")
    try:
        parse_port(port)
    except ValueError:
        raise ValueError(f"expected HOST:PORT with a numeric port, got {raw!r}") from None
    return value


def parse_http_url(raw: str) -> str:
    """An http(s) URL without a trailing slash."""
    value = raw.strip().rstrip("/")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http:// or https:// URL, got {raw!r}")
    return value


@dataclasses.dataclass(frozen=True)
class ServiceSettings:
    """Where the services are and how long the web app waits for them."""

    analytics_addr: str = setting(
        "ANALYTICS_ADDR", "127.0.0.1:50051", parse_grpc_target, "host:port of the analytics gRPC service."
    )
    notify_addr: str = setting(
        "NOTIFY_ADDR", "127.0.0.1:50053", parse_grpc_target, "host:port of the notify gRPC service."
    )
    llm_addr: str = setting("LLM_ADDR", "127.0.0.1:50052", parse_grpc_target, "host:port of the LLM gRPC service.")
    rest_base_url: str = setting(
        "REST_BASE_URL", "http://127.0.0.1:18080", parse_http_url, "Envoy's REST listener (its health is shown)."
    )
    mail_api_url: str = setting(
        "MAIL_API_URL", "http://127.0.0.1:18025", parse_http_url, "The mail catcher's (mailpit-compatible) HTTP API."
    )
    call_timeout_seconds: float = setting(
        "MESH_CALL_TIMEOUT_SECONDS", 5.0, positive(parse_float), "Deadline of each call to a service, in seconds."
    )


class ServiceClients:
    """The web app's channels and stubs for one event loop, opened on first use."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def call_timeout(self) -> float:
        """The deadline, in seconds, to pass with every call."""
        return self.settings.call_timeout_seconds

    def _channel(self, target: str) -> grpc.aio.Channel:
        channel = self._channels.get(target)
        if channel is None:
            channel = open_channel(target, default_timeout=self.settings.call_timeout_seconds)
            self._channels[target] = channel
        return channel

    def analytics(self) -> analytics_service_pb2_grpc.AnalyticsServiceStub:
        """A stub of AnalyticsService."""
        return analytics_service_pb2_grpc.AnalyticsServiceStub(self._channel(self.settings.analytics_addr))

    def auth(self) -> auth_service_pb2_grpc.AuthServiceStub:
        """A stub of AuthService, which the analytics service serves."""
        return auth_service_pb2_grpc.AuthServiceStub(self._channel(self.settings.analytics_addr))

    def notify(self) -> notify_service_pb2_grpc.NotifyServiceStub:
        """A stub of NotifyService."""
        return notify_service_pb2_grpc.NotifyServiceStub(self._channel(self.settings.notify_addr))

    def health(self, target: str) -> health_pb2_grpc.HealthStub:
        """A stub of the standard health service at ``target``."""
        return health_pb2_grpc.HealthStub(self._channel(target))

    def discard_channel(self, target: str) -> None:
        """Close the channel to ``target``; the next call opens a fresh one.

        A channel that failed to connect waits out a growing reconnect backoff
        (up to two minutes) and fails calls fast meanwhile; a fresh channel
        connects at once, so Refresh works as soon as the service is back.
        """
        channel = self._channels.pop(target, None)
        if channel is not None:
            # Calls other sessions still have on it may finish within their deadline.
            closing = asyncio.create_task(channel.close(grace=self.call_timeout))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Close every channel opened so far."""
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()


_clients_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ServiceClients] = weakref.WeakKeyDictionary()


def service_clients() -> ServiceClients:
    """The clients of the running event loop; reads the settings on first use.

    A bad setting raises FailedPrecondition naming the variable, so a page
    shows it in its banner like any other failed call.
    """
    loop = asyncio.get_running_loop()
    clients = _clients_by_loop.get(loop)
    if clients is None:
        try:
            settings = load_settings(ServiceSettings)
        except ConfigError as exc:
            raise FailedPrecondition(f"web app misconfigured: {exc}") from None
        clients = ServiceClients(settings)
        _clients_by_loop[loop] = clients
    return clients


CallMetadata = tuple[tuple[str, str], ...]
"""gRPC metadata sent with a call."""


def bearer_metadata(access_token: str) -> CallMetadata:
    """The metadata that signs a call in with ``access_token``."""
    return (("authorization", f"Bearer {access_token}"),)


async def _unary_call(
    clients: ServiceClients,
    target: str,
    method: Callable[..., Awaitable[Any]],
    request: Message,
    metadata: CallMetadata,
) -> Any:
    """The response of one unary call with the clients' deadline, or its typed MeshError
    (Unavailable when the service is down, DeadlineExceeded when it does not answer in time)."""
    try:
        return await method(request, timeout=clients.call_timeout, metadata=metadata)
    except grpc.RpcError as error:
        raise _call_error(clients, target, error, clients.call_timeout) from None


def _call_error(clients: ServiceClients, target: str, error: grpc.RpcError, timeout: float) -> MeshError:
    """The typed MeshError of a failed call to ``target``; a channel that could
    not connect is dropped, so the next call connects afresh."""
    code = error.code()  # type: ignore[attr-defined]
    if code == grpc.StatusCode.UNAVAILABLE:
        clients.discard_channel(target)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"no answer within {timeout:g} s")
    return from_rpc_error(error)


async def login(username: str, password: str) -> auth_service_pb2.Session:
    """A new session from AuthService.Login; Unauthenticated for wrong credentials,
    ResourceExhausted (with RetryInfo) while sign-ins for the username are throttled."""
    clients = service_clients()
    request = auth_service_pb2.LoginRequest(username=username, password=password)
    response: auth_service_pb2.LoginResponse = await _unary_call(
        clients, clients.settings.analytics_addr, clients.auth().Login, request, ()
    )
    return response.session


async def refresh(refresh_token: str) -> auth_service_pb2.Session:
    """A renewed session from AuthService.Refresh; ``refresh_token`` stops working.
    Unauthenticated when the session has ended."""
    clients = service_clients()
    request = auth_service_pb2.RefreshRequest(refresh_token=refresh_token)
    response: auth_service_pb2.RefreshResponse = await _unary_call(
        clients, clients.settings.analytics_addr, clients.auth().Refresh, request, ()
    )
    return response.session


async def logout(refresh_token: str, metadata: CallMetadata) -> None:
    """End the session of ``refresh_token`` with AuthService.Logout."""
    clients = service_clients()
    request = auth_service_pb2.LogoutRequest(refresh_token=refresh_token)
    await _unary_call(clients, clients.settings.analytics_addr, clients.auth().Logout, request, metadata)


async def list_datasets(
    page_size: int, page_token: str = "", *, metadata: CallMetadata = ()
) -> analytics_service_pb2.ListDatasetsResponse:
    """One page of datasets from AnalyticsService.ListDatasets."""
    clients = service_clients()
    request = analytics_service_pb2.ListDatasetsRequest(page_size=page_size, page_token=page_token)
    response: analytics_service_pb2.ListDatasetsResponse = await _unary_call(
        clients, clients.settings.analytics_addr, clients.analytics().ListDatasets, request, metadata
    )
    return response


async def create_dataset(name: str, description: str, unit: str, *, metadata: CallMetadata) -> dataset_pb2.Dataset:
    """The dataset AnalyticsService.CreateDataset stored; InvalidArgument (with
    field violations) for a bad name or unit, AlreadyExists for a taken name."""
    clients = service_clients()
    request = analytics_service_pb2.CreateDatasetRequest(
        dataset=dataset_pb2.Dataset(name=name, description=description, unit=unit)
    )
    response: analytics_service_pb2.CreateDatasetResponse = await _unary_call(
        clients, clients.settings.analytics_addr, clients.analytics().CreateDataset, request, metadata
    )
    return response.dataset


async def update_dataset(
    dataset: dataset_pb2.Dataset, fields: list[str], *, metadata: CallMetadata
) -> dataset_pb2.Dataset:
    """The dataset after AnalyticsService.UpdateDataset changed ``fields`` of it."""
    clients = service_clients()
    request = analytics_service_pb2.UpdateDatasetRequest(
        dataset=dataset, update_mask=field_mask_pb2.FieldMask(paths=fields)
    )
    response: analytics_service_pb2.UpdateDatasetResponse = await _unary_call(
        clients, clients.settings.analytics_addr, clients.analytics().UpdateDataset, request, metadata
    )
    return response.dataset


async def delete_dataset(dataset_id: str, *, metadata: CallMetadata) -> None:
    """Delete a dataset and its points with AnalyticsService.DeleteDataset."""
    clients = service_clients()
    request = analytics_service_pb2.DeleteDatasetRequest(id=dataset_id)
    await _unary_call(clients, clients.settings.analytics_addr, clients.analytics().DeleteDataset, request, metadata)


async def get_dataset(dataset_id: str, *, metadata: CallMetadata) -> dataset_pb2.Dataset:
    """One dataset from AnalyticsService.GetDataset."""
    clients = service_clients()
    request = analytics_service_pb2.GetDatasetRequest(id=dataset_id)
    response: analytics_service_pb2.GetDatasetResponse = await _unary_call(
        clients, clients.settings.analytics_addr, clients.analytics().GetDataset, request, metadata
    )
    return response.dataset


async def import_csv(dataset_id: str, csv: bytes, *, metadata: CallMetadata) -> analytics_service_pb2.ImportCsvResponse:
    """What AnalyticsService.ImportCsv stored and rejected (by line) of ``csv``.

    A big file takes longer than an ordinary call: the deadline grows with its size."""
    clients = service_clients()
    request = analytics_service_pb2.ImportCsvRequest(dataset_id=dataset_id, csv=csv)
    timeout = clients.call_timeout + len(csv) / 1_000_000
    try:
        response: analytics_service_pb2.ImportCsvResponse = await clients.analytics().ImportCsv(
            request, timeout=timeout, metadata=metadata
        )
    except grpc.RpcError as error:
        raise _call_error(clients, clients.settings.analytics_addr, error, timeout) from None
    return response


async def append_points(
    dataset_id: str, timestamps_us: list[int], values: list[float], *, metadata: CallMetadata
) -> analytics_service_pb2.AppendPointsResponse:
    """What AnalyticsService.AppendPoints stored of the points."""
    clients = service_clients()
    request = analytics_service_pb2.AppendPointsRequest(
        dataset_id=dataset_id, timestamps_us=timestamps_us, values=values
    )
    response: analytics_service_pb2.AppendPointsResponse = await _unary_call(
        clients, clients.settings.analytics_addr, clients.analytics().AppendPoints, request, metadata
    )
    return response


# --- schedules and results ------------------------------------------------------


async def list_schedules(dataset_id: str, *, metadata: CallMetadata) -> list[analysis_pb2.Schedule]:
    """The schedules of a dataset (all of them when ``dataset_id`` is empty), up to 1,000."""
    clients = service_clients()
    request = analytics_service_pb2.ListSchedulesRequest(dataset_id=dataset_id, page_size=1000)
    response: analytics_service_pb2.ListSchedulesResponse = await _unary_call(
        clients, clients.settings.analytics_addr, clients.analytics().ListSchedules, request, metadata
    )
    return list(response.schedules)


async def create_schedule(schedule: analysis_pb2.Schedule, *, metadata: CallMetadata) -> analysis_pb2.Schedule:
    """The schedule AnalyticsService.CreateSchedule stored."""
    clients = service_clients()
    request = analytics_service_pb2.CreateScheduleRequest(schedule=schedule)
    response: analytics_service_pb2.CreateScheduleResponse = await _unary_call(
        clients, clients.settings.analytics_addr, clients.analytics().CreateSchedule, request, metadata
    )
    return response.schedule


async def update_schedule(
    schedule: analysis_pb2.Schedule, fields: list[str], *, metadata: CallMetadata
) -> analysis_pb2.Schedule:
    """The schedule after AnalyticsService.UpdateSchedule changed ``fields`` of it."""
    clients = service_clients()
    request = analytics_service_pb2.UpdateScheduleRequest(
        schedule=schedule, update_mask=field_mask_pb2.FieldMask(paths=fields)
    )
    response: analytics_service_pb2.UpdateScheduleResponse = await _unary_call(
        clients, clients.settings.analytics_addr, clients.analytics().UpdateSchedule, request, metadata
    )
    return response.schedule


async def delete_schedule(schedule_id: str, *, metadata: CallMetadata) -> None:
    """Delete a schedule with AnalyticsService.DeleteSchedule."""
    clients = service_clients()
    request = analytics_service_pb2.DeleteScheduleRequest(id=schedule_id)
    await _unary_call(clients, clients.settings.analytics_addr, clients.analytics().DeleteSchedule, request, metadata)


async def run_analysis(
    dataset_id: str,
    kind: int,
    parameters: analysis_pb2.AnalysisParameters | None = None,
    *,
    metadata: CallMetadata,
) -> analysis_pb2.Result:
    """The (pending) result AnalyticsService.RunAnalysis queued."""
    clients = service_clients()
    request = analytics_service_pb2.RunAnalysisRequest(dataset_id=dataset_id, kind=kind, parameters=parameters)  # type: ignore[arg-type]
    response: analytics_service_pb2.RunAnalysisResponse = await _unary_call(
        clients, clients.settings.analytics_addr, clients.analytics().RunAnalysis, request, metadata
    )
    return response.result


async def get_result(
    result_id: str, series_points: int, *, metadata: CallMetadata
) -> analytics_service_pb2.GetResultResponse:
    """A result and its series reduced to ``series_points`` points, from AnalyticsService.GetResult."""
    clients = service_clients()
    request = analytics_service_pb2.GetResultRequest(id=result_id, series_points=series_points)
    response: analytics_service_pb2.GetResultResponse = await _unary_call(
        clients, clients.settings.analytics_addr, clients.analytics().GetResult, request, metadata
    )
    return response


async def list_results(
    request: analytics_service_pb2.ListResultsRequest, *, metadata: CallMetadata
) -> analytics_service_pb2.ListResultsResponse:
    """One page of results from AnalyticsService.ListResults."""
    clients = service_clients()
    response: analytics_service_pb2.ListResultsResponse = await _unary_call(
        clients, clients.settings.analytics_addr, clients.analytics().ListResults, request, metadata
    )
    return response


async def watch_results(
    dataset_id: str, window_seconds: float, *, metadata: CallMetadata
) -> AsyncGenerator[analysis_pb2.Result | None, None]:
    """Results as they are created or change, from AnalyticsService.WatchResults,
    for at most ``window_seconds`` (the stream's deadline; the caller watches again).

    The first item is None, once the service has answered with its headers: from
    then on no change is missed. Ends quietly at the deadline; other failures
    raise their MeshError."""
    clients = service_clients()
    target = clients.settings.analytics_addr
    request = analytics_service_pb2.WatchResultsRequest(dataset_id=dataset_id)
    call = clients.analytics().WatchResults(request, timeout=window_seconds, metadata=metadata)
    try:
        await call.initial_metadata()
        if not call.done():
            yield None
        async for response in call:
            yield response.result
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:  # type: ignore[attr-defined]
            return
        raise _call_error(clients, target, error, window_seconds) from None
    finally:
        call.cancel()


ASK_TIMEOUT_SECONDS = 120.0
"""Deadline of a whole streamed answer: a model may write for a while."""


async def ask_about_result(
    result_id: str, question: str, *, metadata: CallMetadata
) -> AsyncGenerator[analytics_service_pb2.AskAboutResultResponse, None]:
    """The pieces of the LLM's answer to ``question`` about a result, as
    AnalyticsService.AskAboutResult streams them."""
    clients = service_clients()
    target = clients.settings.analytics_addr
    request = analytics_service_pb2.AskAboutResultRequest(result_id=result_id, question=question)
    call = clients.analytics().AskAboutResult(request, timeout=ASK_TIMEOUT_SECONDS, metadata=metadata)
    try:
        async for response in call:
            yield response
    except grpc.RpcError as error:
        raise _call_error(clients, target, error, ASK_TIMEOUT_SECONDS) from None
    finally:
        call.cancel()


# --- notify ---------------------------------------------------------------------


async def list_subscriptions(*, metadata: CallMetadata) -> list[subscription_pb2.Subscription]:
    """Subscriptions from NotifyService.ListSubscriptions, up to 1,000, newest first."""
    clients = service_clients()
    request = notify_service_pb2.ListSubscriptionsRequest(page_size=1000)
    response: notify_service_pb2.ListSubscriptionsResponse = await _unary_call(
        clients, clients.settings.notify_addr, clients.notify().ListSubscriptions, request, metadata
    )
    return list(response.subscriptions)


async def create_subscription(
    subscription: subscription_pb2.Subscription, *, metadata: CallMetadata
) -> subscription_pb2.Subscription:
    """The subscription NotifyService.CreateSubscription stored."""
    clients = service_clients()
    request = notify_service_pb2.CreateSubscriptionRequest(subscription=subscription)
    response: notify_service_pb2.CreateSubscriptionResponse = await _unary_call(
        clients, clients.settings.notify_addr, clients.notify().CreateSubscription, request, metadata
    )
    return response.subscription


async def update_subscription(
    subscription: subscription_pb2.Subscription, fields: list[str], *, metadata: CallMetadata
) -> subscription_pb2.Subscription:
    """The subscription after NotifyService.UpdateSubscription changed ``fields`` of it."""
    clients = service_clients()
    request = notify_service_pb2.UpdateSubscriptionRequest(
        subscription=subscription, update_mask=field_mask_pb2.FieldMask(paths=fields)
    )
    response: notify_service_pb2.UpdateSubscriptionResponse = await _unary_call(
        clients, clients.settings.notify_addr, clients.notify().UpdateSubscription, request, metadata
    )
    return response.subscription


async def delete_subscription(subscription_id: str, *, metadata: CallMetadata) -> None:
    """Delete a subscription with NotifyService.DeleteSubscription."""
    clients = service_clients()
    request = notify_service_pb2.DeleteSubscriptionRequest(id=subscription_id)
    await _unary_call(clients, clients.settings.notify_addr, clients.notify().DeleteSubscription, request, metadata)


async def list_deliveries(*, metadata: CallMetadata, page_size: int = 100) -> list[subscription_pb2.Delivery]:
    """The latest deliveries (the e-mail log) from NotifyService.ListDeliveries, newest first."""
    clients = service_clients()
    request = notify_service_pb2.ListDeliveriesRequest(page_size=page_size)
    response: notify_service_pb2.ListDeliveriesResponse = await _unary_call(
        clients, clients.settings.notify_addr, clients.notify().ListDeliveries, request, metadata
    )
    return list(response.deliveries)


async def send_test_email(subscription_id: str, *, metadata: CallMetadata) -> subscription_pb2.Delivery:
    """The delivery of a test e-mail NotifyService.SendTestEmail sent."""
    clients = service_clients()
    request = notify_service_pb2.SendTestEmailRequest(id=subscription_id)
    response: notify_service_pb2.SendTestEmailResponse = await _unary_call(
        clients, clients.settings.notify_addr, clients.notify().SendTestEmail, request, metadata
    )
    return response.delivery


# --- health and the mailbox -------------------------------------------------------

SERVING = "serving"
NOT_SERVING = "not serving"


async def grpc_health(service: str) -> str:
    """SERVING or NOT_SERVING from the standard health service of ``service``
    ("analytics", "llm" or "notify"); Unavailable when it cannot be reached."""
    clients = service_clients()
    target = {
        "analytics": clients.settings.analytics_addr,
        "llm": clients.settings.llm_addr,
        "notify": clients.settings.notify_addr,
    }[service]
    response: health_pb2.HealthCheckResponse = await _unary_call(
        clients, target, clients.health(target).Check, health_pb2.HealthCheckRequest(), ()
    )
    return SERVING if response.status == health_pb2.HealthCheckResponse.SERVING else NOT_SERVING


async def gateway_health() -> str:
    """SERVING when Envoy answers on its REST listener (a request without a
    token is refused at the edge, which proves the listener and its JWT
    filter work); Unavailable when it cannot be reached."""
    clients = service_clients()
    url = f"{clients.settings.rest_base_url}/v1/datasets"
    response = await _http_get(clients, url)
    return SERVING if response.status_code in (200, 401, 403) else NOT_SERVING


async def mailbox_messages(limit: int = 100) -> dict[str, Any]:
    """The newest ``limit`` messages the mail catcher (or mailpit) captured:
    its GET /api/v1/messages answer (``total`` and ``messages``)."""
    clients = service_clients()
    response = await _http_get(clients, f"{clients.settings.mail_api_url}/api/v1/messages?limit={limit}")
    _raise_for_http_status(response)
    body: dict[str, Any] = response.json()
    return body


async def mailbox_message(message_id: str) -> dict[str, Any]:
    """One captured message, with its text and HTML bodies (GET /api/v1/message/ID)."""
    clients = service_clients()
    quoted = urllib.parse.quote(message_id, safe="")
    response = await _http_get(clients, f"{clients.settings.mail_api_url}/api/v1/message/{quoted}")
    _raise_for_http_status(response)
    body: dict[str, Any] = response.json()
    return body


async def mailbox_delete_all() -> None:
    """Delete every captured message (DELETE /api/v1/messages)."""
    clients = service_clients()
    try:
        async with httpx.AsyncClient(timeout=clients.call_timeout) as http:
            response = await http.delete(f"{clients.settings.mail_api_url}/api/v1/messages")
    except httpx.TimeoutException:
        raise DeadlineExceeded(f"no answer within {clients.call_timeout:g} s") from None
    except httpx.HTTPError as error:
        raise Unavailable(str(error) or type(error).__name__) from None
    _raise_for_http_status(response)


async def _http_get(clients: ServiceClients, url: str) -> httpx.Response:
    try:
        async with httpx.AsyncClient(timeout=clients.call_timeout) as http:
            return await http.get(url)
    except httpx.TimeoutException:
        raise DeadlineExceeded(f"no answer within {clients.call_timeout:g} s") from None
    except httpx.HTTPError as error:
        raise Unavailable(str(error) or type(error).__name__) from None


def _raise_for_http_status(response: httpx.Response) -> None:
    if response.status_code >= 500:
        raise Unavailable(f"HTTP {response.status_code}")
    if response.status_code >= 400:
        error = MeshError(f"HTTP {response.status_code}: {response.text[:200]}")
        raise error
