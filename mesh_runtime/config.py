"""Settings from environment variables: typed, defaulted, validated at start.

Each service declares a frozen dataclass whose fields carry a ``setting(...)``
marker naming their environment variable. ``load_settings`` reads and checks
every field; the first bad value raises ``ConfigError`` with one line that
names the variable, which ``exit_on_config_error`` turns into a clean exit.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

_ENV_KEY = "mesh_env"
_PARSE_KEY = "mesh_parse"
_DOC_KEY = "mesh_doc"


class ConfigError(ValueError):
    """A setting has a value the service cannot run with."""


def setting(
    env: str, default: Any, parse: Callable[[str], Any] = str, doc: str = ""
) -> Any:
    """Declare a settings field read from ``env``, parsed by ``parse``."""
    return dataclasses.field(
        default=default, metadata={_ENV_KEY: env, _PARSE_KEY: parse, _DOC_KEY: doc}
    )


def parse_port(raw: str) -> int:
    """A TCP port, 0-65535 (0 asks the OS for a free one)."""
    port = parse_int(raw)
    if not 0 <= port <= 65535:
        raise ValueError(f"expected a port between 0 and 65535, got {raw!r}")
    return port


def parse_int(raw: str) -> int:
    """A decimal integer."""
    try:
        return int(raw.strip(), 10)
    except ValueError:
        raise ValueError(f"expected an integer, got {raw!r}") from None


def positive(parse: Callable[[str], T]) -> Callable[[str], T]:
    """Wrap a numeric parser so it also rejects zero and negative values."""

    def parse_positive(raw: str) -> T:
        value = parse(raw)
        if value <= 0:  # type: ignore[operator]
            raise ValueError(f"expected a value greater than 0, got {raw!r}")
        return value

    return parse_positive


def non_negative(parse: Callable[[str], T]) -> Callable[[str], T]:
    """Wrap a numeric parser so it also rejects negative values (0 is allowed)."""

    def parse_non_negative(raw: str) -> T:
        value = parse(raw)
        if value < 0:  # type: ignore[operator]
            raise ValueError(f"expected 0 or more, got {raw!r}")
        return value

    return parse_non_negative


def parse_float(raw: str) -> float:
    """A finite decimal number."""
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"expected a finite number, got {raw!r}")
    return value


def parse_bool(raw: str) -> bool:
    """true/false, yes/no, on/off or 1/0."""
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def one_of(*choices: str) -> Callable[[str], str]:
    """A parser accepting exactly one of ``choices`` (case-insensitive)."""

    def parse_choice(raw: str) -> str:
        lowered = raw.strip().lower()
        if lowered not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {raw!r}")
        return lowered

    return parse_choice


def _at_most_a_week(raw: str) -> int:
    # Revocations are announced on a NATS stream that keeps them a week
    # (mesh_runtime.streams): no token may outlive that.
    value = positive(parse_int)(raw)
    if value > 7 * 24 * 3600:
        raise ValueError(f"expected at most 604800 (a week: revocations are kept that long), got {raw!r}")
    return value


def parse_networks(raw: str) -> tuple[str, ...]:
    """Comma-separated IP networks (CIDR, or a bare address), e.g. "10.0.0.0/8,::1"."""
    import ipaddress

    networks = []
    for part in raw.split(","):
        if part.strip():
            try:
                networks.append(str(ipaddress.ip_network(part.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{part.strip()!r} is not an IP network (e.g. 10.0.0.0/8)") from None
    return tuple(networks)


def parse_postgres_url(raw: str) -> str:
    """A ``postgresql://user[:password]@host[:port]/database`` URL."""
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("postgres", "postgresql") or not parts.path.strip("/"):
        raise ValueError(
            "expected postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE, "
            f"got {redact_url(raw)!r}"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError(f"bad port in {redact_url(raw)!r}") from None
    return raw.strip()


def parse_http_url(raw: str) -> str:
    """An ``http://`` or ``https://`` base URL, without a trailing slash."""
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected http(s)://HOST[:PORT]/PATH, got {redact_url(raw)!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError(f"bad port in {redact_url(raw)!r}") from None
    return raw.strip().rstrip("/")


def parse_nats_url(raw: str) -> str:
    """A ``nats://host:port`` URL (several may be given, comma-separated)."""
    for url in raw.split(","):
        parts = urlsplit(url.strip())
        if parts.scheme not in ("nats", "tls") or not parts.hostname:
            raise ValueError(f"expected nats://HOST:PORT, got {redact_url(url)!r}")
    return raw.strip()


def redact_url(url: str) -> str:
    """The URL with any password replaced by '***', safe to log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


@dataclasses.dataclass(frozen=True)
class Secret:
    """A credential: never shown by repr, str or a log line; ``reveal()`` gives it."""

    _value: str = ""

    def reveal(self) -> str:
        """The credential itself, to hand to a client and nowhere else."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


def parse_secret(raw: str) -> Secret:
    """A credential, surrounding whitespace removed."""
    return Secret(raw.strip())


S = TypeVar("S")


def load_settings(cls: type[S], environ: Mapping[str, str] | None = None) -> S:
    """Build ``cls`` from the environment; raise ConfigError naming a bad variable."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = field.metadata.get(_ENV_KEY)
        if name is None:
            continue
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        try:
            values[field.name] = field.metadata[_PARSE_KEY](raw)
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    return cls(**values)


def describe_settings(cls: type) -> Iterator[tuple[str, Any, str]]:
    """Yield (variable, default, doc) for each setting of ``cls``."""
    for field in dataclasses.fields(cls):
        if _ENV_KEY in field.metadata:
            yield field.metadata[_ENV_KEY], field.default, field.metadata[_DOC_KEY]


@contextmanager
def exit_on_config_error(program: str) -> Iterator[None]:
    """Turn a ConfigError into one line on stderr and exit status 2."""
    try:
        yield
    except ConfigError as exc:
        print(f"{program}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


_SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)


def parse_otlp_endpoint(raw: str) -> str:
    """An OTLP/HTTP endpoint (``http(s)://host:port``, a path allowed), or '' (tracing off)."""
    return parse_http_url(raw) if raw.strip() else ""


def parse_sampler_ratio(raw: str) -> float:
    """A sampling ratio, 0 to 1."""
    ratio = parse_float(raw)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"expected a ratio from 0 to 1, got {raw!r}")
    return ratio


@dataclasses.dataclass(frozen=True)
class RuntimeSettings:
    """Settings shared by every service; each service's settings extend these."""

    grpc_host: str = setting(
        "MESH_GRPC_HOST", "127.0.0.1", doc="Interface the gRPC servers listen on."
    )
    log_level: str = setting(
        "MESH_LOG_LEVEL", "info", one_of("debug", "info", "warning", "error"), "Log level."
    )
    log_format: str = setting(
        "MESH_LOG_FORMAT", "json", one_of("json", "text"), "json (one object per line) or text."
    )
    shutdown_grace_seconds: float = setting(
        "MESH_SHUTDOWN_GRACE_SECONDS",
        10.0,
        positive(parse_float),
        "On SIGTERM, how long calls in flight may take to finish.",
    )
    reflection: bool = setting(
        "MESH_GRPC_REFLECTION", True, parse_bool, "Serve gRPC reflection (turn off in production)."
    )
    metrics_port: int = setting(
        "METRICS_PORT",
        0,
        parse_port,
        "Serve Prometheus metrics on http://MESH_GRPC_HOST:METRICS_PORT/metrics; 0: not at all.",
    )
    # The OpenTelemetry SDK reads these itself (mesh_runtime.telemetry); declared
    # here so that a bad value stops the process at start, naming the variable.
    otlp_endpoint: str = setting(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "",
        parse_otlp_endpoint,
        "OTLP/HTTP receiver of traces (http://host:4318: a Collector, Jaeger, Phoenix); empty: tracing off.",
    )
    telemetry_disabled: bool = setting(
        "OTEL_SDK_DISABLED", False, parse_bool, "true turns tracing off whatever else is set."
    )
    traces_sampler: str = setting(
        "OTEL_TRACES_SAMPLER",
        "parentbased_always_on",
        one_of(*_SAMPLERS),
        "Which traces are kept: parentbased_* follow the caller's decision; *traceidratio keeps a share.",
    )
    traces_sampler_arg: float = setting(
        "OTEL_TRACES_SAMPLER_ARG", 1.0, parse_sampler_ratio, "The share of traces the *traceidratio samplers keep."
    )
    jwks_file: str = setting(
        "AUTH_JWKS_FILE", "", doc="Public key set (JWKS) that verifies access tokens. Required."
    )
    issuer: str = setting("AUTH_ISSUER", "analytics-mesh", doc="Issuer (iss) of access tokens.")
    audience: str = setting("AUTH_AUDIENCE", "analytics-mesh", doc="Audience (aud) of access tokens.")
    max_token_ttl_seconds: int = setting(
        "AUTH_MAX_TOKEN_TTL_SECONDS",
        86_400,
        _at_most_a_week,
        "Longest lifetime of any access token (./mesh token --ttl is capped to it); revocations are kept this long.",
    )
