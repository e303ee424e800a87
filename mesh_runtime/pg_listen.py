"""PostgreSQL LISTEN on the event loop: wake-ups without polling.

One dedicated connection (outside the pool) listens on the given channels;
its socket is watched by the event loop, so notifications cost no thread. A
lost connection (PostgreSQL restarted, the network cut) is noticed at once,
or within seconds by TCP keepalive, and opened again with backoff: the
owner hears of both (``on_lost``, ``on_connect``) so it can stop trusting
what notifications kept up to date and catch up on what it missed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

logger = logging.getLogger("mesh.pg_listen")


# Backoff between attempts to open the listen connection.
FIRST_RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 2.0
# TCP keepalive on the listen connection: a peer that vanished without closing
# the socket (host down, network cut) is noticed within about 5 + 3 x 2 seconds,
# where a LISTEN connection, which never sends, would otherwise wait forever.
_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}


class PgListener:
    """Calls ``on_notify(channel, payload)`` for each NOTIFY on ``channels``.

    ``connected`` is set while notifications arrive. ``on_lost`` is called
    when an open listen connection breaks (not when ``stop`` ends it), and
    ``on_connect`` each time a connection is open (the first time too):
    notifications arrive from then on, and any sent before may have been missed.
    """

    def __init__(
        self,
        dsn: str,
        channels: Sequence[str],
        on_notify: Callable[[str, str], None],
        on_connect: Callable[[], None] | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.dsn = dsn
        self.channels = list(channels)
        self.on_notify = on_notify
        self.on_connect = on_connect
        self.on_lost = on_lost
        self.connected = asyncio.Event()

    def _open(self) -> psycopg2.extensions.connection:
        conn = psycopg2.connect(self.dsn, connect_timeout=5, application_name="analytics-mesh-listen", **_KEEPALIVE)
        try:
            conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
            with conn.cursor() as cursor:
                for channel in self.channels:
                    cursor.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        except BaseException:
            conn.close()
            raise
        return conn

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until ``stop`` is set; a lost connection is opened again with backoff."""
        delay = FIRST_RETRY_SECONDS
        down_since: float | None = None
        while not stop.is_set():
            try:
                conn = await asyncio.to_thread(self._open)
            except psycopg2.Error as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    logger.warning("cannot listen to PostgreSQL; retrying", extra={"error": str(exc).strip()})
                await _sleep_or_stop(stop, delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
                delay = min(delay * 2, MAX_RETRY_SECONDS)
                continue
            if down_since is not None:
                logger.info(
                    "listening to PostgreSQL again",
                    extra={"down_seconds": round(time.monotonic() - down_since, 1)},
                )
            delay, down_since = FIRST_RETRY_SECONDS, None
            if self.on_connect is not None:
                self.on_connect()
            if await self._listen(conn, stop):
                continue
            down_since = time.monotonic()
            logger.warning("lost the PostgreSQL listen connection; reconnecting")
            if self.on_lost is not None:
                self.on_lost()

    async def _listen(self, conn: psycopg2.extensions.connection, stop: asyncio.Event) -> bool:
        """Dispatch notifications from ``conn`` until ``stop`` (True) or it breaks (False); close it."""
        loop = asyncio.get_running_loop()
        broken = asyncio.Event()

        def readable() -> None:
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

        # The descriptor is read once: a broken connection no longer has one to ask for.
        fd = conn.fileno()
        loop.add_reader(fd, readable)
        self.connected.set()
        try:
            waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(broken.wait())}
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        finally:
            self.connected.clear()
            loop.remove_reader(fd)
            conn.close()  # closing a broken connection is a no-op, never an error
        return not broken.is_set()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
