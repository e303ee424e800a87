"""Wire the analytics service: database, store, servicer, gRPC server."""

from __future__ import annotations

from analytics_svc import store
from analytics_svc.api import AnalyticsServicer
from analytics_svc.config import AnalyticsSettings
from mesh.analytics.v1 import analytics_service_pb2, analytics_service_pb2_grpc
from mesh_runtime.database import BlockingRunner
from mesh_runtime.server import ServiceBinding
from mesh_runtime.service_main import Built, start_database_service

SERVICE_NAME = analytics_service_pb2.DESCRIPTOR.services_by_name["AnalyticsService"].full_name


def _bindings(runner: BlockingRunner) -> list[ServiceBinding]:
    return [
        ServiceBinding(
            SERVICE_NAME,
            analytics_service_pb2_grpc.add_AnalyticsServiceServicer_to_server,
            AnalyticsServicer(runner),
        )
    ]


async def build(settings: AnalyticsSettings) -> Built:
    """Open (and migrate) the database, start the server; return it and its cleanup."""
    return await start_database_service(
        address=f"{settings.grpc_host}:{settings.grpc_port}",
        database_url=settings.database_url,
        setting_name="ANALYTICS_DATABASE_URL",
        migrations=store.MIGRATIONS,
        bind_store=store.bind,
        bindings=_bindings,
        pool_size=settings.db_pool_size,
        reflection_enabled=settings.reflection,
        thread_name="analytics-db",
    )
