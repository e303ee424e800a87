"""The outbox relay: publishes outbox rows to JetStream, then marks them.

Rows are taken in a transaction with ``FOR UPDATE SKIP LOCKED``, so several
relays share the outbox without publishing a row at the same time; a row is
marked published only after JetStream acknowledged it. If the relay dies
between the two, the row is published again later with the same
``Nats-Msg-Id`` and JetStream drops the copy (duplicate window). While NATS is
down nothing is marked, so nothing is lost: the rows go out when it returns.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from nats.js import JetStreamContext

from analytics_svc import schema
from analytics_svc.jobs import outbox
from mesh_runtime.database import BlockingRunner

logger = logging.getLogger("analytics.relay")

PUBLISH_TIMEOUT_SECONDS = 5.0
PRUNE_AFTER = dt.timedelta(days=1)


class OutboxRelay:
    """Moves outbox rows to JetStream, woken by pg_notify or every ``poll_seconds``."""

    def __init__(
        self, runner: BlockingRunner, js: JetStreamContext, batch_size: int = 500, poll_seconds: float = 1.0
    ) -> None:
        self.runner = runner
        self.js = js
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self.published = 0

    def wake(self) -> None:
        """Look at the outbox now (new rows were committed)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set."""
        loop = asyncio.get_running_loop()
        backoff = 0.5
        last_prune = 0.0
        while not stop.is_set():
            self._wake.clear()
            try:
                moved, failed = await self.runner.run(self._relay_batch, loop)
                backoff = 0.5
            except Exception as exc:  # noqa: BLE001 - keep relaying whatever went wrong
                logger.warning("outbox relay failed; retrying", extra={"error": str(exc)})
                moved, failed = 0, True
            if failed:
                await _wait(stop, backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            if moved >= self.batch_size:
                continue
            if loop.time() - last_prune > 600:
                last_prune = loop.time()
                await self.runner.run(outbox.prune_outbox, PRUNE_AFTER)
            await _wait_any(stop, self._wake, self.poll_seconds)

    def _relay_batch(self, loop: asyncio.AbstractEventLoop) -> tuple[int, bool]:
        """In a database thread: lock due rows, publish them on the loop, mark them."""
        with schema.database_proxy.atomic():
            rows = outbox.due_outbox_rows(self.batch_size)
            if not rows:
                return 0, False
            future = asyncio.run_coroutine_threadsafe(self._publish(rows), loop)
            done, failed = future.result(timeout=PUBLISH_TIMEOUT_SECONDS * 3 + 5)
            outbox.mark_published(done)
            outbox.mark_attempted(failed)
        self.published += len(done)
        if failed:
            logger.warning("NATS did not take outbox messages; they stay queued", extra={"count": len(failed)})
        return len(done), bool(failed)

    async def _publish(self, rows: list[outbox.OutboxRow]) -> tuple[list[int], list[int]]:
        async def one(row: outbox.OutboxRow) -> None:
            await self.js.publish(
                row.subject,
                bytes(row.payload),
                timeout=PUBLISH_TIMEOUT_SECONDS,
                headers={**(row.headers or {}), "Nats-Msg-Id": row.message_id},
            )

        outcomes = await asyncio.gather(*(one(r) for r in rows), return_exceptions=True)
        done = [r.id for r, o in zip(rows, outcomes, strict=True) if not isinstance(o, BaseException)]
        failed = [r.id for r, o in zip(rows, outcomes, strict=True) if isinstance(o, BaseException)]
        return done, failed


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())}
    _, pending = await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for waiter in pending:
        waiter.cancel()
