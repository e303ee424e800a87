"""Settings of the notify service, from the environment."""

from __future__ import annotations

from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import parseaddr

from mesh_runtime.config import (
    RuntimeSettings,
    Secret,
    one_of,
    parse_float,
    parse_http_url,
    parse_int,
    parse_nats_url,
    parse_port,
    parse_postgres_url,
    parse_secret,
    positive,
    setting,
)


def parse_sender(raw: str) -> str:
    """A From address, "Name <user@host>" or "user@host", with no line breaks."""
    if "\r" in raw or "\n" in raw:
        raise ValueError("the sender must be on one line")
    name, address = parseaddr(raw.strip())
    if "@" not in address:
        raise ValueError(f"expected an e-mail address like 'Analytics Mesh <notify@example.com>', got {raw!r}")
    user, _, domain = address.rpartition("@")
    Address(display_name=name, username=user, domain=domain)  # raises ValueError on nonsense
    return raw.strip()


def parse_link_secret(raw: str) -> Secret:
    """A secret of at least 32 characters."""
    if len(raw.strip()) < 32:
        raise ValueError(
            "expected at least 32 characters (e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return Secret(raw.strip())


def parse_seconds_list(raw: str) -> tuple[float, ...]:
    """Comma-separated positive numbers of seconds, e.g. "5,15,60"."""
    values = tuple(parse_float(part) for part in raw.split(",") if part.strip())
    if not values or any(v <= 0 for v in values):
        raise ValueError(f"expected comma-separated positive seconds, got {raw!r}")
    return values


@dataclass(frozen=True)
class NotifySettings(RuntimeSettings):
    """Where the notify service listens, which database it owns, where events
    come from and how e-mail goes out."""

    grpc_port: int = setting("NOTIFY_GRPC_PORT", 50053, parse_port, "gRPC port (0: any free port).")
    database_url: str = setting(
        "NOTIFY_DATABASE_URL",
        "postgresql://postgres@127.0.0.1:5432/notify",
        parse_postgres_url,
        "The notify service's own PostgreSQL database.",
    )
    db_pool_size: int = setting(
        "NOTIFY_DB_POOL_SIZE", 6, positive(parse_int), "Database connections (and query threads)."
    )
    nats_url: str = setting("NATS_URL", "nats://127.0.0.1:4222", parse_nats_url, "NATS server(s) with JetStream.")
    consumer_name: str = setting(
        "NOTIFY_CONSUMER", "notify-email", doc="Durable JetStream consumer every notify replica shares."
    )
    max_deliver: int = setting(
        "NOTIFY_MAX_DELIVER", 8, positive(parse_int), "JetStream deliveries of one event before it is given up."
    )
    redelivery_backoff: tuple[float, ...] = setting(
        "NOTIFY_REDELIVERY_BACKOFF_SECONDS",
        (5.0, 15.0, 30.0, 60.0, 120.0),
        parse_seconds_list,
        "Waits before JetStream redelivers an unacknowledged event (the first is the ack wait).",
    )
    fetch_batch: int = setting(
        "NOTIFY_FETCH_BATCH", 100, positive(parse_int), "Events taken from JetStream per pull."
    )
    web_base_url: str = setting(
        "WEB_BASE_URL",
        "http://127.0.0.1:3000",
        parse_http_url,
        "Web app address for links in e-mails (results, the unsubscribe page).",
    )
    rest_base_url: str = setting(
        "REST_BASE_URL",
        "http://127.0.0.1:18080",
        parse_http_url,
        "Public REST address (Envoy) for the one-click List-Unsubscribe URL of e-mails.",
    )
    link_secret: Secret = setting(
        "NOTIFY_LINK_SECRET",
        Secret(),
        parse_link_secret,
        "Signs unsubscribe links (HMAC); at least 32 characters. Required.",
    )
    sender: str = setting(
        "NOTIFY_SENDER", "Analytics Mesh <notify@localhost>", parse_sender, "From address of the e-mails."
    )
    smtp_host: str = setting("SMTP_HOST", "127.0.0.1", doc="SMTP server that sends the e-mails.")
    smtp_port: int = setting("SMTP_PORT", 1025, parse_port, "SMTP port (587 for STARTTLS, 465 for TLS).")
    smtp_security: str = setting(
        "SMTP_SECURITY", "none", one_of("none", "starttls", "tls"), "none, starttls or tls (implicit TLS)."
    )
    smtp_username: str = setting("SMTP_USERNAME", "", doc="SMTP login; empty: no authentication.")
    smtp_password: Secret = setting("SMTP_PASSWORD", Secret(), parse_secret, "SMTP password (with SMTP_USERNAME).")
    smtp_ca_file: str = setting(
        "SMTP_CA_FILE", "", doc="CA certificates (PEM) that verify the SMTP server's certificate; empty: the system's."
    )
    smtp_timeout: float = setting(
        "SMTP_TIMEOUT_SECONDS", 20.0, positive(parse_float), "Deadline of each SMTP conversation step."
    )
    smtp_connections: int = setting(
        "NOTIFY_SMTP_CONNECTIONS", 4, positive(parse_int), "E-mails sent at the same time (SMTP connections)."
    )
    max_attempts: int = setting(
        "NOTIFY_MAX_ATTEMPTS", 10, positive(parse_int), "SMTP attempts of one e-mail before it is marked dead."
    )
    retry_base: float = setting(
        "NOTIFY_RETRY_BASE_SECONDS",
        2.0,
        positive(parse_float),
        "Wait after the first failed attempt; doubles each time.",
    )
    retry_max: float = setting(
        "NOTIFY_RETRY_MAX_SECONDS", 600.0, positive(parse_float), "Longest wait between attempts."
    )
    lease_seconds: float = setting(
        "NOTIFY_LEASE_SECONDS",
        10.0,
        positive(parse_float),
        "Lease on an e-mail being sent, renewed every third of it while sending; "
        "an e-mail of a replica that died is taken over this long after its last renewal.",
    )
    retention_days: float = setting(
        "NOTIFY_RETENTION_DAYS",
        30.0,
        positive(parse_float),
        "Sent and dead deliveries (and their events) are kept this long; more than the events stream's 7 days.",
    )
    poll_seconds: float = setting(
        "NOTIFY_POLL_SECONDS", 1.0, positive(parse_float), "How often due retries are looked for."
    )
