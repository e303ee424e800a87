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
from collections import OrderedDict
from collections.abc import AsyncIterator

from analytics_svc import results_store as rs
from analytics_svc.store import RESULTS_OF_DATASET_CHANNEL
from mesh.analytics.v1 import analysis_pb2 as apb
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


class FinishedResults:
    """Finished results by id, kept in memory so GetResult skips the database.

    Only results that can no longer change are kept (succeeded or failed,
    insight settled); they still go away when the database says something
    touched them (a notification for the result or for its dataset), and all
    of them go when the listen connection was lost (notifications may have
    been missed). ``generation`` moves on at each of those, so a read that
    raced with one is not stored.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.generation = 0
        self._entries: OrderedDict[str, tuple[str, apb.Result, int]] = OrderedDict()
        self._bytes = 0

    def get(self, result_id: str) -> apb.Result | None:
        entry = self._entries.get(result_id)
        if entry is None:
            return None
        self._entries.move_to_end(result_id)
        return entry[1]

    def put(self, result: apb.Result, generation: int) -> None:
        settled = result.insight.status != apb.INSIGHT_STATUS_PENDING
        finished = result.status in (apb.RESULT_STATUS_SUCCEEDED, apb.RESULT_STATUS_FAILED)
        if generation != self.generation or not (finished and settled) or result.id in self._entries:
            return
        size = result.ByteSize()
        self._entries[result.id] = (result.dataset_id, result, size)
        self._bytes += size
        while self._bytes > self.max_bytes and self._entries:
            _, (_, _, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped

    def forget(self, result_id: str) -> None:
        self.generation += 1
        entry = self._entries.pop(result_id, None)
        if entry is not None:
            self._bytes -= entry[2]

    def forget_dataset(self, dataset_id: str) -> None:
        self.generation += 1
        for result_id in [k for k, (d, _, _) in self._entries.items() if d == dataset_id]:
            self.forget(result_id)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._bytes = 0


class ResultHub:
    """Listens for result changes, dispatches them to subscribers and keeps
    the finished-results cache honest."""

    def __init__(self, runner: BlockingRunner, dsn: str) -> None:
        self.runner = runner
        self.finished = FinishedResults()
        self.listener = PgListener(
            dsn, [rs.RESULT_CHANNEL, RESULTS_OF_DATASET_CHANNEL], self._notified, on_reconnect=self.finished.clear
        )
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

    def cache_generation(self) -> int | None:
        """The cache generation to store a read under; None while the cache
        cannot be kept honest (not listening)."""
        return self.finished.generation if self.listener.connected.is_set() else None

    def _notified(self, channel: str, payload: str) -> None:
        if channel == RESULTS_OF_DATASET_CHANNEL:
            self.finished.forget_dataset(payload)
            return
        self.finished.forget(payload)
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
