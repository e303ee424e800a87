"""A private deployment for reliability tests: a nats-server and service
processes of its own, and a database of its own on the session stack's
PostgreSQL (or on a PostgreSQL server of its own, for tests that kill it),
so a test can stop or kill any of them without touching the shared stack.
Each suite subclasses ``ProcessRig`` with its own services."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg2
from psycopg2 import sql

from local_stack import infra
from local_stack.paths import ROOT
from local_stack.ports import free_port
from local_stack.processes import ManagedProcess, ProcessSpec, wait_until
from local_stack.stack import grpc_serving
from tests.conftest import RunningStack
from tests.eventually import eventually

T = TypeVar("T")

# How long a started process has to report ready, and a whole start (or stop) to end.
READY_SECONDS = 60
START_SECONDS = 90
STOP_SECONDS = 60



def recreate_database(postgres_port: int, name: str, password: str | None = None) -> None:
    """An empty database ``name`` on the PostgreSQL at ``postgres_port``, dropping any earlier one."""
    conn = psycopg2.connect(infra.postgres_dsn(postgres_port, password=password), connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()


@dataclass
class ProcessRig:
    """Processes by name, supervised on the session stack's event loop, with
    their logs under ``root / "logs"``; a private NATS; one database."""

    mesh: RunningStack
    root: Path
    database: str
    nats_port: int = field(default_factory=free_port)
    nats_monitor_port: int = field(default_factory=free_port)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    # Set by start_postgres: the rig's own PostgreSQL instead of the session stack's.
    own_postgres_port: int | None = None

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"

    @property
    def postgres_port(self) -> int:
        return self.own_postgres_port or self.mesh.settings.postgres_port

    @property
    def postgres_password(self) -> str | None:
        """The session stack's superuser password; none for the rig's own (trusting) PostgreSQL."""
        return None if self.own_postgres_port else self.mesh.stack.credentials.postgres_password

    @property
    def database_url(self) -> str:
        return infra.postgres_dsn(self.postgres_port, self.database, self.postgres_password)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = STOP_SECONDS) -> T:
        """Run ``coro`` on the loop that supervises the processes, from a sync test."""
        return self.mesh.runner.run(coro, timeout)

    def create_database(self) -> None:
        recreate_database(self.postgres_port, self.database, self.postgres_password)

    def start_postgres(self) -> ManagedProcess:
        """A PostgreSQL server of the rig's own, named "postgres", on a port it
        keeps; started again (after ``kill``) it keeps its data."""
        data = self.root / "postgres"
        user = infra.prepare_postgres(data)
        port = self.own_postgres_port = self.own_postgres_port or free_port()
        # Durable commits: a SIGKILL must not take back what was acknowledged.
        return self.launch(infra.postgres_spec(data, port, user), lambda: infra.postgres_ready(port))

    def launch(self, spec: ProcessSpec, ready: Callable[[], object]) -> ManagedProcess:
        """Start ``spec`` as the process named ``spec.name`` and wait until ``ready`` is truthy."""
        process = ManagedProcess(spec, self.root / "logs", None, 0)
        self.processes[spec.name] = process

        async def start() -> None:
            await process.start()
            await wait_until(ready, timeout=READY_SECONDS, what=spec.name, process=process)

        self.run(start(), START_SECONDS)
        return process

    def start_nats(self) -> ManagedProcess:
        """nats-server with JetStream, named "nats"; started again it keeps its store."""
        spec = infra.nats_spec(self.root / "nats", self.nats_port, self.nats_monitor_port)
        return self.launch(spec, lambda: infra.nats_ready(self.nats_monitor_port))

    def start_service(self, name: str, module: str, env: Mapping[str, str], ready_port: int) -> ManagedProcess:
        """``python -m module`` with the stack's service environment and ``env``
        over it; ready when gRPC health on ``ready_port`` says SERVING."""
        spec = ProcessSpec(
            name, [sys.executable, "-m", module], env={**self.mesh.stack.service_env(), **env}, cwd=ROOT
        )
        return self.launch(spec, lambda: grpc_serving(f"127.0.0.1:{ready_port}"))

    def stop(self, name: str) -> None:
        """SIGTERM (SIGKILL after the process's stop timeout) and reap it, if it is running."""
        process = self.processes.pop(name, None)
        if process is not None:
            self.run(process.stop(), STOP_SECONDS)

    def kill(self, name: str) -> None:
        """SIGKILL to its whole process group, no chance to clean up; returns once
        every process of the group is gone (PostgreSQL's backends too, so a new
        server never finds the old one's shared memory still in use)."""
        process = self.processes.pop(name)
        pid = process.pid
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        self.run(process.stop(), STOP_SECONDS)

        def group_gone() -> bool:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return True
            return False

        eventually(group_gone, STOP_SECONDS, f"every process of {name} to exit", interval=0.05)

    def pause(self, name: str) -> None:
        """SIGSTOP: the process keeps its sockets but answers nothing until ``resume``."""
        process = self.processes[name]
        assert process.pid is not None
        os.killpg(process.pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        """SIGCONT after ``pause``."""
        process = self.processes[name]
        assert process.pid is not None
        os.killpg(process.pid, signal.SIGCONT)

    def close(self) -> None:
        """Stop every process, the last started first; then raise the first failure to stop one."""
        failure: BaseException | None = None
        for name in reversed(list(self.processes)):
            try:
                self.stop(name)
            except Exception as exc:  # noqa: BLE001 - stop the others first
                failure = failure or exc
        if failure is not None:
            raise failure

    def log(self, name: str) -> str:
        """Everything the process ``name`` has written so far."""
        return (self.root / "logs" / f"{name}.log").read_text()

    def query(self, statement: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on the rig's database (committed) and return its rows."""
        with psycopg2.connect(self.database_url, connect_timeout=5) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return list(cur.fetchall())
