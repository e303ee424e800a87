"""The read caches of GetResult and ListResults, kept honest by result change notifications.

FinishedResults holds finished results by id; ResultPages holds ListResults
pages until something could change them. ``results.watch.ResultHub`` owns one
of each and clears what each change touches.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb


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
