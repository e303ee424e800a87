"""The ``python -m`` entry point of background processes (schedulers, workers).

They serve no API, only the standard gRPC health service on MESH_HEALTH_PORT
(when set), so containers and probes check them like the services, and
their metrics on METRICS_PORT (when set). SIGTERM or
SIGINT sets the ``stop`` event; the process's main coroutine finishes its
work in hand and returns.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from mesh_runtime.config import (
    ConfigError,
    RuntimeSettings,
    exit_on_config_error,
    load_settings,
    parse_port,
    setting,
)
from mesh_runtime.errors import MeshError
from mesh_runtime.metrics import start_metrics_endpoint
from mesh_runtime.structured_logging import configure_logging
from mesh_runtime.telemetry import setup_telemetry

logger = logging.getLogger("mesh.background")


@dataclass(frozen=True)
class BackgroundSettings(RuntimeSettings):
    """Settings every background process has."""

    health_port: int = setting(
        "MESH_HEALTH_PORT",
        0,
        parse_port,
        "Schedulers and workers serve gRPC health on this port; 0: not at all.",
    )


S = TypeVar("S", bound=BackgroundSettings)


class Health:
    """The process's health as the gRPC health service reports it."""

    def __init__(self) -> None:
        self.servicer = health.aio.HealthServicer()

    async def set(self, serving: bool) -> None:
        """Report SERVING or NOT_SERVING (for the overall "" service)."""
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self.servicer.set("", status)


async def _health_server(host: str, port: int, state: Health) -> grpc.aio.Server:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(state.servicer, server)
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"cannot listen on {host}:{port} (MESH_HEALTH_PORT)")
    await server.start()
    return server


Main = Callable[[S, asyncio.Event, Health], Awaitable[None]]


def run_background(name: str, settings_cls: type[S], main: Main[S]) -> None:
    """Run background process ``name`` until SIGTERM/SIGINT."""
    with exit_on_config_error(name):
        settings = load_settings(settings_cls)
    configure_logging(name, settings.log_level, settings.log_format)
    setup_telemetry(name)

    async def supervise() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        start_metrics_endpoint(settings.grpc_host, settings.metrics_port)
        state = Health()
        await state.set(False)
        server = await _health_server(settings.grpc_host, settings.health_port, state) if settings.health_port else None
        try:
            logger.info("started", extra={"health_port": settings.health_port or None})
            await main(settings, stop, state)
        finally:
            if server is not None:
                await server.stop(1)
            logger.info("stopped")

    try:
        asyncio.run(supervise())
    except ConfigError as exc:
        print(f"{name}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except (OSError, MeshError, RuntimeError) as exc:
        message = exc.message if isinstance(exc, MeshError) else str(exc)
        print(f"{name}: cannot start: {message}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        pass
