"""PostgreSQL through peewee: connection pool, versioned migrations, and a
thread pool so that blocking queries never run on the event loop thread.

Each service owns its own database; nothing here lets one service reach
another's tables.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import peewee
from playhouse.db_url import parse as parse_db_url
from playhouse.pool import PooledPostgresqlDatabase

from mesh_runtime.errors import Unavailable

logger = logging.getLogger("mesh.database")

P = ParamSpec("P")
R = TypeVar("R")


def utc_now() -> dt.datetime:
    """The current time, timezone-aware (UTC): the default of timestamp columns."""
    return dt.datetime.now(dt.UTC)


def save_changes(row: peewee.Model, changes: dict[str, object]) -> None:
    """Set ``changes`` on ``row``, stamp its ``update_time`` and save it (in the caller's transaction)."""
    for name, value in changes.items():
        setattr(row, name, value)
    row.update_time = utc_now()  # type: ignore[attr-defined]
    row.save()


class RecentlyCheckedPool(PooledPostgresqlDatabase):
    """peewee's pool, without a round trip for a connection just handed back.

    peewee checks every connection it hands out with ``SELECT 1``, one more
    round trip per call. A connection handed back moments ago by a call that
    got its answers is alive; only one idle longer than ``ping_after_idle``
    seconds (the server, a proxy or a restart may have dropped it) is checked.
    This is HikariCP's "alive bypass window".
    """

    ping_after_idle = 0.5

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._returned: dict[int, float] = {}

    def _is_closed(self, conn: Any) -> bool:
        returned = self._returned.pop(id(conn), None)
        if conn.closed:
            return True
        if returned is not None and time.monotonic() - returned < self.ping_after_idle:
            return False
        return bool(super()._is_closed(conn))

    def _close(self, conn: Any, close_conn: bool = False) -> None:
        super()._close(conn, close_conn)
        if not close_conn and not conn.closed:
            # Back in the pool (peewee rolled back anything left open).
            self._returned[id(conn)] = time.monotonic()


def connect(url: str, max_connections: int = 8) -> PooledPostgresqlDatabase:
    """A pooled peewee database for a ``postgresql://`` URL (not yet connected)."""
    params = parse_db_url(url)
    database = params.pop("database")
    # Sessions in UTC: timestamptz values come back as UTC datetimes, so
    # 9999-12-31T23:59:59.999999Z never reads as a year-10000 local time.
    params.setdefault("options", "-c timezone=UTC")
    return RecentlyCheckedPool(
        database,
        max_connections=max_connections,
        stale_timeout=300,
        timeout=10,
        connect_timeout=5,
        application_name="analytics-mesh",
        **params,
    )


@dataclass(frozen=True)
class Migration:
    """One schema change, applied once, in order of ``version``."""

    version: int
    name: str
    apply: Callable[[peewee.Database], None]


def sql_migration(version: int, name: str, script: str) -> Migration:
    """A migration that runs a fixed SQL script (statements end with ";" and a line break).

    Migrations are frozen SQL rather than ``create_tables`` on the current
    models: a model that changes later must not change what an old
    migration does.
    """

    def apply(db: peewee.Database) -> None:
        for statement in script.split(";\n"):
            if statement.strip():
                db.execute_sql(statement)

    return Migration(version, name, apply)


_MIGRATIONS_TABLE = "schema_migrations"
# Any 64-bit number unique to "migrations" works as the advisory lock key.
_MIGRATION_LOCK_KEY = 0x6D65736867726174


def migrate(db: peewee.Database, migrations: Sequence[Migration]) -> list[int]:
    """Apply the migrations not yet recorded; return the versions applied.

    Runs in one transaction under an advisory lock, so replicas starting
    together apply each migration exactly once, and a failing migration
    leaves the schema as it was.
    """
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)):
        raise ValueError("migration versions must be unique and increasing")
    applied: list[int] = []
    with db.connection_context(), db.atomic():
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
        db.execute_sql(
            f"CREATE TABLE IF NOT EXISTS {_MIGRATIONS_TABLE} ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in db.execute_sql(f"SELECT version FROM {_MIGRATIONS_TABLE}")}  # noqa: S608
        for migration in migrations:
            if migration.version in done:
                continue
            logger.info("applying migration", extra={"version": migration.version, "migration": migration.name})
            migration.apply(db)
            db.execute_sql(
                f"INSERT INTO {_MIGRATIONS_TABLE} (version, name) VALUES (%s, %s)",  # noqa: S608
                (migration.version, migration.name),
            )
            applied.append(migration.version)
    return applied


# SQLSTATEs besides class 08 (connection exception) that mean the database is
# away for now: the server shutting down, crashed or starting up (57P01-57P03),
# no connection slot left (53300).
_AWAY_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def is_connection_failure(exc: peewee.OperationalError) -> bool:
    """Whether a database error means the database cannot be reached (connecting
    failed, the connection broke, the server is going away): a passing outage,
    unlike a statement timeout, a lock not available or a serialization
    failure, which are errors of the call itself."""
    original = getattr(exc, "orig", None) or exc.__cause__
    code = getattr(original, "pgcode", None)
    if code is None:
        # The server never answered with an error: the connection could not be
        # made, or broke ("server closed the connection unexpectedly").
        return True
    return str(code).startswith("08") or code in _AWAY_STATES


class BlockingRunner:
    """Runs blocking database work on a small thread pool, one connection per thread.

    ``await runner.run(fn, ...)`` runs ``fn`` in a pool thread inside a
    connection context; a lost or refused database connection (and only that:
    see ``is_connection_failure``) becomes ``Unavailable`` so callers see a
    retryable status, not INTERNAL. The
    outage is logged once when it starts (with the driver's reason) and once
    when the database answers again, not at every failed call.
    """

    def __init__(self, db: peewee.Database, workers: int = 4, name: str = "db") -> None:
        self.db = db
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._failing_since: float | None = None

    def _call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with self.db.connection_context():
                result = fn(*args, **kwargs)
        except (peewee.OperationalError, peewee.InterfaceError) as exc:
            # A connection the server dropped mid-transaction fails again on the
            # rollback ("connection already closed"): the same outage, not a bug.
            if isinstance(exc, peewee.InterfaceError) and "connection already closed" not in str(exc):
                raise
            if isinstance(exc, peewee.OperationalError) and not is_connection_failure(exc):
                raise  # a real error of this call (e.g. a statement timeout), not an outage
            if self._failing_since is None:
                self._failing_since = time.monotonic()
                logger.warning("database unavailable", extra={"error": str(exc).strip()})
            raise Unavailable("the database is unavailable; retry shortly", retry_after=1.0) from exc
        if self._failing_since is not None:
            down, self._failing_since = time.monotonic() - self._failing_since, None
            logger.info("database available again", extra={"down_seconds": round(down, 1)})
        return result

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` off the event loop and return its result.

        It runs in a copy of the caller's context (as ``asyncio.to_thread``
        does), so its log lines keep the request id and its queries and
        outbox rows belong to the caller's trace.
        """
        loop = asyncio.get_running_loop()
        call = functools.partial(self._call, fn, *args, **kwargs)
        return await loop.run_in_executor(self._executor, contextvars.copy_context().run, call)

    def close(self) -> None:
        """Wait for running work, then close the pool's connections."""
        self._executor.shutdown(wait=True)
        if isinstance(self.db, PooledPostgresqlDatabase):
            self.db.close_all()


def open_database(
    url: str,
    migrations: Sequence[Migration],
    *,
    setting_name: str,
    pool_size: int = 8,
    bind: Callable[[peewee.Database], None] | None = None,
) -> PooledPostgresqlDatabase:
    """Connect to the service's own database, bind its models (``bind``) and
    bring its schema up to date.

    A database that cannot be reached raises Unavailable with a message naming
    the setting to check, for the one-line start-up error.
    """
    db = connect(url, max_connections=pool_size)
    if bind is not None:
        bind(db)
    try:
        migrate(db, migrations)
    except peewee.OperationalError as exc:
        first_line = (str(exc).strip().splitlines() or ["connection failed"])[0]
        raise Unavailable(
            f"cannot use the database from {setting_name}: {first_line}. "
            "Is PostgreSQL running and does the database exist?"
        ) from None
    return db
