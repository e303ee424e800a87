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

When the listen connection is lost (PostgreSQL restarted, the network cut),
changes may go unseen until it is back: the caches are bypassed from that
moment and emptied when it is back, every watch is ended with UNAVAILABLE
(list and watch again) and new ones are refused until then, and the hub
reports the feed down (the server's health says NOT_SERVING for the
service) until the listener has reconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable

from analytics_svc.datasets.store import RESULTS_OF_DATASET_CHANNEL
from analytics_svc.results import store as result_store
from analytics_svc.results.read_caches import FinishedResults, ResultPages
from mesh_runtime.database import BlockingRunner
from mesh_runtime.errors import MeshError, ResourceExhausted, Unavailable
from mesh_runtime.pg_listen import PgListener

logger = logging.getLogger("analytics.watch")

QUEUE_LIMIT = 1000

Update = result_store.ResultRow | MeshError
"""What a watch receives: a changed result, or the error that ends the watch."""

_FEED_LOST = "the change feed was interrupted (the database connection was lost); list the results and watch again"


class _Watcher:
    def __init__(self, dataset_id: str | None) -> None:
        self.dataset_id = dataset_id
        self.queue: asyncio.Queue[Update] = asyncio.Queue(QUEUE_LIMIT + 1)
        self.ended = False

    def offer(self, row: result_store.ResultRow) -> None:
        if self.ended or (self.dataset_id and str(row.dataset_id) != self.dataset_id):
            return
        if self.queue.qsize() >= QUEUE_LIMIT:
            self.end(
                ResourceExhausted(
                    "this watch fell too far behind the changes; list the results and watch again", retry_after=1.0
                )
            )
            return
        self.queue.put_nowait(row)

    def end(self, error: MeshError) -> None:
        """End the watch with ``error`` after what it has queued (the queue keeps room for it)."""
        if not self.ended:
            self.ended = True
            self.queue.put_nowait(error)


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
            on_connect=self._feed_back,
            on_lost=self._feed_lost,
        )
        self._watchers: set[_Watcher] = set()
        self._changed: list[str] = []
        self._flush_scheduled = False
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._on_feed: Callable[[bool], None] = lambda _up: None

    async def start(self, on_feed: Callable[[bool], None] | None = None) -> None:
        """Start listening; returns once the listen connection is up (or after 10 s).

        ``on_feed(False)`` is called when changes may go unseen from now on
        (the connection is down), ``on_feed(True)`` when they are seen again.
        """
        if on_feed is not None:
            self._on_feed = on_feed
        self._task = asyncio.create_task(self.listener.run(self._stop))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listener.connected.wait(), 10)
        if not self.listener.connected.is_set():
            self._feed_lost()  # not listening yet: the same as a lost connection

    async def close(self) -> None:
        """Stop listening."""
        self._stop.set()
        if self._task is not None:
            await self._task

    @contextlib.asynccontextmanager
    async def subscribe(self, dataset_id: str | None) -> AsyncIterator[asyncio.Queue[Update]]:
        """A queue of changed results (of one dataset, or all) until the block ends;
        an error in the queue ends the watch (it fell behind, or the feed was lost).
        Unavailable at once while changes cannot be seen."""
        if not self.listener.connected.is_set():
            raise Unavailable(_FEED_LOST, retry_after=1.0)
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

    def _feed_lost(self) -> None:
        # The caches are bypassed from now on (``caching`` is False); watches end.
        for watcher in list(self._watchers):
            watcher.end(Unavailable(_FEED_LOST, retry_after=1.0))
        self._on_feed(False)

    def _feed_back(self) -> None:
        # Changes made while the connection was down were not heard: start afresh.
        self.finished.clear()
        self.pages.clear()
        self._on_feed(True)

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
