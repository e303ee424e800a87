"""gRPC clients of the mesh's services, as the web app's states use them.

Addresses and the call deadline come from the environment (read on first use,
not at import):

    ANALYTICS_ADDR             host:port of analytics_svc, which also serves AuthService
                               (default 127.0.0.1:50051)
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
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from mesh.analytics.v1 import analytics_service_pb2, analytics_service_pb2_grpc, dataset_pb2
from mesh.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from mesh_runtime.clients import open_channel
from mesh_runtime.config import ConfigError, load_settings, parse_float, parse_port, positive, setting
from mesh_runtime.errors import DeadlineExceeded, FailedPrecondition, from_rpc_error


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


@dataclasses.dataclass(frozen=True)
class ServiceSettings:
    """Where the services are and how long the web app waits for them."""

    analytics_addr: str = setting(
        "ANALYTICS_ADDR", "127.0.0.1:50051", parse_grpc_target, "host:port of the analytics gRPC service."
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
        code = error.code()  # type: ignore[attr-defined]
        if code == grpc.StatusCode.UNAVAILABLE:
            clients.discard_channel(target)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise DeadlineExceeded(f"no answer within {clients.call_timeout:g} s") from None
        raise from_rpc_error(error) from None


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
