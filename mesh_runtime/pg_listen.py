"""PostgreSQL LISTEN on the event loop: wake-ups without polling.

One dedicated connection (outside the pool) listens on the given channels;
its socket is watched by the event loop, so notifications cost no thread. A
lost connection is re-opened with backoff, and ``on_reconnect`` is called so
the owner can catch up on what it may have missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

logger = logging.getLogger("mesh.pg_listen")


class PgListener:
    """Calls ``on_notify(channel, payload)`` for each NOTIFY on ``channels``."""

    def __init__(
        self,
        dsn: str,
        channels: Sequence[str],
        on_notify: Callable[[str, str], None],
        on_reconnect: Callable[[], None] | None = None,
    ) -> None:
        self.dsn = dsn
        self.channels = list(channels)
        self.on_notify = on_notify
        self.on_reconnect = on_reconnect
        self.connected = asyncio.Event()

    def _open(self) -> psycopg2.extensions.connection:
        conn = psycopg2.connect(self.dsn, connect_timeout=5, application_name="analytics-mesh-listen")
        conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        with conn.cursor() as cursor:
            for channel in self.channels:
                cursor.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        return conn

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until ``stop`` is set, reconnecting after failures."""
        loop = asyncio.get_running_loop()
        delay = 0.2
        first = True
        while not stop.is_set():
            try:
                conn = await asyncio.to_thread(self._open)
            except psycopg2.Error as exc:
                logger.warning("cannot listen to PostgreSQL", extra={"error": str(exc).strip()})
                await _sleep_or_stop(stop, delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.2
            if not first and self.on_reconnect is not None:
                self.on_reconnect()
            first = False
            self.connected.set()
            broken = asyncio.Event()

            def readable(conn: psycopg2.extensions.connection = conn, broken: asyncio.Event = broken) -> None:
                try:
                    conn.poll()
                except psycopg2.Error:
                    broken.set()
                    return
                while conn.notifies:
                    note = conn.notifies.pop(0)
                    try:
                        self.on_notify(note.channel, note.payload)
                    except Exception:
                        logger.exception("notification handler failed")

            loop.add_reader(conn.fileno(), readable)
            try:
                waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(broken.wait())}
                _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for waiter in pending:
                    waiter.cancel()
            finally:
                loop.remove_reader(conn.fileno())
                self.connected.clear()
                conn.close()
            if broken.is_set():
                logger.warning("lost the PostgreSQL listen connection; reconnecting")


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
