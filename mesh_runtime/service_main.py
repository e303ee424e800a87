"""The shared ``python -m <service>`` entry point.

Loads settings (a bad value: one line naming the variable, exit 2), sets up
logging (and tracing and the metrics endpoint, when configured), builds the
service, serves until SIGTERM/SIGINT and shuts down gracefully. A port that
cannot be bound or a dependency that cannot be reached ends the process with
one actionable line and exit 1.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import peewee

from mesh_runtime.auth import TokenVerifier
from mesh_runtime.config import ConfigError, exit_on_config_error, load_settings
from mesh_runtime.database import BlockingRunner, Migration, open_database
from mesh_runtime.errors import MeshError
from mesh_runtime.metrics import start_metrics_endpoint
from mesh_runtime.server import RunningServer, ServiceBinding, create_server, serve_until_stopped
from mesh_runtime.structured_logging import configure_logging
from mesh_runtime.telemetry import setup_telemetry

logger = logging.getLogger("mesh.service")


class CommonSettings(Protocol):
    """Settings every service has."""

    @property
    def log_level(self) -> str: ...

    @property
    def log_format(self) -> str: ...

    @property
    def shutdown_grace_seconds(self) -> float: ...

    @property
    def grpc_host(self) -> str: ...

    @property
    def metrics_port(self) -> int: ...


S = TypeVar("S", bound=CommonSettings)

Built = tuple[RunningServer, Callable[[], Any]]


def run_service(
    name: str, settings_cls: type[S], build: Callable[[S], Awaitable[Built]]
) -> None:
    """Run service ``name``: ``build(settings)`` returns the running server and a
    cleanup callable called after the server stopped."""
    with exit_on_config_error(name):
        settings = load_settings(settings_cls)
    configure_logging(name, settings.log_level, settings.log_format)
    setup_telemetry(name)

    async def main() -> None:
        # Before the server: its interceptor chain includes metrics only if they are served.
        start_metrics_endpoint(settings.grpc_host, settings.metrics_port)
        running, cleanup = await build(settings)
        logger.info("serving", extra={"port": running.port})
        await serve_until_stopped(running, settings.shutdown_grace_seconds, cleanup)

    try:
        asyncio.run(main())
    except ConfigError as exc:
        print(f"{name}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except (OSError, MeshError) as exc:
        message = exc.message if isinstance(exc, MeshError) else str(exc)
        print(f"{name}: cannot start: {message}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        pass


async def start_database_service(
    *,
    address: str,
    database_url: str,
    setting_name: str,
    migrations: Sequence[Migration],
    bind_store: Callable[[peewee.Database], None],
    bindings: Callable[[BlockingRunner], list[ServiceBinding]],
    pool_size: int,
    reflection_enabled: bool,
    thread_name: str,
    verifier: TokenVerifier,
    prepare: Callable[[], None] | None = None,
) -> Built:
    """Open and migrate the service's own database, then start its server.

    The same pool size bounds database connections and query threads, so a
    query never waits for a connection while holding a thread. ``prepare``
    runs (blocking, off the loop) after the migrations, before serving.
    """
    db = open_database(
        database_url, migrations, setting_name=setting_name, pool_size=pool_size, bind=bind_store
    )
    runner = BlockingRunner(db, workers=pool_size, name=thread_name)
    try:
        if prepare is not None:  # e.g. seed data, before any call can arrive
            await runner.run(prepare)
        running = await create_server(
            address, bindings(runner), verifier=verifier, reflection_enabled=reflection_enabled
        )
    except BaseException:
        runner.close()
        raise
    return running, runner.close
