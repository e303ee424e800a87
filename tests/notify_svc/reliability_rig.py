"""A private notify rig for the reliability tests: its own nats-server, mail
catcher and notify process(es), and its own database on the session stack's
PostgreSQL, so tests can kill any of them without touching the shared stack."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from psycopg2 import sql

from mesh_cli import infra
from mesh_cli.paths import ROOT
from mesh_cli.processes import ManagedProcess, ProcessSpec, wait_until
from mesh_cli.stack import grpc_serving
from mesh_runtime import streams
from tests.conftest import LoopThread, RunningStack

DATABASE = "notify_reliability"
CONSUMER = "notify-email"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def recreate_database(postgres_port: int, name: str) -> None:
    conn = psycopg2.connect(infra.postgres_dsn(postgres_port), connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()


@dataclass
class Rig:
    """The rig's processes, ports and helpers."""

    mesh: RunningStack
    root: Path
    loop: LoopThread
    nats_port: int = field(default_factory=free_port)
    nats_monitor_port: int = field(default_factory=free_port)
    smtp_port: int = field(default_factory=free_port)
    mail_http_port: int = field(default_factory=free_port)
    link_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    nats: ManagedProcess | None = None
    mail: ManagedProcess | None = None
    notifiers: dict[str, ManagedProcess] = field(default_factory=dict)

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"

    @property
    def mail_api(self) -> str:
        return f"http://127.0.0.1:{self.mail_http_port}"

    @property
    def database_url(self) -> str:
        return infra.postgres_dsn(self.mesh.settings.postgres_port, DATABASE)

    def _launch(self, spec: ProcessSpec, ready: object, what: str) -> ManagedProcess:
        process = ManagedProcess(spec, self.root / "logs", None, 0)

        async def start() -> None:
            await process.start()
            await wait_until(ready, timeout=60, what=what, process=process)  # type: ignore[arg-type]

        self.loop.run(start(), timeout=90)
        return process

    def stop(self, process: ManagedProcess | None) -> None:
        if process is not None:
            self.loop.run(process.stop(), timeout=60)

    def kill(self, process: ManagedProcess | None) -> None:
        """SIGKILL, no chance to clean up, then reap it."""
        assert process is not None and process.pid is not None
        os.killpg(process.pid, signal.SIGKILL)
        self.stop(process)

    def start_nats(self) -> None:
        port = self.nats_monitor_port
        self.nats = self._launch(
            infra.nats_spec(self.root / "nats", self.nats_port, port), lambda: infra.nats_ready(port), "rig NATS"
        )

    def start_mail(self) -> None:
        spec = ProcessSpec(
            "rig-mail",
            [
                sys.executable, "-m", "mail_catcher", "--host", "127.0.0.1",
                "--smtp-port", str(self.smtp_port), "--http-port", str(self.mail_http_port),
                "--max-messages", "50000",
                # As ./mesh up's catcher and mailpit in compose: a copy notify sends
                # again after a crash (same Message-ID) is answered 250 and dropped.
                "--ignore-duplicate-ids",
            ],
        )
        self.mail = self._launch(spec, lambda: infra.http_ok(f"{self.mail_api}/readyz"), "rig mail catcher")

    def start_notify(self, name: str) -> ManagedProcess:
        port = free_port()
        env = {
            **self.mesh.stack.service_env(),
            "NOTIFY_GRPC_PORT": str(port),
            "NOTIFY_DATABASE_URL": self.database_url,
            "NATS_URL": self.nats_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp_port),
            "NOTIFY_LINK_SECRET": self.link_secret,
            # Short waits, so the tests see retries and takeovers quickly.
            "SMTP_TIMEOUT_SECONDS": "2",
            "NOTIFY_LEASE_SECONDS": "6",
            "NOTIFY_RETRY_BASE_SECONDS": "0.3",
            "NOTIFY_RETRY_MAX_SECONDS": "1",
            # Enough attempts to outlast a slow restart of the mail catcher on a busy machine.
            "NOTIFY_MAX_ATTEMPTS": "100",
            "NOTIFY_POLL_SECONDS": "0.2",
            "NOTIFY_REDELIVERY_BACKOFF_SECONDS": "2,4",
            "NOTIFY_MAX_DELIVER": "5",
            "MESH_SHUTDOWN_GRACE_SECONDS": "5",
            "MESH_LOG_LEVEL": "info",
        }
        spec = ProcessSpec(name, [sys.executable, "-m", "notify_svc"], env=env, cwd=ROOT)
        process = self._launch(spec, lambda: grpc_serving(f"127.0.0.1:{port}"), name)
        self.notifiers[name] = process
        self.loop.run(self._consumer_declared(), timeout=60)
        return process

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
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        recreate_database(self.mesh.settings.postgres_port, DATABASE)
        self.start_nats()
        self.start_mail()
        self.start_notify("notify-1")

    def close(self) -> None:
        for process in [*self.notifiers.values(), self.mail, self.nats]:
            try:
                self.stop(process)
            except Exception:  # noqa: BLE001, S110 - best effort at teardown
                pass

    # --- the notify database, read directly -------------------------------------------

    def query(self, statement: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with psycopg2.connect(self.database_url, connect_timeout=5) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return list(cur.fetchall())

    def subscribe(self, count: int, dataset_id: str) -> list[str]:
        """``count`` subscriptions to ``dataset_id``, made through the rig's own notify."""
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
        return {int(s): int(n) for s, n in rows}  # type: ignore[call-overload]


def run_async(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]
