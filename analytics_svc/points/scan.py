"""Reading a window of a dataset's chunks batch by batch, in bounded memory, as of one moment.

An analysis over chunks (``analyses.streaming``) reads the window several
times (one pass per statistic that needs the result of another). A
:class:`ChunkScan` holds the window's chunk summaries (count, min, max, first
and last time per chunk: a few dozen bytes per chunk, never the points) and
reads the chunks in time order, a run of whole chunks at a time with one
binary COPY, decoded by pcodec: at most ``max_points`` points in memory per
batch (or one chunk, when a chunk alone is bigger; chunks hold at most
``chunks.MAX_POINTS``).

Every pass sees the same points: the scan runs in one REPEATABLE READ, read-only
transaction, whose snapshot it exports (:meth:`ChunkScan.export_snapshot`) so
that Dask tasks reading parts of the window from their own connections
(:func:`part_scan`) see that moment too.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg2

from analytics_svc.points import chunks as ch
from analytics_svc.points import pgcopy
from analytics_svc.schema import database_proxy
from mesh_runtime.errors import NotFound

_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)

# The chunks that overlap [lo, hi) (as points.store selects them): the one
# holding lo (the latest starting at or before it) and those starting inside.
_OVERLAPPING = (
    "dataset_id = %s AND start_us >= coalesce("
    "(SELECT max(start_us) FROM point_chunk WHERE dataset_id = %s AND start_us <= %s), %s)"
    " AND start_us < %s AND end_us > %s"
)


@dataclass(frozen=True, eq=False)
class ChunkIndex:
    """Summaries of the chunks overlapping a window, in time order (arrays of one element per chunk)."""

    start_us: np.ndarray
    count: np.ndarray
    first_us: np.ndarray
    last_us: np.ndarray
    min: np.ndarray
    max: np.ndarray

    def __len__(self) -> int:
        return int(self.start_us.size)

    @property
    def points(self) -> int:
        """Points in the chunks (the window's, plus any of the first and last chunk outside it)."""
        return int(self.count.sum())

    def runs(self, max_points: int, first: int = 0, stop: int | None = None) -> list[tuple[int, int]]:
        """Chunks ``[first, stop)`` cut into runs ``[a, b)`` of consecutive chunks of at most
        ``max_points`` points together (a chunk bigger than that is a run of its own)."""
        stop = len(self) if stop is None else stop
        runs = []
        a = first
        while a < stop:
            total = np.cumsum(self.count[a:stop])
            b = a + max(1, int(np.searchsorted(total, max_points, side="right")))
            runs.append((a, b))
            a = b
        return runs

    def parts(self, parts: int) -> list[tuple[int, int]]:
        """The chunks cut into up to ``parts`` contiguous ranges ``[a, b)`` of about equal point counts."""
        if len(self) == 0:
            return []
        before = np.concatenate([[0], np.cumsum(self.count)])
        total = int(before[-1])
        cuts = {int(np.searchsorted(before, total * i // parts, side="left")) for i in range(1, parts)}
        bounds = [0, *sorted(c for c in cuts if 0 < c < len(self)), len(self)]
        return list(zip(bounds[:-1], bounds[1:], strict=True))


class ChunkScan:
    """A window ``[lo, hi)`` of one dataset's chunks on a cursor in a REPEATABLE READ transaction."""

    def __init__(self, cursor: Any, dataset_id: str, lo: int | None, hi: int | None) -> None:
        self.cursor = cursor
        self.dataset_id = dataset_id
        self.key = _key(dataset_id)
        self.lo = _INT64_MIN if lo is None else int(lo)
        self.hi = _INT64_MAX if hi is None else int(hi)
        cursor.execute("SELECT 1 FROM dataset WHERE id = %s", (str(self.key),))
        if cursor.fetchone() is None:
            raise NotFound("dataset", dataset_id)
        self.index = self._index()

    def _index(self) -> ChunkIndex:
        if self.lo >= self.hi:
            rows: list[tuple[Any, ...]] = []
        else:
            self.cursor.execute(
                "SELECT start_us, point_count, first_us, last_us, min_value, max_value FROM point_chunk"  # noqa: S608
                f" WHERE {_OVERLAPPING} ORDER BY start_us",
                [str(self.key), str(self.key), self.lo, self.lo, self.hi, self.lo],
            )
            rows = self.cursor.fetchall()
        table = np.array(rows, dtype=object).reshape(len(rows), 6)
        ints = table[:, :4].astype(np.int64)
        floats = table[:, 4:].astype(np.float64)
        return ChunkIndex(ints[:, 0], ints[:, 1], ints[:, 2], ints[:, 3], floats[:, 0], floats[:, 1])

    def export_snapshot(self) -> str:
        """This transaction's snapshot, for other connections to read the same moment (while it lasts)."""
        self.cursor.execute("SELECT pg_export_snapshot()")
        (snapshot,) = self.cursor.fetchone()
        return str(snapshot)

    def batches(
        self, max_points: int, first: int = 0, stop: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The window's points in chunks ``[first, stop)``, in time order, a run of chunks at a time
        (see :meth:`ChunkIndex.runs`); points outside the window are cut off. Empty batches are skipped."""
        for a, b in self.index.runs(max_points, first, stop):
            ts, values = self._read(a, b)
            lo, hi = np.searchsorted(ts, [self.lo, self.hi])
            if hi > lo:
                yield ts[lo:hi], values[lo:hi]

    def points_between(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """The window's points in ``[lo, hi)`` (the caller keeps that range bounded)."""
        lo, hi = max(lo, self.lo), min(hi, self.hi)
        starts = self.index.start_us
        a = max(int(np.searchsorted(starts, lo, side="right")) - 1, 0)
        b = int(np.searchsorted(starts, hi, side="left"))
        if lo >= hi or a >= b:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        ts, values = self._read(a, b)
        i, j = np.searchsorted(ts, [lo, hi])
        return ts[i:j], values[i:j]

    def _read(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Chunks ``[a, b)`` of the index decoded into two arrays, with one binary COPY."""
        sql = self.cursor.mogrify(
            "COPY (SELECT point_count, ts_data, value_data FROM point_chunk WHERE dataset_id = %s"
            " AND start_us >= %s AND start_us <= %s ORDER BY start_us) TO STDOUT WITH BINARY",
            [str(self.key), int(self.index.start_us[a]), int(self.index.start_us[b - 1])],
        ).decode()
        messages: list[bytes] = []
        self.cursor.copy_expert(sql, pgcopy.Appender(messages))
        expected = int(self.index.count[a:b].sum())
        ts, values = np.empty(expected, np.int64), np.empty(expected, np.float64)
        at = 0
        for count, ts_data, value_data in pgcopy.rows(pgcopy.joined(messages)):
            if count is None or ts_data is None or value_data is None:
                raise RuntimeError("a chunk row has NULL fields")
            n = int.from_bytes(count, "big", signed=True)
            if at + n > expected:
                raise RuntimeError("chunks changed under a scan")
            ch.decode_into(ts_data, value_data, ts[at : at + n], values[at : at + n])
            at += n
        if at != expected:
            raise RuntimeError("chunks changed under a scan")
        return ts, values


def _key(dataset_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(dataset_id)
    except ValueError:
        raise NotFound("dataset", dataset_id) from None


@contextlib.contextmanager
def window_scan(dataset_id: str, lo: int | None, hi: int | None) -> Iterator[ChunkScan]:
    """A scan of the window on the bound database, in a read-only REPEATABLE READ
    transaction that lasts while the ``with`` block runs. NotFound for an unknown dataset."""
    in_callers = database_proxy.in_transaction()
    with database_proxy.atomic():
        cursor = database_proxy.cursor()
        if not in_callers:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield ChunkScan(cursor, dataset_id, lo, hi)


@contextlib.contextmanager
def part_scan(dsn: str, snapshot: str, dataset_id: str, lo: int | None, hi: int | None) -> Iterator[ChunkScan]:
    """A scan of the window from a new connection to ``dsn``, reading as of ``snapshot``
    (exported by the scan whose work this part does; the exporting transaction must still be open)."""
    conn = psycopg2.connect(dsn)
    try:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with conn.cursor() as cursor:
            cursor.execute("SET TRANSACTION SNAPSHOT %s", (snapshot,))
            yield ChunkScan(cursor, dataset_id, lo, hi)
        conn.rollback()
    finally:
        conn.close()
