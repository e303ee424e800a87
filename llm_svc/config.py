"""Settings of the LLM service, from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from mesh_runtime.config import RuntimeSettings, parse_int, parse_port, positive, setting


@dataclass(frozen=True)
class LlmSettings(RuntimeSettings):
    """Where the LLM service listens and how it answers."""

    grpc_port: int = setting("LLM_GRPC_PORT", 50052, parse_port, "gRPC port (0: any free port).")
    default_model: str = setting(
        "LLM_DEFAULT_MODEL", "offline-summary-1", doc="Model used when a request names none."
    )
    default_max_tokens: int = setting(
        "LLM_DEFAULT_MAX_TOKENS", 512, positive(parse_int), "Answer length when a request sets none."
    )
