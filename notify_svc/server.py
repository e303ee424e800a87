"""Wire the notify service: database, store, servicer, gRPC server."""

from __future__ import annotations

from mesh.notify.v1 import notify_service_pb2, notify_service_pb2_grpc
from mesh_runtime.auth import verifier_from_settings
from mesh_runtime.database import BlockingRunner
from mesh_runtime.server import ServiceBinding
from mesh_runtime.service_main import Built, start_database_service
from notify_svc import store
from notify_svc.api import NotifyServicer
from notify_svc.config import NotifySettings

SERVICE_NAME = notify_service_pb2.DESCRIPTOR.services_by_name["NotifyService"].full_name


def _bindings(runner: BlockingRunner) -> list[ServiceBinding]:
    return [
        ServiceBinding(
            SERVICE_NAME,
            notify_service_pb2_grpc.add_NotifyServiceServicer_to_server,
            NotifyServicer(runner),
        )
    ]


async def build(settings: NotifySettings) -> Built:
    """Open (and migrate) the database, start the server; return it and its cleanup."""
    verifier = verifier_from_settings(settings.jwks_file, settings.issuer, settings.audience)
    return await start_database_service(
        address=f"{settings.grpc_host}:{settings.grpc_port}",
        database_url=settings.database_url,
        setting_name="NOTIFY_DATABASE_URL",
        migrations=store.MIGRATIONS,
        bind_store=store.bind,
        bindings=_bindings,
        pool_size=settings.db_pool_size,
        reflection_enabled=settings.reflection,
        thread_name="notify-db",
        verifier=verifier,
    )
