"""Fan-out of result changes to WatchResults streams, and the caches they keep honest.

Every change to a result sends ``pg_notify('analysis_result', '<id> <dataset id>')``
in the transaction that makes it, whichever process (API, scheduler, worker)
makes it. This hub listens once per API process, reads each changed result
once, and hands it to every stream watching its dataset. Reads happen in the
database pool, never on the event loop; a slow stream gets a bounded queue
and is ended (to list and watch again) instead of slowing the others down.

The same notifications keep the two read caches (``read_caches``) honest:
finished results for GetResult, and ListResults pages, dropped per dataset
when anything in the dataset changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

from analytics_svc.datasets.store import RESULTS_OF_DATASET_CHANNEL
from analytics_svc.results import store as result_store
from analytics_svc.results.read_caches import FinishedResults, ResultPages
from mesh_runtime.database import BlockingRunner
from mesh_runtime.pg_listen import PgListener

logger = logging.getLogger("analytics.watch")

QUEUE_LIMIT = 1000


class _Watcher:
    def __init__(self, dataset_id: str | None) -> None:
        self.dataset_id = dataset_id
        self.queue: asyncio.Queue[result_store.ResultRow | None] = asyncio.Queue(QUEUE_LIMIT + 1)
        self.overflowed = False

    def offer(self, row: result_store.ResultRow) -> None:
        if self.overflowed or (self.dataset_id and str(row.dataset_id) != self.dataset_id):
            return
        if self.queue.qsize() >= QUEUE_LIMIT:
            self.overflowed = True
            self.queue.put_nowait(None)  # tells the stream it fell behind
            return
        self.queue.put_nowait(row)


class ResultHub:
    """Listens for result changes, dispatches them to subscribers and keeps
    the finished-results cache honest."""

    def __init__(
        self,
        runner: BlockingRunner,
        dsn: str,
        result_cache_bytes: int = 64 * 1024 * 1024,
        page_cache_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self.runner = runner
        self.finished = FinishedResults(result_cache_bytes)
        self.pages = ResultPages(page_cache_bytes)
        self.listener = PgListener(
            dsn,
            [result_store.RESULT_CHANNEL, RESULTS_OF_DATASET_CHANNEL],
            self._notified,
            on_reconnect=self._forget_all,
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
    async def subscribe(self, dataset_id: str | None) -> AsyncIterator[asyncio.Queue[result_store.ResultRow | None]]:
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

    @property
    def caching(self) -> bool:
        """Whether the caches may be used: only while notifications arrive."""
        return self.listener.connected.is_set()

    def dataset_changed(self, dataset_id: str) -> None:
        """Drop what the caches hold of a dataset now (the writer's own process
        need not wait for the notification: read-your-writes)."""
        with contextlib.suppress(ValueError):  # the form PostgreSQL prints, as in notifications
            dataset_id = str(uuid.UUID(dataset_id))
        self.finished.forget_dataset(dataset_id)
        self.pages.changed(dataset_id)

    def _forget_all(self) -> None:
        self.finished.clear()
        self.pages.clear()

    def _notified(self, channel: str, payload: str) -> None:
        if channel == RESULTS_OF_DATASET_CHANNEL:
            self.dataset_changed(payload)
            return
        result_id, dataset_id = result_store.changed_result(payload)
        self.finished.forget(result_id)
        self.pages.changed(dataset_id)
        if not self._watchers:
            return
        self._changed.append(result_id)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        # Notifications arriving while a read runs are batched into the next one.
        try:
            while self._changed:
                ids, self._changed = list(dict.fromkeys(self._changed)), []
                try:
                    rows = await self.runner.run(result_store.get_results, ids)
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
