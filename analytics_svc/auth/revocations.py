"""Keeps a replica's revocation list current: loaded from the database, then
followed through PostgreSQL notifications.

A revocation is committed with a ``pg_notify`` (auth/store.py), so every
replica listening hears of it within milliseconds and refuses the tokens it
covers from the next call on. The whole list is loaded again when the
listen connection comes back (notifications may have been missed), every
few seconds while it is down, and every ``refresh_seconds`` in any case.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from analytics_svc.auth import store as auth_store
from mesh_runtime.auth import Revocation, Revocations
from mesh_runtime.database import BlockingRunner, utc_now
from mesh_runtime.pg_listen import PgListener

logger = logging.getLogger("analytics.auth")


class RevocationFeed:
    """Fills ``revocations`` from the database and its notifications until closed."""

    def __init__(
        self,
        runner: BlockingRunner,
        dsn: str,
        revocations: Revocations,
        refresh_seconds: float = 60.0,
        poll_seconds: float = 2.0,
    ) -> None:
        self.runner = runner
        self.revocations = revocations
        self.refresh_seconds = refresh_seconds
        self.poll_seconds = poll_seconds
        self.listener = PgListener(
            dsn,
            [auth_store.REVOCATION_CHANNEL],
            self._notified,
            on_connect=self._reload_soon,
            on_lost=self._reload_soon,
        )
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def _notified(self, channel: str, payload: str) -> None:
        try:
            self.revocations.add(Revocation.from_payload(payload))
        except ValueError:
            logger.warning("ignored a malformed revocation notification", extra={"payload": payload[:100]})
            self._reload_soon()

    def _reload_soon(self) -> None:
        self._wake.set()

    async def _reload(self) -> bool:
        try:
            self.revocations.replace(await self.runner.run(auth_store.active_revocations, utc_now()))
        except Exception as exc:  # noqa: BLE001 - kept trying; the list in memory stays in force
            logger.warning("could not load token revocations; retrying", extra={"error": str(exc)})
            return False
        return True

    async def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            loaded = await self._reload()
            wait = self.refresh_seconds if loaded and self.listener.connected.is_set() else self.poll_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def start(self) -> None:
        """Listen, then load the list (so nothing committed in between is missed)."""
        self._tasks.append(asyncio.create_task(self.listener.run(self._stop)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listener.connected.wait(), 10)
        await self._reload()
        self._tasks.append(asyncio.create_task(self._run()))

    async def close(self) -> None:
        """Stop listening and reloading."""
        self._stop.set()
        self._wake.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
