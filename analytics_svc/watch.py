"""Fan-out of result changes to WatchResults streams.

Every change to a result sends ``pg_notify('analysis_result', id)`` in the
transaction that makes it, whichever process (API, scheduler, worker) makes
it. This hub listens once per API process, reads each changed result once,
and hands it to every stream watching its dataset. Reads happen in the
database pool, never on the event loop; a slow stream gets a bounded queue
and is ended (to list and watch again) instead of slowing the others down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from analytics_svc import results_store as rs
from mesh_runtime.database import BlockingRunner
from mesh_runtime.pg_listen import PgListener

logger = logging.getLogger("analytics.watch")

QUEUE_LIMIT = 1000


class _Watcher:
    def __init__(self, dataset_id: str | None) -> None:
        self.dataset_id = dataset_id
        self.queue: asyncio.Queue[rs.ResultRow | None] = asyncio.Queue(QUEUE_LIMIT + 1)
        self.overflowed = False

    def offer(self, row: rs.ResultRow) -> None:
        if self.overflowed or (self.dataset_id and str(row.dataset_id) != self.dataset_id):
            return
        if self.queue.qsize() >= QUEUE_LIMIT:
            self.overflowed = True
            self.queue.put_nowait(None)  # tells the stream it fell behind
            return
        self.queue.put_nowait(row)


class ResultHub:
    """Listens for result changes and dispatches them to subscribers."""

    def __init__(self, runner: BlockingRunner, dsn: str) -> None:
        self.runner = runner
        self.listener = PgListener(dsn, [rs.RESULT_CHANNEL], self._notified)
        self._watchers: set[_Watcher] = set()
        self._changed: list[str] = []
        self._flush_scheduled = False
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start listening; returns once the listen connection is up (or after 10 s)."""
        self._task = asyncio.create_task(self.listener.run(self._stop))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listener.connected.wait(), 10)

    async def close(self) -> None:
        """Stop listening."""
        self._stop.set()
        if self._task is not None:
            await self._task

    @contextlib.asynccontextmanager
    async def subscribe(self, dataset_id: str | None) -> AsyncIterator[asyncio.Queue[rs.ResultRow | None]]:
        """A queue of changed results (of one dataset, or all) until the block ends;
        None in the queue means the subscriber fell behind."""
        watcher = _Watcher(dataset_id)
        self._watchers.add(watcher)
        try:
            yield watcher.queue
        finally:
            self._watchers.discard(watcher)

    def _notified(self, channel: str, payload: str) -> None:
        if not self._watchers:
            return
        self._changed.append(payload)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        # Notifications arriving while a read runs are batched into the next one.
        try:
            while self._changed:
                ids, self._changed = list(dict.fromkeys(self._changed)), []
                try:
                    rows = await self.runner.run(rs.get_results, ids)
                except Exception as exc:  # noqa: BLE001 - a failed read must not stop the hub
                    logger.warning("cannot read changed results", extra={"error": str(exc)})
                    continue
                by_id = {str(r.id): r for r in rows}
                for result_id in ids:
                    row = by_id.get(result_id)
                    if row is None:
                        continue
                    for watcher in list(self._watchers):
                        watcher.offer(row)
        finally:
            self._flush_scheduled = False
