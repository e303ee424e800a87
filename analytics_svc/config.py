"""Settings of the analytics service, from the environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mesh_runtime.background import BackgroundSettings
from mesh_runtime.config import (
    RuntimeSettings,
    Secret,
    non_negative,
    parse_float,
    parse_int,
    parse_nats_url,
    parse_networks,
    parse_port,
    parse_postgres_url,
    parse_secret,
    positive,
    setting,
)


def _database_url() -> Any:
    return setting(
        "ANALYTICS_DATABASE_URL",
        "postgresql://postgres@127.0.0.1:5432/analytics",
        parse_postgres_url,
        "The analytics service's own PostgreSQL database.",
    )


def _parse_llm_addr(raw: str) -> str:
    """host:port of the LLM service, or "off" (stored as "") for none."""
    value = raw.strip()
    if value.lower() in ("off", "none"):
        return ""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT or off, got {raw!r}")
    return value


def _signing_key_file() -> Any:
    return setting(
        "AUTH_SIGNING_KEY_FILE", "", doc="Private key (PEM, P-256) access tokens are signed with. Required."
    )


def _llm_addr() -> Any:
    return setting(
        "LLM_ADDR",
        "127.0.0.1:50052",
        _parse_llm_addr,
        "The LLM service (host:port) for insights and questions; off: none.",
    )


def _analysis_memory_mb() -> Any:
    return setting(
        "ANALYTICS_ANALYSIS_MEMORY_MB",
        256,
        positive(parse_int),
        "Memory one analysis (or one chart series of GetResult) may hold, per process: a worker runs "
        "ANALYTICS_WORKER_CONCURRENCY at once. A window of more points than fit is read over its chunks, "
        "a batch at a time.",
    )


@dataclass(frozen=True)
class AnalyticsSettings(RuntimeSettings):
    """Where the analytics service listens and which database it owns."""

    grpc_port: int = setting("ANALYTICS_GRPC_PORT", 50051, parse_port, "gRPC port (0: any free port).")
    database_url: str = _database_url()
    llm_addr: str = _llm_addr()
    db_pool_size: int = setting(
        "ANALYTICS_DB_POOL_SIZE", 8, positive(parse_int), "Database connections (and query threads)."
    )
    result_cache_mb: int = setting(
        "ANALYTICS_RESULT_CACHE_MB",
        64,
        non_negative(parse_int),
        "Memory for finished results GetResult serves without the database (0: off).",
    )
    min_schedule_interval_seconds: int = setting(
        "ANALYTICS_MIN_SCHEDULE_INTERVAL_SECONDS",
        60,
        positive(parse_int),
        "Shortest interval a schedule may be created or updated with (cron's own step is a minute).",
    )
    analysis_memory_mb: int = _analysis_memory_mb()
    page_cache_mb: int = setting(
        "ANALYTICS_PAGE_CACHE_MB",
        32,
        non_negative(parse_int),
        "Memory for ListResults pages served between changes to their datasets (0: off).",
    )
    signing_key_file: str = _signing_key_file()
    access_token_ttl_seconds: int = setting(
        "AUTH_ACCESS_TOKEN_TTL_SECONDS", 900, positive(parse_int), "Lifetime of access tokens."
    )
    refresh_token_ttl_seconds: int = setting(
        "AUTH_REFRESH_TOKEN_TTL_SECONDS", 14 * 24 * 3600, positive(parse_int), "Lifetime of a session."
    )
    refresh_reuse_grace_seconds: float = setting(
        "AUTH_REFRESH_REUSE_GRACE_SECONDS",
        10.0,
        non_negative(parse_float),
        "A refresh token rotated this recently is honoured once more (two tabs refreshing together);"
        " used later, its whole session ends.",
    )
    login_failure_window_seconds: int = setting(
        "AUTH_LOGIN_FAILURE_WINDOW_SECONDS", 900, positive(parse_int), "Failed sign-ins count this long."
    )
    login_account_free_failures: int = setting(
        "AUTH_LOGIN_ACCOUNT_FREE_FAILURES",
        5,
        non_negative(parse_int),
        "Failures for one account (from addresses it is not known at) before each further one doubles the wait.",
    )
    login_address_free_failures: int = setting(
        "AUTH_LOGIN_ADDRESS_FREE_FAILURES",
        20,
        non_negative(parse_int),
        "Failures from one client address before each further one doubles the wait.",
    )
    login_first_delay_seconds: float = setting(
        "AUTH_LOGIN_FIRST_DELAY_SECONDS",
        1.0,
        positive(parse_float),
        "Wait after the first failure past the free ones; each further failure doubles it.",
    )
    login_max_delay_seconds: int = setting(
        "AUTH_LOGIN_MAX_DELAY_SECONDS", 300, positive(parse_int), "Longest wait a throttled sign-in is told."
    )
    trusted_proxies: tuple[str, ...] = setting(
        "AUTH_TRUSTED_PROXIES",
        ("127.0.0.1/32", "::1/128"),
        parse_networks,
        "Peers (CIDRs, comma-separated) whose x-forwarded-for names the client: the mesh's Envoy and web app.",
    )
    bootstrap_admin_username: str = setting(
        "AUTH_BOOTSTRAP_ADMIN_USERNAME", "", doc="On a start with no admin yet, create this admin user."
    )
    bootstrap_admin_password: Secret = setting(
        "AUTH_BOOTSTRAP_ADMIN_PASSWORD",
        Secret(),
        parse_secret,
        "Password of that first admin (at least 12 characters).",
    )


@dataclass(frozen=True)
class JobSettings(BackgroundSettings):
    """What the analytics scheduler and workers share."""

    database_url: str = _database_url()
    nats_url: str = setting("NATS_URL", "nats://127.0.0.1:4222", parse_nats_url, "NATS server(s) with JetStream.")
    job_lease_seconds: float = setting(
        "ANALYTICS_JOB_LEASE_SECONDS",
        10.0,
        positive(parse_float),
        "Lease on a running analysis, renewed by its worker's heartbeat every third of it (at most 5 s); "
        "a job whose worker sent none for this long is handed to another worker.",
    )


@dataclass(frozen=True)
class SchedulerSettings(JobSettings):
    """The analytics scheduler: fires due schedules, relays the outbox, re-queues lost jobs."""

    tick_seconds: float = setting(
        "ANALYTICS_SCHEDULER_TICK_SECONDS", 1.0, positive(parse_float), "How often due schedules are looked for."
    )
    requeue_after_seconds: float = setting(
        "ANALYTICS_JOB_REQUEUE_SECONDS",
        300.0,
        positive(parse_float),
        "A result still pending this long after it was queued is queued again.",
    )
    max_job_attempts: int = setting(
        "ANALYTICS_JOB_MAX_ATTEMPTS", 3, positive(parse_int), "Workers lost on one result before it is failed."
    )
    retention_interval_seconds: float = setting(
        "ANALYTICS_RETENTION_INTERVAL_SECONDS",
        60.0,
        positive(parse_float),
        "How often points past their dataset's retention are deleted.",
    )


@dataclass(frozen=True)
class WorkerSettings(JobSettings):
    """An analytics worker: runs analyses from the job queue and writes insights."""

    concurrency: int = setting(
        "ANALYTICS_WORKER_CONCURRENCY", 2, positive(parse_int), "Analyses one worker process runs at once."
    )
    analysis_memory_mb: int = _analysis_memory_mb()
    dask_scheduler: str = setting(
        "ANALYTICS_DASK_SCHEDULER",
        "",
        doc="Address of a dask.distributed scheduler (e.g. tcp://dask-scheduler:8786): analyses over chunks fan "
        "their chunk work out to its workers, which read PostgreSQL themselves (they need ANALYTICS_DATABASE_URL). "
        "Empty: everything runs in the worker.",
    )
    llm_addr: str = _llm_addr()
    signing_key_file: str = _signing_key_file()
    insight_timeout_seconds: float = setting(
        "ANALYTICS_INSIGHT_TIMEOUT_SECONDS", 30.0, positive(parse_float), "Deadline of one insight request."
    )
    insight_max_attempts: int = setting(
        "ANALYTICS_INSIGHT_MAX_ATTEMPTS", 5, positive(parse_int), "LLM attempts before an insight is unavailable."
    )
    insight_retry_seconds: float = setting(
        "ANALYTICS_INSIGHT_RETRY_SECONDS",
        5.0,
        positive(parse_float),
        "Wait before the first insight retry; doubles with each attempt (at most 10 minutes), +-20% jitter.",
    )


@dataclass(frozen=True)
class DaskPartSettings:
    """What a Dask worker process reads from its own environment to do an analysis's chunk work."""

    database_url: str = _database_url()
    analysis_memory_mb: int = _analysis_memory_mb()
