"""Settings of the analytics service, from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from mesh_runtime.config import (
    RuntimeSettings,
    parse_int,
    parse_port,
    parse_postgres_url,
    positive,
    setting,
)


@dataclass(frozen=True)
class AnalyticsSettings(RuntimeSettings):
    """Where the analytics service listens and which database it owns."""

    grpc_port: int = setting("ANALYTICS_GRPC_PORT", 50051, parse_port, "gRPC port (0: any free port).")
    database_url: str = setting(
        "ANALYTICS_DATABASE_URL",
        "postgresql://postgres@127.0.0.1:5432/analytics",
        parse_postgres_url,
        "The analytics service's own PostgreSQL database.",
    )
    db_pool_size: int = setting(
        "ANALYTICS_DB_POOL_SIZE", 8, positive(parse_int), "Database connections (and query threads)."
    )
