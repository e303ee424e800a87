"""Settings of the notify service, from the environment."""

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
class NotifySettings(RuntimeSettings):
    """Where the notify service listens and which database it owns."""

    grpc_port: int = setting("NOTIFY_GRPC_PORT", 50053, parse_port, "gRPC port (0: any free port).")
    database_url: str = setting(
        "NOTIFY_DATABASE_URL",
        "postgresql://postgres@127.0.0.1:5432/notify",
        parse_postgres_url,
        "The notify service's own PostgreSQL database.",
    )
    db_pool_size: int = setting(
        "NOTIFY_DB_POOL_SIZE", 4, positive(parse_int), "Database connections (and query threads)."
    )
