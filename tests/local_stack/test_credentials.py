"""The local PostgreSQL and NATS want the credentials the stack generated
(kept 0600 in the state folder), and no command line shows them."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import stat
import subprocess
from pathlib import Path

import grpc
import nats
import nats.errors
import psutil
import psycopg2
import pytest

from local_stack import infra
from local_stack.credentials import FILE_NAME
from local_stack.ports import free_port
from local_stack.processes import as_user
from mesh.auth.v1 import access_pb2, principal_pb2
from mesh.auth.v1 import auth_service_pb2 as auth_pb2
from mesh.auth.v1 import auth_service_pb2_grpc as auth_pb2_grpc
from tests.conftest import RunningStack
from tests.eventually import eventually


def test_postgres_refuses_connections_without_the_generated_password(mesh: RunningStack) -> None:
    port = mesh.settings.postgres_port
    for wrong in (None, "not-the-password"):
        with pytest.raises(psycopg2.OperationalError, match="password"):
            psycopg2.connect(infra.postgres_dsn(port, password=wrong), connect_timeout=5)
    with psycopg2.connect(mesh.database_url("analytics"), connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_user")
        assert cur.fetchone() == ("postgres",)


def test_nats_refuses_clients_without_the_generated_login(mesh: RunningStack) -> None:
    async def connect(url: str) -> bool:
        nc = await nats.connect(url, allow_reconnect=False, connect_timeout=2, max_reconnect_attempts=0)
        try:
            await nc.jetstream().account_info()
            return True
        finally:
            await nc.close()

    anonymous = infra.nats_url(mesh.settings.nats_port)
    with pytest.raises((nats.errors.Error, OSError)):
        asyncio.run(connect(anonymous))
    with pytest.raises((nats.errors.Error, OSError)):
        asyncio.run(connect(infra.nats_url(mesh.settings.nats_port, ("mesh", "not-the-password"))))
    assert asyncio.run(connect(mesh.nats_url))


def test_the_credentials_are_private_and_on_no_command_line(mesh: RunningStack) -> None:
    path = mesh.settings.state_dir / FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    generated = [stored["postgres_password"], stored["nats_password"]]
    assert all(len(s) >= 24 for s in generated)
    for process in mesh.stack.processes:
        command = " ".join(psutil.Process(process.pid).cmdline())
        assert not any(s in command for s in generated), process.spec.name


def test_an_older_cluster_without_a_password_gets_one(tmp_path: Path) -> None:
    data = tmp_path / "pg"

    def run_once(password: str | None, check: object) -> None:
        user = infra.prepare_postgres(data, password)
        port = free_port()
        spec = infra.postgres_spec(data, port, user, fast=True)
        with (tmp_path / "pg.log").open("ab") as log:
            server = subprocess.Popen(spec.argv, stdout=log, stderr=log, **as_user(user))  # noqa: S603
        try:
            eventually(lambda: _accepts(port, password), 60, "PostgreSQL to start")
            check(port)  # type: ignore[operator]
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(30)

    run_once(None, lambda port: None)  # as `./mesh up` made clusters before: trusting 127.0.0.1

    def password_required(port: int) -> None:
        with pytest.raises(psycopg2.OperationalError, match="password"):
            psycopg2.connect(infra.postgres_dsn(port), connect_timeout=5)

    run_once("a-new-password", password_required)
    run_once("a-new-password", password_required)  # the second start keeps it (no new ALTER)


def _accepts(port: int, password: str | None) -> bool:
    try:
        return infra.postgres_ready(port, password)
    except psycopg2.OperationalError:
        return False


def test_a_refused_insert_leaves_no_password_hash_in_postgres_log(mesh: RunningStack) -> None:
    name = f"twice-{secrets.token_hex(4)}"
    with mesh.channel(mesh.analytics, "admin") as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        request = auth_pb2.CreateUserRequest(
            user=principal_pb2.User(username=name, role=access_pb2.ROLE_VIEWER), password="long enough password"
        )
        stub.CreateUser(request, timeout=10)
        with pytest.raises(grpc.RpcError) as refused:
            stub.CreateUser(request, timeout=10)  # the unique index refuses the INSERT
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    log = mesh.logs() / "postgres.log"
    eventually(lambda: "duplicate key value" in log.read_text(), 10, "the refused INSERT in postgres.log")
    assert "$argon2" not in log.read_text()
