"""One big analysis's chunk work on a Dask cluster (dask.distributed), when one is configured.

The JetStream queue spreads many analyses over workers; Dask spreads the
passes of one big analysis over a cluster. With ``ANALYTICS_DASK_SCHEDULER``
set, a pass of an analysis over chunks (``analyses.streaming``) is cut into
parts of about equal point counts on chunk edges; each part is one Dask task
that opens its own connection to PostgreSQL (the Dask worker's
``ANALYTICS_DATABASE_URL``: credentials come from the cluster's
configuration, never through the scheduler), reads its chunks as of the
analysis's exported snapshot, and reduces them batch by batch into a partial
result. Only the small partial results travel back; the analytics worker
merges them in time order with the same merges as the in-process path.

The tasks run this module's :func:`reduce_part`, so the Dask workers run the
analytics image (the same code). Without a scheduler nothing here is used.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics_svc.analyses import seasonal, streaming
from analytics_svc.analyses.compute import AnalysisFailed
from analytics_svc.config import DaskPartSettings
from analytics_svc.points import scan
from mesh_runtime.config import load_settings
from mesh_runtime.errors import Unavailable

logger = logging.getLogger("analytics.dask")

# Parts per Dask worker thread in a pass: a few, so a slow part leaves no thread idle.
PARTS_PER_THREAD = 2
CONNECT_TIMEOUT_SECONDS = 10.0


def reduce_part(dataset_id: str, snapshot: str, lo: int, hi: int, first: int, stop: int,
                spec: streaming.PassSpec) -> streaming.PassResult:  # fmt: skip
    """A Dask task: chunks ``[first, stop)`` of the window ``[lo, hi)``, read as of ``snapshot``
    from the database this process is configured with (``ANALYTICS_DATABASE_URL``), reduced by
    ``spec`` in batches within ``ANALYTICS_ANALYSIS_MEMORY_MB``."""
    settings = load_settings(DaskPartSettings)
    # Batches within this Dask worker's own memory setting too.
    batch = min(spec.batch_points, streaming.batch_points(settings.analysis_memory_mb * 1024 * 1024))
    with scan.part_scan(settings.database_url, snapshot, dataset_id, lo, hi) as part:
        return streaming.reduce_batches(spec, part.batches(batch, first, stop))


def seasonal_part(dataset_id: str, snapshot: str, lo: int, hi: int, windows: list[streaming.SeasonalWindow],
                  threshold: float, periods_s: tuple[int, ...]) -> streaming.SeasonalPart:  # fmt: skip
    """A Dask task: the seasonal method on consecutive ``windows`` of the window ``[lo, hi)``,
    each read (one at a time) as of ``snapshot`` from the database this process is configured with."""
    settings = load_settings(DaskPartSettings)
    result = streaming.SeasonalPart((), 0, (), (), ())
    with scan.part_scan(settings.database_url, snapshot, dataset_id, lo, hi) as part:
        for window in windows:
            ts, values = part.points_between(window.read_lo, window.read_hi)
            result = result.merge(streaming.seasonal_window(window, ts, values, threshold, periods_s))
    return result


class DaskCluster:
    """A client of one dask.distributed scheduler, opened on first use and kept (one per worker process)."""

    def __init__(self, address: str, connect_timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self._client: Any = None
        self._opening = threading.Lock()  # a worker's analyses run in several threads

    def client(self) -> Any:
        with self._opening:
            if self._client is None:
                from distributed import Client  # noqa: PLC0415 - only workers configured with a cluster import it

                try:
                    self._client = Client(self.address, timeout=self.connect_timeout, set_as_default=False)
                except (OSError, TimeoutError) as exc:
                    raise Unavailable(f"cannot reach the Dask scheduler at {self.address}: {exc}") from None
            return self._client

    def threads(self) -> int:
        """Worker threads of the cluster now (at least 1)."""
        return max(1, sum(self.client().nthreads().values()))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


@dataclass
class DaskPasses:
    """Runs the passes of one window's analysis as Dask tasks, one per part of its chunks."""

    cluster: DaskCluster
    window: scan.ChunkScan
    snapshot: str
    parts: list[tuple[int, int]]

    @classmethod
    def open(cls, cluster: DaskCluster, window: scan.ChunkScan) -> DaskPasses:
        parts = window.index.parts(cluster.threads() * PARTS_PER_THREAD)
        return cls(cluster, window, window.export_snapshot(), parts)

    def __call__(self, spec: streaming.PassSpec) -> streaming.PassResult:
        client = self.cluster.client()
        w = self.window
        futures = [
            client.submit(reduce_part, w.dataset_id, self.snapshot, w.lo, w.hi, a, b, spec, pure=False)
            for a, b in self.parts
        ]
        try:
            partials = client.gather(futures)
        except Exception as exc:  # noqa: BLE001 - a task's own error, raised again here by Dask
            raise AnalysisFailed(
                f"the Dask cluster at {self.cluster.address} could not read or reduce its part of the chunks: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        result = streaming.PassResult()
        for partial in partials:
            result = result.merge(partial)
        return result

    def seasonal(self, windows: list[streaming.SeasonalWindow], threshold: float,
                 periods_s: tuple[int, ...]) -> streaming.SeasonalPart:  # fmt: skip
        """The seasonal method's windows as Dask tasks (consecutive groups, one per part), merged in
        time order; SeasonalFailed from a window as from the in-process path."""
        client = self.cluster.client()
        w = self.window
        groups = [list(g) for g in np.array_split(np.array(windows, dtype=object), min(len(self.parts), len(windows)))]
        futures = [
            client.submit(seasonal_part, w.dataset_id, self.snapshot, w.lo, w.hi, group, threshold, periods_s,
                          pure=False)  # fmt: skip
            for group in groups
            if group
        ]
        try:
            parts = client.gather(futures)
        except (seasonal.SeasonalFailed, streaming.SeasonalWindowFailed):
            raise
        except Exception as exc:  # noqa: BLE001 - a task's own error, raised again here by Dask
            raise AnalysisFailed(
                f"the Dask cluster at {self.cluster.address} could not run its seasonal windows: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        result = streaming.SeasonalPart((), 0, (), (), ())
        for part in parts:
            result = result.merge(part)
        return result
