"""Settings of the LLM service, from the environment.

Which provider answers is decided by what is set: ``LLM_BASE_URL`` (any
OpenAI-compatible endpoint) first, then ``OPENROUTER_API_KEY``, else the
offline provider, so the mesh works with no key at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from mesh_runtime.config import (
    RuntimeSettings,
    Secret,
    parse_float,
    parse_http_url,
    parse_int,
    parse_nats_url,
    parse_port,
    parse_secret,
    positive,
    setting,
)


def non_negative_int(raw: str) -> int:
    """A decimal integer, 0 or more."""
    value = parse_int(raw)
    if value < 0:
        raise ValueError(f"expected 0 or more, got {raw!r}")
    return value


def non_negative_float(raw: str) -> float:
    """A finite number, 0 or more."""
    value = parse_float(raw)
    if value < 0:
        raise ValueError(f"expected 0 or more, got {raw!r}")
    return value


def parse_names(raw: str) -> tuple[str, ...]:
    """A comma-separated list of names, blanks dropped, order kept."""
    return tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))


@dataclass(frozen=True)
class LlmSettings(RuntimeSettings):
    """Where the LLM service listens, which provider answers, and its limits."""

    grpc_port: int = setting("LLM_GRPC_PORT", 50052, parse_port, "gRPC port (0: any free port).")
    nats_url: str = setting(
        "NATS_URL",
        "nats://127.0.0.1:4222",
        parse_nats_url,
        "NATS server(s) with JetStream: where revoked access tokens are announced.",
    )

    # Providers: the first one configured answers.
    base_url: str = setting(
        "LLM_BASE_URL",
        "",
        parse_http_url,
        "Any OpenAI-compatible endpoint (Ollama, vLLM, OpenAI); wins over OpenRouter when set.",
    )
    api_key: Secret = setting(
        "LLM_API_KEY", Secret(), parse_secret, "API key for LLM_BASE_URL (empty for a local Ollama)."
    )
    openrouter_api_key: Secret = setting(
        "OPENROUTER_API_KEY", Secret(), parse_secret, "OpenRouter API key; with it, OpenRouter answers."
    )
    openrouter_base_url: str = setting(
        "OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1", parse_http_url, "OpenRouter's API base URL."
    )
    default_model: str = setting(
        "LLM_DEFAULT_MODEL",
        "",
        doc="Model used when a request names none; empty: the provider's own default.",
    )
    models: tuple[str, ...] = setting(
        "LLM_MODELS",
        (),
        parse_names,
        "Comma-separated models offered besides the default; when set, other models are refused.",
    )

    # Limits.
    default_max_tokens: int = setting(
        "LLM_DEFAULT_MAX_TOKENS", 512, positive(parse_int), "Answer length when a request sets none."
    )
    max_response_tokens: int = setting(
        "LLM_MAX_RESPONSE_TOKENS", 4096, positive(parse_int), "Largest max_tokens a request may ask for."
    )
    max_response_chars: int = setting(
        "LLM_MAX_RESPONSE_CHARS", 64000, positive(parse_int), "Answers are cut at this many characters."
    )
    max_prompt_chars: int = setting(
        "LLM_MAX_PROMPT_CHARS", 100000, positive(parse_int), "Largest conversation (all messages), in characters."
    )

    # Deadlines and retries.
    timeout_seconds: float = setting(
        "LLM_TIMEOUT_SECONDS", 30.0, positive(parse_float), "Time a call may take when the caller sets no deadline."
    )
    attempt_timeout_seconds: float = setting(
        "LLM_ATTEMPT_TIMEOUT_SECONDS",
        20.0,
        positive(parse_float),
        "Time one provider attempt may take before it is retried.",
    )
    max_retries: int = setting(
        "LLM_MAX_RETRIES", 3, non_negative_int, "Retries after a rate limit (429), a 5xx or a timeout."
    )
    retry_base_seconds: float = setting(
        "LLM_RETRY_BASE_SECONDS", 0.5, non_negative_float, "First retry delay; doubles each retry, with jitter."
    )
    retry_max_seconds: float = setting(
        "LLM_RETRY_MAX_SECONDS", 8.0, non_negative_float, "Longest delay between two attempts."
    )

    # Response cache.
    cache_ttl_seconds: float = setting(
        "LLM_CACHE_TTL_SECONDS", 0.0, non_negative_float, "Keep answers this long for identical requests (0: off)."
    )
    cache_max_entries: int = setting(
        "LLM_CACHE_MAX_ENTRIES", 1000, positive(parse_int), "Most answers the cache holds."
    )
