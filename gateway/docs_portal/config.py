"""Settings of the docs portal, from the environment (see .env.example)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mesh_runtime.config import one_of, parse_port, setting

_GEN = Path(__file__).resolve().parents[2] / "gen"


def parse_base_url(raw: str) -> str:
    """An http(s) URL, without a trailing slash."""
    url = raw.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {raw!r}")
    return url


def parse_host_port(raw: str) -> str:
    """A ``host:port`` address."""
    host, _, port = raw.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {raw!r}")
    return raw.strip()


@dataclass(frozen=True)
class DocsSettings:
    """Where the portal listens, what it serves, and the addresses its examples use."""

    host: str = setting("DOCS_HOST", "127.0.0.1", doc="Interface the docs portal listens on (0.0.0.0 in containers).")
    port: int = setting("DOCS_PORT", 8090, parse_port, "HTTP port of the docs portal.")
    rest_base_url: str = setting(
        "REST_BASE_URL",
        "http://127.0.0.1:18080",
        parse_base_url,
        "Public base URL of the REST API (Envoy), used in the curl examples and the OpenAPI servers.",
    )
    grpc_public_address: str = setting(
        "GRPC_PUBLIC_ADDR",
        "127.0.0.1:18080",
        parse_host_port,
        "host:port where clients reach gRPC (Envoy), used in the grpcurl examples.",
    )
    openapi_file: Path = setting("DOCS_OPENAPI_FILE", _GEN / "openapi.json", Path, "The OpenAPI document served.")
    descriptor_file: Path = setting(
        "DOCS_DESCRIPTOR_FILE", _GEN / "descriptor.binpb", Path, "The descriptor set (grpcurl -protoset)."
    )
    log_level: str = setting("MESH_LOG_LEVEL", "info", one_of("debug", "info", "warning", "error"), "Log level.")
