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
    signing_key_file: str = setting(
        "AUTH_SIGNING_KEY_FILE", "", doc="Private key (PEM, P-256) access tokens are signed with. Required."
    )
    access_token_ttl_seconds: int = setting(
        "AUTH_ACCESS_TOKEN_TTL_SECONDS", 900, positive(parse_int), "Lifetime of access tokens."
    )
    refresh_token_ttl_seconds: int = setting(
        "AUTH_REFRESH_TOKEN_TTL_SECONDS", 14 * 24 * 3600, positive(parse_int), "Lifetime of a session."
    )
    bootstrap_admin_username: str = setting(
        "AUTH_BOOTSTRAP_ADMIN_USERNAME", "", doc="On a start with no admin yet, create this admin user."
    )
    bootstrap_admin_password: str = setting(
        "AUTH_BOOTSTRAP_ADMIN_PASSWORD", "", doc="Password of that first admin (at least 12 characters)."
    )
