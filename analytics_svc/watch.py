"""Fan-out of result changes to WatchResults streams, and the caches they keep honest.

Every change to a result sends ``pg_notify('analysis_result', '<id> <dataset id>')``
in the transaction that makes it, whichever process (API, scheduler, worker)
makes it. This hub listens once per API process, reads each changed result
once, and hands it to every stream watching its dataset. Reads happen in the
database pool, never on the event loop; a slow stream gets a bounded queue
and is ended (to list and watch again) instead of slowing the others down.

The same notifications keep two read caches honest: finished results for
GetResult, and ListResults pages, dropped per dataset when anything in the
dataset changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable

from analytics_svc.datasets.store import RESULTS_OF_DATASET_CHANNEL
from analytics_svc.results import store as result_store
from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb
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
        if not self.max_bytes:
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


class ResultPages:
    """ListResults pages by request, kept until something could change them.

    A page is stored with the change counter of what it covers: its dataset's
    when the request names one, every dataset's otherwise. A result created
    or changed in dataset D moves D's counter and the all-datasets counter,
    so exactly the pages that could show it stop being served; a change whose
    dataset is unknown (or a lost listen connection) moves every counter.
    Reading the counter before the database read and storing under it means a
    read that raced with a change is never kept.
    """

    def __init__(self, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._epoch = 0  # moves when every page must go
        self._all = 0  # moves on any change: pages across all datasets
        self._datasets: dict[str, int] = {}
        self._entries: OrderedDict[Hashable, tuple[tuple[int, int], pb.ListResultsResponse, int]] = OrderedDict()
        self._bytes = 0

    def stamp(self, dataset_id: str) -> tuple[int, int]:
        """What a page of ``dataset_id`` ("" for all datasets) is valid under, now."""
        if dataset_id:
            return self._epoch, self._datasets.get(dataset_id, 0)
        return self._epoch, self._all

    def get(self, key: Hashable, dataset_id: str) -> pb.ListResultsResponse | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] != self.stamp(dataset_id):
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: Hashable, dataset_id: str, stamp: tuple[int, int], page: pb.ListResultsResponse) -> None:
        if stamp != self.stamp(dataset_id) or not self.max_bytes:
            return
        self._drop(key)
        size = page.ByteSize()
        self._entries[key] = (stamp, page, size)
        self._bytes += size
        while self._bytes > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    def changed(self, dataset_id: str | None) -> None:
        """Something in ``dataset_id`` changed (None: somewhere, unknown where)."""
        self._all += 1
        if dataset_id is None:
            self._epoch += 1
        else:
            self._datasets[dataset_id] = self._datasets.get(dataset_id, 0) + 1

    def clear(self) -> None:
        self._epoch += 1
        self._entries.clear()
        self._bytes = 0

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[2]


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
