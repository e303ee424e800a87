"""The connection pool skips its liveness round trip only for a connection
handed back moments ago; a connection the server dropped while idle longer
is replaced without the caller noticing."""

from __future__ import annotations

import peewee
import pytest

from mesh_runtime.database import RecentlyCheckedPool, connect
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
