"""deploy/compose/postgres-init.sh, run as the postgres image runs it, against a
real (pip-installed) PostgreSQL: one login and one database per service."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from local_stack import infra
from local_stack.ports import free_port
from local_stack.processes import as_user
from tests.eventually import eventually

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "compose" / "postgres-init.sh"
# Quotes and semicolons must reach PostgreSQL as part of the password.
ANALYTICS_PASSWORD = "an'alytics; DROP DATABASE notify; --"
NOTIFY_PASSWORD = 'no"tify $HOME `id`'


def ready(port: int) -> bool:
    try:
        return infra.postgres_ready(port)
    except psycopg2.OperationalError:
        return False


def start_postgres(data: Path, user: str | None, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start PostgreSQL on a free port; retry on another port if that one was taken meanwhile."""
    for _attempt in range(3):
        port = free_port()
        spec = infra.postgres_spec(data, port, user, fast=True)
        with log.open("ab") as out:
            server = subprocess.Popen(  # noqa: S603 - the pip-installed PostgreSQL
                spec.argv, stdout=out, stderr=out, **as_user(user)
            )
        eventually(
            lambda server=server, port=port: server.poll() is not None or ready(port),
            60,
            lambda: f"PostgreSQL to start: {log.read_text()[-2000:]}",
        )
        if server.poll() is None:
            return server, port
    pytest.fail(f"PostgreSQL exited: {log.read_text()[-2000:]}")


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[int]:
    data = tmp_path / "pg"
    user = infra.prepare_postgres(data)
    server, port = start_postgres(data, user, tmp_path / "postgres.log")
    try:
        yield port
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)


def connect(port: int, user: str, database: str) -> psycopg2.extensions.connection:
    return psycopg2.connect(host="127.0.0.1", port=port, user=user, dbname=database, connect_timeout=5)


def test_each_service_gets_its_own_login_and_database(postgres: int) -> None:
    env = {
        **os.environ,
        "PATH": f"{infra.postgres_bin()}{os.pathsep}{os.environ['PATH']}",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(postgres),
        "POSTGRES_USER": "postgres",
        "ANALYTICS_DB_PASSWORD": ANALYTICS_PASSWORD,
        "NOTIFY_DB_PASSWORD": NOTIFY_PASSWORD,
    }
    result = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

    with connect(postgres, "postgres", "postgres") as admin, admin.cursor() as cur:
        cur.execute("SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname IN ('analytics', 'notify')")
        assert dict(cur.fetchall()) == {"analytics": "analytics", "notify": "notify"}
        cur.execute("SELECT rolname FROM pg_authid WHERE rolname IN ('analytics', 'notify') AND rolpassword <> ''")
        assert {r[0] for r in cur.fetchall()} == {"analytics", "notify"}
    for service in ("analytics", "notify"):
        connect(postgres, service, service).close()
    with pytest.raises(psycopg2.OperationalError, match="permission denied"):
        connect(postgres, "notify", "analytics")
    with pytest.raises(psycopg2.OperationalError, match="permission denied"):
        connect(postgres, "analytics", "notify")
