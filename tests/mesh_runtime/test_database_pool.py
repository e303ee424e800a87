"""The connection pool skips its liveness round trip only for a connection
handed back moments ago; a connection the server dropped while idle longer
is replaced without the caller noticing."""

from __future__ import annotations

import peewee
import pytest

from local_stack.ports import free_port
from mesh_runtime.database import BlockingRunner, RecentlyCheckedPool, connect, is_connection_failure
from mesh_runtime.errors import Unavailable
from tests.conftest import RunningStack


def _backend_pid(db: peewee.Database) -> int:
    with db.connection_context():
        return int(db.execute_sql("SELECT pg_backend_pid()").fetchone()[0])


def _terminate(mesh: RunningStack, pid: int) -> None:
    admin = connect(mesh.database_url("postgres"), max_connections=1)
    with admin.connection_context():
        assert admin.execute_sql("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
    admin.close_all()


def test_a_connection_dropped_while_idle_is_replaced_unnoticed(mesh: RunningStack) -> None:
    db = connect(mesh.database_url("postgres"), max_connections=1)
    assert isinstance(db, RecentlyCheckedPool)
    first = _backend_pid(db)
    assert _backend_pid(db) == first  # the same connection, reused
    _terminate(mesh, first)
    db.ping_after_idle = 0.0  # as if it had been idle past the window, without waiting
    assert _backend_pid(db) != first  # checked, found dead, replaced: the call succeeded
    db.close_all()


def test_within_the_window_a_dropped_connection_fails_one_call_then_is_replaced(mesh: RunningStack) -> None:
    db = connect(mesh.database_url("postgres"), max_connections=1)
    db.ping_after_idle = 60.0  # everything counts as just handed back
    first = _backend_pid(db)
    _terminate(mesh, first)
    with pytest.raises(peewee.OperationalError):  # BlockingRunner answers UNAVAILABLE, retry shortly
        _backend_pid(db)
    assert _backend_pid(db) != first
    db.close_all()


async def test_only_a_lost_database_is_unavailable_other_operational_errors_are_real(mesh: RunningStack) -> None:
    """BlockingRunner answers "unavailable; retry shortly" when the database
    cannot be reached or drops the connection, and passes other
    OperationalErrors (here a statement timeout) on as the errors they are."""
    db = connect(mesh.database_url("postgres"), max_connections=1)
    runner = BlockingRunner(db, workers=1, name="test-db")

    def too_slow() -> None:
        db.execute_sql("SET statement_timeout = 50")
        try:
            db.execute_sql("SELECT pg_sleep(5)")
        finally:
            db.execute_sql("RESET statement_timeout")

    def terminated() -> None:
        db.execute_sql("SELECT pg_terminate_backend(pg_backend_pid())")

    try:
        with pytest.raises(peewee.OperationalError) as timed_out:
            await runner.run(too_slow)
        assert "statement timeout" in str(timed_out.value)
        assert not isinstance(timed_out.value, Unavailable) and not is_connection_failure(timed_out.value)
        # The server ending this connection (57P01): the same outage as a restart.
        with pytest.raises(Unavailable, match="retry shortly"):
            await runner.run(terminated)
    finally:
        db.close_all()

    unreachable = connect(f"postgresql://nobody@127.0.0.1:{free_port()}/none", max_connections=1)
    with pytest.raises(Unavailable, match="retry shortly"):
        await BlockingRunner(unreachable, workers=1, name="test-db").run(lambda: unreachable.execute_sql("SELECT 1"))
