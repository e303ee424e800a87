"""A private notify rig for the reliability tests: its own nats-server, mail
catcher and notify process(es), and its own database on the session stack's
PostgreSQL, so tests can kill any of them without touching the shared stack."""

from __future__ import annotations

import secrets
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg2

from local_stack import infra
from local_stack.ports import free_port
from local_stack.processes import ProcessSpec, wait_until
from mesh_runtime import streams
from tests.rig import ProcessRig

DATABASE = "notify_reliability"
CONSUMER = "notify-email"
# The rig's lease on an e-mail being sent: short, so takeovers are quick.
LEASE_SECONDS = 6


@dataclass
class Rig(ProcessRig):
    """The rig's processes ("nats", "mail", "notify-<n>"), ports and helpers."""

    database: str = DATABASE
    smtp_port: int = field(default_factory=free_port)
    mail_http_port: int = field(default_factory=free_port)
    link_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    grpc_ports: dict[str, int] = field(default_factory=dict)
    """The gRPC port of each notify process, by name."""

    @property
    def mail_api(self) -> str:
        return f"http://127.0.0.1:{self.mail_http_port}"

    def start_mail(self) -> None:
        spec = ProcessSpec(
            "mail",
            [
                sys.executable, "-m", "mail_catcher", "--host", "127.0.0.1",
                "--smtp-port", str(self.smtp_port), "--http-port", str(self.mail_http_port),
                "--max-messages", "50000",
                # As ./mesh up's catcher and mailpit in compose: a copy notify sends
                # again after a crash (same Message-ID) is answered 250 and dropped.
                "--ignore-duplicate-ids",
            ],
        )
        self.launch(spec, lambda: infra.http_ok(f"{self.mail_api}/readyz"))

    def start_notify(self, name: str, **overrides: str) -> None:
        """A notify process named ``name``, with the rig's short waits (``overrides`` over them)."""
        port = free_port()
        env = {
            "NOTIFY_GRPC_PORT": str(port),
            "NOTIFY_DATABASE_URL": self.database_url,
            "NATS_URL": self.nats_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp_port),
            "NOTIFY_LINK_SECRET": self.link_secret,
            # Short waits, so the tests see retries and takeovers quickly.
            "SMTP_TIMEOUT_SECONDS": "2",
            "NOTIFY_LEASE_SECONDS": str(LEASE_SECONDS),
            "NOTIFY_RETRY_BASE_SECONDS": "0.3",
            "NOTIFY_RETRY_MAX_SECONDS": "1",
            # Enough attempts to outlast a slow restart of the mail catcher on a busy machine.
            "NOTIFY_MAX_ATTEMPTS": "100",
            "NOTIFY_POLL_SECONDS": "0.2",
            "NOTIFY_REDELIVERY_BACKOFF_SECONDS": "2,4",
            "NOTIFY_MAX_DELIVER": "5",
            "MESH_SHUTDOWN_GRACE_SECONDS": "5",
            "MESH_LOG_LEVEL": "info",
            **overrides,
        }
        self.grpc_ports[name] = port
        self.start_service(name, "notify_svc", env, ready_port=port)
        self.run(self._consumer_declared())

    async def _consumer_declared(self) -> None:
        nc = await streams.connect(self.nats_url, "rig-check")
        try:
            js = nc.jetstream()

            async def declared() -> bool:
                await js.consumer_info(streams.EVENTS_STREAM, CONSUMER)
                return True

            await wait_until(declared, timeout=30, what="the notify consumer")
        finally:
            await nc.close()

    def start(self) -> None:
        self.create_database()
        self.start_nats()
        self.start_mail()
        self.start_notify("notify-1")

    # --- the notify database, read directly -------------------------------------------

    def subscribe(self, count: int, dataset_id: str) -> list[str]:
        """``count`` subscriptions to ``dataset_id``, written straight into the rig's notify database."""
        ids = []
        with psycopg2.connect(self.database_url, connect_timeout=5) as conn, conn.cursor() as cur:
            for _ in range(count):
                sub_id = str(uuid.uuid4())
                cur.execute(
                    "INSERT INTO subscription (id, email, display_name, create_time, dataset_ids)"
                    " VALUES (%s, %s, %s, now(), %s)",
                    (sub_id, f"rig-{uuid.uuid4().hex[:10]}@example.com", "Rig", [dataset_id]),
                )
                ids.append(sub_id)
        return ids

    def status_counts(self, subscription_ids: Sequence[str]) -> dict[int, int]:
        rows = self.query(
            "SELECT status, count(*) FROM delivery WHERE subscription_id = ANY (%s::uuid[]) GROUP BY status",
            (list(subscription_ids),),
        )
        return {int(s): int(n) for s, n in rows}
