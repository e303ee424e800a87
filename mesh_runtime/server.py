"""Build and run a service's grpc.aio server: health, reflection, interceptors,
graceful shutdown.

``create_server`` binds a given or free port and returns the server with the
port it got, so tests start real servers on port 0. ``serve_until_stopped``
runs it until SIGTERM/SIGINT, then stops taking new calls and gives the calls
in flight ``grace`` seconds to finish.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.trace import TracerProvider

from mesh_runtime.auth import AuthInterceptor, TokenVerifier
from mesh_runtime.interceptors import (
    ErrorMappingInterceptor,
    InterceptorChain,
    MeshInterceptor,
    MetricsInterceptor,
    RequestLoggingInterceptor,
    ValidationInterceptor,
)
from mesh_runtime.metrics import metrics_enabled
from mesh_runtime.telemetry import tracing_enabled

logger = logging.getLogger("mesh.server")

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ServiceBinding:
    """One gRPC service to register: its full name, the generated ``add_*``
    function and the servicer instance."""

    name: str
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    servicer: Any


@dataclass
class RunningServer:
    """A started server, the port it listens on, and its health servicer.

    The whole server ("") is SERVING from start to shutdown: the process is
    up (liveness). A service can say on its own that it cannot serve well
    for now (``set_service_serving``, e.g. while its reads may be stale):
    its own name is then NOT_SERVING (readiness) until it says otherwise.
    """

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: list[str] = field(default_factory=list)
    degraded: set[str] = field(default_factory=set)
    stopping: bool = False

    def _report(self, name: str, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        # The aio health servicer's set() is a coroutine in some releases.
        result = self.health.set(name, status)
        if asyncio.iscoroutine(result):
            asyncio.ensure_future(result)

    def set_serving(self, serving: bool) -> None:
        """Report every service (and the whole server, "") as (not) serving;
        a degraded service stays NOT_SERVING."""
        for name in ["", *self.service_names]:
            self._report(name, serving and name not in self.degraded)

    def set_service_serving(self, name: str, serving: bool) -> None:
        """Whether service ``name`` can serve for now; ignored once stopping."""
        if serving:
            self.degraded.discard(name)
        else:
            self.degraded.add(name)
        if not self.stopping:
            self._report(name, serving)

    async def stop(self, grace: float) -> None:
        """Refuse new calls at once; let calls in flight finish within ``grace``."""
        self.stopping = True
        self.set_serving(False)
        await self.server.stop(grace)


def default_interceptors(
    verifier: TokenVerifier, tracing: bool | TracerProvider | None = None, metrics: bool | None = None
) -> list[grpc.aio.ServerInterceptor]:
    """The interceptor chain every service runs, outermost first: callers are
    authorized before their requests are validated. With tracing on, a span
    surrounds each whole call (its access-log line included); ``tracing``
    None means on when the process set up tracing (``mesh_runtime.telemetry``),
    a TracerProvider means on with that provider's tracer (a benchmark comparing samplers).
    With metrics on, each call is counted by code and timed, whatever
    refused it (``metrics`` None: on when the process serves ``/metrics``)."""
    chain: list[MeshInterceptor] = []
    if tracing_enabled() if tracing is None else tracing is not False:
        from mesh_runtime.interceptors.tracing import TracingInterceptor

        chain.append(TracingInterceptor(None if isinstance(tracing, bool) else tracing))
    if metrics_enabled() if metrics is None else metrics:
        chain.append(MetricsInterceptor())
    chain += [
        RequestLoggingInterceptor(),
        ErrorMappingInterceptor(),
        AuthInterceptor(verifier),
        ValidationInterceptor(),
    ]
    return [InterceptorChain(chain)]


async def create_server(
    address: str,
    services: Sequence[ServiceBinding],
    *,
    verifier: TokenVerifier,
    reflection_enabled: bool = True,
    tracing: bool | TracerProvider | None = None,
    metrics: bool | None = None,
) -> RunningServer:
    """Create, bind and start a server on ``address`` ("host:port", port may be 0);
    ``tracing`` and ``metrics`` as in ``default_interceptors``."""
    server = grpc.aio.server(
        interceptors=default_interceptors(verifier, tracing, metrics),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    for service in services:
        service.add_to_server(service.servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [s.name for s in services]
    if reflection_enabled:
        reflection.enable_server_reflection(
            [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {address}: {exc}") from None
    if port == 0:
        raise OSError(f"cannot listen on {address}: address in use or not available")
    await server.start()
    running = RunningServer(server, port, health_servicer, names)
    running.set_serving(True)
    return running


async def serve_until_stopped(
    running: RunningServer,
    grace: float,
    on_stop: Callable[[], Any] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server_done = asyncio.ensure_future(running.server.wait_for_termination())
    stop_requested = asyncio.ensure_future(stop.wait())
    await asyncio.wait({server_done, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
    logger.info("shutting down", extra={"grace_seconds": grace})
    await running.stop(grace)
    if on_stop is not None:
        result = on_stop()
        if asyncio.iscoroutine(result):
            await result
    stop_requested.cancel()
    await asyncio.gather(server_done, return_exceptions=True)
    logger.info("stopped")
