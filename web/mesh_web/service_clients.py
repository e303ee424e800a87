"""gRPC clients of the mesh's services, as the web app's states use them.

Addresses and the call deadline come from the environment (read on first use,
not at import):

    ANALYTICS_ADDR             host:port of analytics_svc, which also serves AuthService
                               (default 127.0.0.1:50051)
    NOTIFY_ADDR                host:port of notify_svc (default 127.0.0.1:50053)
    LLM_ADDR                   host:port of llm_svc, for its health (default 127.0.0.1:50052)
    REST_BASE_URL              Envoy's REST listener, for its health (default http://127.0.0.1:18080)
    MAIL_API_URL               the mail catcher's (or mailpit's) HTTP API (default http://127.0.0.1:18025)
    REFLEX_REDIS_URL           Redis/Valkey keeping the sessions, shared by the replicas (Reflex reads it)
    WEB_BASE_URL               the web app's public address; its origin is the only one allowed
                               (http_security.py; default http://127.0.0.1:3000)
    MESH_CALL_TIMEOUT_SECONDS  deadline of each call in seconds (default 5)
    WEB_TRACE_URL              a trace viewer's URL of one trace, {trace_id} for the id (results
                               link to their trace; default empty: no link)

Every unary call goes through ``call(service, method, request, metadata)``
(e.g. ``call("analytics", "GetDataset", GetDatasetRequest(id=...), md)``):
one deadline, one error mapping, for every RPC. A page hands
``rpc(service, method, request)`` to its AuthState, which supplies the
signed-in caller's ``bearer_metadata(token)`` and renews the token
(auth_state.py). The two streams and the HTTP APIs (health, mailbox) have
functions of their own.

Channels are opened lazily through ``mesh_runtime.clients.open_channel`` (the
one client factory: default deadline, request id), one set per event loop,
because a grpc.aio channel belongs to the loop it was created on and the
backend's workers each run their own loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import urllib.parse
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Literal

import grpc
import httpx
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.analytics.v1 import analysis_pb2, analytics_service_pb2, analytics_service_pb2_grpc
from mesh.auth.v1 import auth_service_pb2_grpc
from mesh.notify.v1 import notify_service_pb2_grpc
from mesh_runtime.clients import open_channel
from mesh_runtime.config import ConfigError, load_settings, parse_float, parse_http_url, parse_port, positive, setting
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


TRACE_ID_PLACEHOLDER = "{trace_id}"


def parse_trace_url_template(raw: str) -> str:
    """An http(s) URL holding ``{trace_id}`` once (WEB_TRACE_URL)."""
    value = raw.strip()
    if value.count(TRACE_ID_PLACEHOLDER) != 1:
        raise ValueError(f"expected an http(s) URL with {TRACE_ID_PLACEHOLDER} in it, got {raw!r}")
    parse_http_url(value.replace(TRACE_ID_PLACEHOLDER, "0" * 32))
    return value


def parse_redis_url(raw: str) -> str:
    """A redis:// or rediss:// URL, or '' (no shared store)."""
    value = raw.strip()
    if value and urllib.parse.urlsplit(value).scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"expected a redis:// or rediss:// URL, got {raw!r}")
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
    web_base_url: str = setting(
        "WEB_BASE_URL",
        "http://127.0.0.1:3000",
        parse_http_url,
        "The web app's public address: its origin is the only one given the event websocket and CORS.",
    )
    redis_url: str = setting(
        "REFLEX_REDIS_URL",
        "",
        parse_redis_url,
        "Redis/Valkey keeping the web app's sessions (Reflex reads it); empty: the process's memory, one replica.",
    )
    mail_api_url: str = setting(
        "MAIL_API_URL", "http://127.0.0.1:18025", parse_http_url, "The mail catcher's (mailpit-compatible) HTTP API."
    )
    call_timeout_seconds: float = setting(
        "MESH_CALL_TIMEOUT_SECONDS", 5.0, positive(parse_float), "Deadline of each call to a service, in seconds."
    )
    trace_url_template: str = setting(
        "WEB_TRACE_URL",
        "",
        parse_trace_url_template,
        "A trace viewer's URL of one trace, {trace_id} standing for the id; empty: results show no trace link.",
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

SignedCall = Callable[[CallMetadata], Awaitable[Any]]
"""A call waiting for the metadata that signs it in (see ``rpc``)."""


def bearer_metadata(access_token: str) -> CallMetadata:
    """The metadata that signs a call in with ``access_token``."""
    return (("authorization", f"Bearer {access_token}"),)


Service = Literal["analytics", "auth", "notify"]
"""A service the web app calls; AuthService is served by analytics."""


def _stub(clients: ServiceClients, service: Service) -> tuple[str, Any]:
    """The address of ``service`` and a stub of it."""
    if service == "notify":
        return clients.settings.notify_addr, clients.notify()
    target = clients.settings.analytics_addr
    return target, clients.auth() if service == "auth" else clients.analytics()


async def call(
    service: Service, method: str, request: Message, metadata: CallMetadata = (), *, timeout: float | None = None
) -> Any:
    """The response of the unary RPC ``method`` (e.g. "GetDataset") of
    ``service``, made with ``metadata`` and the clients' deadline (or
    ``timeout``), or its typed MeshError: Unavailable when the service is down,
    DeadlineExceeded when it does not answer in time, and the service's own
    errors (NotFound, InvalidArgument with field violations, ...)."""
    clients = service_clients()
    target, stub = _stub(clients, service)
    return await _unary_call(clients, target, getattr(stub, method), request, metadata, timeout)


def rpc(service: Service, method: str, request: Message, *, timeout: float | None = None) -> SignedCall:
    """The call of ``method`` with ``request``, to be made with a signed-in
    caller's metadata (AuthState._call_signed_in and _call_all_signed_in)."""
    return functools.partial(call, service, method, request, timeout=timeout)


async def _unary_call(
    clients: ServiceClients,
    target: str,
    method: Callable[..., Awaitable[Any]],
    request: Message,
    metadata: CallMetadata,
    timeout: float | None = None,
) -> Any:
    deadline = timeout or clients.call_timeout
    try:
        return await method(request, timeout=deadline, metadata=metadata)
    except grpc.RpcError as error:
        raise _call_error(clients, target, error, deadline) from None


def _call_error(clients: ServiceClients, target: str, error: grpc.RpcError, timeout: float) -> MeshError:
    """The typed MeshError of a failed call to ``target``; a channel that could
    not connect is dropped, so the next call connects afresh."""
    code = error.code()  # type: ignore[attr-defined]
    if code == grpc.StatusCode.UNAVAILABLE:
        clients.discard_channel(target)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"no answer within {timeout:g} s")
    return from_rpc_error(error)


def import_csv_timeout(csv: bytes) -> float:
    """The deadline of ImportCsv for ``csv``: a big file takes longer than an
    ordinary call, so the clients' deadline grows by a second a megabyte."""
    return service_clients().call_timeout + len(csv) / 1_000_000


# --- streams ---------------------------------------------------------------------


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
    stream = clients.analytics().WatchResults(request, timeout=window_seconds, metadata=metadata)
    try:
        await stream.initial_metadata()
        if not stream.done():
            yield None
        async for response in stream:
            yield response.result
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:  # type: ignore[attr-defined]
            return
        raise _call_error(clients, target, error, window_seconds) from None
    finally:
        stream.cancel()


EXPORT_TIMEOUT_SECONDS = 120.0
"""Deadline of a whole CSV export: a long range takes a while to read."""


async def export_points(
    request: analytics_service_pb2.ExportPointsRequest, *, metadata: CallMetadata
) -> AsyncGenerator[bytes, None]:
    """The CSV text of a range of points, piece by piece, as
    AnalyticsService.ExportPoints streams it."""
    clients = service_clients()
    target = clients.settings.analytics_addr
    stream = clients.analytics().ExportPoints(request, timeout=EXPORT_TIMEOUT_SECONDS, metadata=metadata)
    try:
        async for body in stream:
            yield body.data
    except grpc.RpcError as error:
        raise _call_error(clients, target, error, EXPORT_TIMEOUT_SECONDS) from None
    finally:
        stream.cancel()


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
    stream = clients.analytics().AskAboutResult(request, timeout=ASK_TIMEOUT_SECONDS, metadata=metadata)
    try:
        async for response in stream:
            yield response
    except grpc.RpcError as error:
        raise _call_error(clients, target, error, ASK_TIMEOUT_SECONDS) from None
    finally:
        stream.cancel()


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
    response = await _http(clients, "GET", f"{clients.settings.rest_base_url}/v1/datasets")
    return SERVING if response.status_code in (200, 401, 403) else NOT_SERVING


async def mailbox_messages(limit: int = 100) -> dict[str, Any]:
    """The newest ``limit`` messages the mail catcher (or mailpit) captured:
    its GET /api/v1/messages answer (``total`` and ``messages``)."""
    body: dict[str, Any] = (await _mail_api("GET", f"/api/v1/messages?limit={limit}")).json()
    return body


async def mailbox_message(message_id: str) -> dict[str, Any]:
    """One captured message, with its text and HTML bodies (GET /api/v1/message/ID)."""
    quoted = urllib.parse.quote(message_id, safe="")
    body: dict[str, Any] = (await _mail_api("GET", f"/api/v1/message/{quoted}")).json()
    return body


async def mailbox_delete_all() -> None:
    """Delete every captured message (DELETE /api/v1/messages)."""
    await _mail_api("DELETE", "/api/v1/messages")


async def _mail_api(method: str, path: str) -> httpx.Response:
    """The mail API's answer to ``method path``; Unavailable for a 5xx, MeshError for another refusal."""
    clients = service_clients()
    response = await _http(clients, method, clients.settings.mail_api_url + path)
    if response.status_code >= 500:
        raise Unavailable(f"HTTP {response.status_code}")
    if response.status_code >= 400:
        raise MeshError(f"HTTP {response.status_code}: {response.text[:200]}")
    return response


async def _http(clients: ServiceClients, method: str, url: str) -> httpx.Response:
    try:
        async with httpx.AsyncClient(timeout=clients.call_timeout) as http:
            return await http.request(method, url)
    except httpx.TimeoutException:
        raise DeadlineExceeded(f"no answer within {clients.call_timeout:g} s") from None
    except httpx.HTTPError as error:
        raise Unavailable(str(error) or type(error).__name__) from None
