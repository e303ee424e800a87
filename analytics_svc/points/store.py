"""A dataset's points, kept in PostgreSQL as time-aligned chunks of pcodec bytes.

Each row of ``point_chunk`` (migration 7, ``analytics_svc.schema``) holds the
points of one dataset in one time window ``[start_us, end_us)``: their
timestamps and values encoded with pcodec (``points.chunks``) as two ``bytea``
columns with ``STORAGE EXTERNAL`` (already compressed: TOAST stores them as
they are), and their summary (count, first/last time and value, min, max,
sum). Chunks of a dataset never overlap. Bytes travel in binary COPY both
ways (``points.pgcopy``), never as hex text.

Writers of one dataset are serialised by a row lock on the dataset (the one
row whose count and time range every write updates anyway), so concurrent
writers never lose a point and the count stays exact. All functions here
block; the servicer runs them through a BlockingRunner. Timestamps are epoch
microseconds (negative before 1970), ranges are half-open ``[start, end)``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg2

from analytics_svc.datasets.store import DatasetRow
from analytics_svc.points import chunks as ch
from analytics_svc.points import pgcopy
from analytics_svc.points.chunks import Buckets
from analytics_svc.schema import database_proxy
from mesh_runtime.errors import NotFound, Unavailable

__all__ = [
    "Buckets", "SnapshotReader", "append_points", "delete_points", "drop_points_before", "load_points",
    "query_buckets", "query_raw",
]  # fmt: skip

logger = logging.getLogger("analytics.points")

_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)
_SUMMARY_COLUMNS = (
    "start_us, end_us, point_count, first_us, last_us, first_value, last_value, min_value, max_value, value_sum"
)
# The chunks that overlap [lo, hi): the one holding lo (the latest starting at or
# before it; chunks never overlap) and those starting inside. Index range scans.
_OVERLAPPING = (
    "dataset_id = %s AND start_us >= coalesce("
    "(SELECT max(start_us) FROM point_chunk WHERE dataset_id = %s AND start_us <= %s), %s)"
    " AND start_us < %s AND end_us > %s"
)


def _overlapping_params(key: uuid.UUID, lo: int, hi: int) -> list[Any]:
    return [str(key), str(key), lo, lo, hi, lo]


def _key(dataset_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(dataset_id)
    except ValueError:
        raise NotFound("dataset", dataset_id) from None


def _seconds_micros(us: int | None) -> list[int | None]:
    """Parameters of ``to_timestamp(%s) + %s * interval '1 microsecond'``, the timestamptz
    at epoch microseconds ``us`` (NULL for None).

    Exact: whole seconds and microseconds apart, where ``to_timestamp(us / 1e6)``
    is a microsecond off for many instants after 2033 (a double's precision).
    """
    if us is None:
        return [None, None]
    seconds, micros = divmod(int(us), 1_000_000)
    return [seconds, micros]


class _Summaries:
    """The summary columns of chunk rows, as arrays in time order."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        table = np.array(rows, dtype=object).reshape(len(rows), 10)
        ints = table[:, :5].astype(np.int64)
        floats = table[:, 5:].astype(np.float64)
        self.start_us, self.end_us, self.count, self.first_us, self.last_us = (ints[:, i] for i in range(5))
        self.first_value, self.last_value, self.min, self.max, self.sum = (floats[:, i] for i in range(5))

    def __len__(self) -> int:
        return int(self.start_us.size)


def _summaries(cursor: Any, key: uuid.UUID, lo: int, hi: int) -> _Summaries:
    """Summaries of the dataset's chunks overlapping [lo, hi), in time order."""
    cursor.execute(
        f"SELECT {_SUMMARY_COLUMNS} FROM point_chunk WHERE {_OVERLAPPING} ORDER BY start_us",  # noqa: S608
        _overlapping_params(key, lo, hi),
    )
    return _Summaries(cursor.fetchall())


def _copy_out(cursor: Any, query: str, params: Sequence[Any]) -> memoryview:
    """The binary COPY output of a query, as one buffer."""
    sql = cursor.mogrify(f"COPY ({query}) TO STDOUT WITH BINARY", params).decode()
    messages: list[bytes] = []
    cursor.copy_expert(sql, pgcopy.Appender(messages))
    return pgcopy.joined(messages)


def _decoded(data: memoryview) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each chunk of a COPY of (point_count, ts_data, value_data) rows, decoded."""
    decoded = []
    for count, ts_data, value_data in pgcopy.rows(data):
        if count is None or ts_data is None or value_data is None:
            raise RuntimeError("a chunk row has NULL fields")
        decoded.append(ch.decode(ts_data, value_data, int.from_bytes(count, "big", signed=True)))
    return decoded


def _read_chunks(cursor: Any, key: uuid.UUID, starts: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The points of the dataset's chunks starting at ``starts`` (sorted), decoded, in time order."""
    if starts.size == 0:
        return []
    data = _copy_out(
        cursor,
        "SELECT point_count, ts_data, value_data FROM point_chunk"
        " WHERE dataset_id = %s AND start_us = ANY(%s) ORDER BY start_us",
        [str(key), starts.tolist()],
    )
    return _decoded(data)


def _copy_in(cursor: Any, key: uuid.UUID, encoded: ch.EncodedChunks) -> None:
    """Insert chunk rows with one binary COPY, each row sent as soon as its chunk is encoded
    (PostgreSQL stores the first chunks while the encoders work on the later ones)."""
    cursor.copy_expert(
        f"COPY point_chunk ({pgcopy.CHUNK_COLUMNS}) FROM STDIN WITH BINARY",
        pgcopy.PartsReader(pgcopy.chunk_row_parts(key, encoded)),
    )


def _lock_dataset(cursor: Any, dataset_id: str, key: uuid.UUID) -> int | None:
    """Lock the dataset's row for this transaction; its chunk width (None until chosen). NotFound if absent."""
    cursor.execute("SELECT chunk_width_us FROM dataset WHERE id = %s FOR UPDATE", (str(key),))
    row = cursor.fetchone()
    if row is None:
        raise NotFound("dataset", dataset_id)
    return None if row[0] is None else int(row[0])


def append_points(
    dataset_id: str, timestamps_us: Sequence[int] | np.ndarray, values: Sequence[float] | np.ndarray
) -> DatasetRow:
    """Store points into a dataset, in one transaction.

    The caller has screened the points (finite values, timestamps in range).
    A timestamp already stored gets the new value; within the batch the later
    occurrence wins. Chunks that receive points among their own are decoded,
    merged and written again; points after a chunk's last point are appended
    as a tail chunk (``_tail_plan``), and points outside every chunk start new
    chunks. The dataset's point_count and first/last point times are updated
    in the same transaction. NotFound if the dataset does not exist.
    """
    ts = np.asarray(timestamps_us, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    key = _key(dataset_id)
    with database_proxy.atomic():
        cursor = database_proxy.cursor()
        stored_width = _lock_dataset(cursor, dataset_id, key)
        if ts.size == 0:
            return DatasetRow.get_by_id(key)
        ts, vals = ch.last_occurrences(ts, vals)
        chosen = stored_width or ch.width_for(ts)  # from the first batch with two points or more
        width = chosen or ch.DEFAULT_WIDTH_US
        lo = int(ts[0]) // width * width
        hi = min(int(ts[-1]) // width * width + width, _INT64_MAX)
        existing = _summaries(cursor, key, lo, hi)  # from the start of the first point's cell: its tail chunks
        where = ch.containing(ts, existing.start_us, existing.end_us)
        touched = np.unique(where[where >= 0]).tolist()
        bounds = np.searchsorted(ts, np.stack([existing.start_us[touched], existing.end_us[touched]])).T.tolist()
        plans = _tail_plan(existing, touched, [(int(ts[a]), b - a) for a, b in bounds], width)
        rewritten = sorted({index for _, group, _ in plans for index in group})
        decoded = dict(zip(rewritten, _read_chunks(cursor, key, existing.start_us[rewritten]), strict=True))
        pieces: list[ch.Piece] = []
        shrunk: list[int] = []
        replaced = 0
        for (a, b), (index, group, appended) in zip(bounds, plans, strict=True):
            end = int(existing.end_us[index])
            if not group:  # after the chunk's last point: a new tail chunk, the old one's window ends at its last point
                shrunk.append(index)
                pieces.append((ts[a:b], vals[a:b], int(existing.last_us[index]) + 1, end))
            elif appended:  # after the last point of small tail chunks: rewritten as one, nothing to merge
                olds = [decoded[i] for i in group]
                pieces.append((
                    np.concatenate([*(old[0] for old in olds), ts[a:b]]),
                    np.concatenate([*(old[1] for old in olds), vals[a:b]]),
                    int(existing.start_us[group[0]]), end,
                ))  # fmt: skip
            else:
                merged_ts, merged_vals, overwritten = ch.overwrite(*decoded[index], ts[a:b], vals[a:b])
                replaced += overwritten
                pieces.append((merged_ts, merged_vals, int(existing.start_us[index]), end))
        outside = where < 0
        new_ts, new_vals = ts[outside], vals[outside]
        first, starts, ends = ch.new_windows(new_ts, width, existing.start_us, existing.end_us)
        stops = np.append(first[1:], new_ts.size)[: first.size]
        for a, b, start, end in zip(first.tolist(), stops.tolist(), starts.tolist(), ends.tolist(), strict=True):
            pieces.append((new_ts[a:b], new_vals[a:b], start, end))
        encoded, narrowest = ch.encode_pieces(pieces)
        if chosen is not None and narrowest is not None:
            chosen = min(chosen, narrowest)  # denser than the width was chosen for: cut new chunks narrower too
        if rewritten:  # before the COPY: a rewritten chunk keeps its start, the key
            cursor.execute(
                "DELETE FROM point_chunk WHERE dataset_id = %s AND start_us = ANY(%s)",
                (str(key), existing.start_us[rewritten].tolist()),
            )
        _copy_in(cursor, key, encoded)
        # One round trip: the shrunk windows (their chunks' bytes stay as they are) and the dataset.
        shrink = (
            "UPDATE point_chunk SET end_us = last_us + 1 WHERE dataset_id = %s AND start_us = ANY(%s);"
            if shrunk else ""
        )  # fmt: skip
        updated = DatasetRow.raw(
            shrink  # noqa: S608 (a constant statement, no input in it)
            + "UPDATE dataset SET point_count = point_count + %s,"
            " first_point_time = LEAST(first_point_time, to_timestamp(%s) + %s * interval '1 microsecond'),"
            " last_point_time = GREATEST(last_point_time, to_timestamp(%s) + %s * interval '1 microsecond'),"
            " chunk_width_us = %s WHERE id = %s RETURNING *",
            *([str(key), existing.start_us[shrunk].tolist()] if shrunk else []),
            ts.size - replaced, *_seconds_micros(int(ts[0])), *_seconds_micros(int(ts[-1])), chosen, str(key),
        )  # fmt: skip
        return next(iter(updated))


# A pure append to a chunk (every new point of its window after its last point)
# rewrites it only when it holds at most _TAIL_MERGE_RATIO times the points
# appended to it; a larger chunk keeps its bytes, its window ends at its last
# point, and the new points become a tail chunk in the rest of the window.
# Walking back, the tail chunks of the same grid cell merge while each holds at
# most that ratio times the points gathered so far, so a cell's chunks shrink
# geometrically towards its end: a stream of n one-point appends rewrites each
# point O(log n) times and leaves O(log n) chunks per cell (an LSM tree's
# size-tiered merging, in one cell), where rewriting the whole current chunk on
# every append made it quadratic. Chunks of one cell all lie in one grid cell,
# so a chart step that is a multiple of the width still finds every bucket
# edge on a chunk edge.
_TAIL_MERGE_RATIO = 1


def _tail_plan(
    existing: _Summaries, touched: list[int], new: list[tuple[int, int]], width: int
) -> list[tuple[int, list[int], bool]]:
    """For each touched chunk (with its new points' first time and count): the chunk,
    the chunks to decode and write again with its new points (in time order;
    empty for a new tail chunk after it), and whether the new points all come
    after them (appended, nothing to merge)."""
    busy = set(touched)
    plans = []
    for index, (first_new, count) in zip(touched, new, strict=True):
        if first_new <= int(existing.last_us[index]):
            plans.append((index, [index], False))  # among its points: merge
            continue
        cell_start = int(existing.start_us[index]) // width * width
        group: list[int] = []
        gathered = count
        at = index
        while (
            at >= 0 and int(existing.count[at]) <= _TAIL_MERGE_RATIO * gathered
            and int(existing.start_us[at]) >= cell_start
            and (at == index or (at not in busy and int(existing.end_us[at]) == int(existing.start_us[at + 1])))
        ):  # fmt: skip
            group.append(at)
            gathered += int(existing.count[at])
            at -= 1
        plans.append((index, group[::-1], True))
    return plans


def delete_points(dataset_id: str, start_us: int, end_us: int) -> int:
    """Delete the dataset's points in [start_us, end_us); how many there were.

    Chunks wholly inside the range are dropped without decoding them; the (at
    most two) chunks the range cuts are written again without the range. The
    dataset's count and first/last point times stay exact. NotFound for an
    unknown dataset.
    """
    key = _key(dataset_id)
    with database_proxy.atomic():
        cursor = database_proxy.cursor()
        _lock_dataset(cursor, dataset_id, key)
        if start_us >= end_us:
            return 0
        existing = _summaries(cursor, key, start_us, end_us)
        whole = (existing.first_us >= start_us) & (existing.last_us < end_us)
        cut = np.flatnonzero(~whole & (existing.last_us >= start_us) & (existing.first_us < end_us))
        removed = int(existing.count[whole].sum())
        kept: list[ch.Piece] = []
        for index, (ts, vals) in zip(cut.tolist(), _read_chunks(cursor, key, existing.start_us[cut]), strict=True):
            keep = (ts < start_us) | (ts >= end_us)
            removed += int(ts.size - keep.sum())
            if keep.any():
                kept.append((ts[keep], vals[keep], int(existing.start_us[index]), int(existing.end_us[index])))
        if removed == 0:
            return 0
        gone = existing.start_us[whole | np.isin(np.arange(len(existing)), cut)]
        cursor.execute(
            "DELETE FROM point_chunk WHERE dataset_id = %s AND start_us = ANY(%s)", (str(key), gone.tolist())
        )
        if kept:
            _copy_in(cursor, key, ch.encode_pieces(kept)[0])
        # The dataset's time range from its first and last chunks (chunks never overlap).
        cursor.execute(
            "SELECT (SELECT first_us FROM point_chunk WHERE dataset_id = %s ORDER BY start_us LIMIT 1),"
            " (SELECT last_us FROM point_chunk WHERE dataset_id = %s ORDER BY start_us DESC LIMIT 1)",
            (str(key), str(key)),
        )
        first_us, last_us = cursor.fetchone()
        cursor.execute(
            "UPDATE dataset SET point_count = point_count - %s,"
            " first_point_time = to_timestamp(%s) + %s * interval '1 microsecond',"
            " last_point_time = to_timestamp(%s) + %s * interval '1 microsecond' WHERE id = %s",
            [removed, *_seconds_micros(first_us), *_seconds_micros(last_us), str(key)],
        )
        return removed


def drop_points_before(dataset_id: str, cutoff_us: int) -> int:
    """Retention: delete the dataset's points before ``cutoff_us``; how many there were.

    Chunks that end at or before the cutoff go whole (no decoding, no row per
    point); the one chunk straddling it is trimmed. NotFound for an unknown dataset.
    """
    return delete_points(dataset_id, _INT64_MIN, cutoff_us)


def query_buckets(dataset_id: str, start_us: int, end_us: int, step_us: int, origin_us: int = 0) -> Buckets:
    """Aggregates of the dataset's points in [start_us, end_us) per bucket
    ``[origin + k * step, origin + (k + 1) * step)``, non-empty buckets only.

    A chunk whose points all fall in one bucket inside the range is answered
    by its summary; only the chunks that straddle a bucket edge or an end of
    the range are decoded. NotFound for an unknown dataset.
    """
    if step_us <= 0:
        raise ValueError("step_us must be positive")
    key = _key(dataset_id)
    with _read_snapshot() as cursor:
        _check_exists(cursor, dataset_id, key)
        if start_us >= end_us:
            return ch.combine([], step_us, origin_us)
        found = _summaries(cursor, key, start_us, end_us)
        first_bucket = ch.bucket_numbers(found.first_us, step_us, origin_us)
        whole = (
            (found.first_us >= start_us) & (found.last_us < end_us)
            & (first_bucket == ch.bucket_numbers(found.last_us, step_us, origin_us))
        )  # fmt: skip
        parts = [
            ch.Partials(
                first_bucket[whole], found.first_us[whole], found.count[whole], found.min[whole], found.max[whole],
                found.sum[whole], found.first_value[whole], found.last_value[whole],
            )  # fmt: skip
        ]
        for ts, vals in _read_chunks(cursor, key, found.start_us[~whole]):
            a, b = np.searchsorted(ts, [start_us, end_us])
            parts.append(ch.partials_of_points(ts[a:b], vals[a:b], step_us, origin_us))
    return ch.combine(parts, step_us, origin_us)


def query_raw(dataset_id: str, start_us: int, end_us: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit`` points with start_us <= ts < end_us, in time order. NotFound for an unknown dataset."""
    key = _key(dataset_id)
    with _read_snapshot() as cursor:
        _check_exists(cursor, dataset_id, key)
        return _raw_points(cursor, key, start_us, end_us, limit)


def _raw_points(cursor: Any, key: uuid.UUID, start_us: int, end_us: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit`` points of the dataset in [start_us, end_us), read with ``cursor``."""
    got_ts: list[np.ndarray] = []
    got_vals: list[np.ndarray] = []
    if start_us < end_us and limit > 0:
        found = _summaries(cursor, key, start_us, end_us)
        wanted, index = limit, 0
        while wanted > 0 and index < len(found):
            # Enough chunks for the points still wanted, if every point of them is in range.
            stop = index + 1 + int(np.searchsorted(np.cumsum(found.count[index:]), wanted))
            for ts, vals in _read_chunks(cursor, key, found.start_us[index:stop]):
                a, b = np.searchsorted(ts, [start_us, end_us])
                b = min(b, a + wanted)
                got_ts.append(ts[a:b])
                got_vals.append(vals[a:b])
                wanted -= b - a
            index = stop
    if not got_ts:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    return np.concatenate(got_ts), np.concatenate(got_vals)


class SnapshotReader:
    """Pages of one dataset's points, every page read as of one moment (for ExportPoints).

    It holds a connection of its own (the bound database's parameters) in a
    read-only REPEATABLE READ transaction, so the pages of a long export are
    one consistent snapshot: a write committed while it runs is in no page,
    where reading each page in its own transaction could mix the before and
    the after. Its methods block and may run on any one thread at a time;
    ``close`` ends the transaction. NotFound for an unknown dataset,
    Unavailable when no connection can be opened.
    """

    def __init__(self, dataset_id: str) -> None:
        self._key = _key(dataset_id)
        try:
            self._conn = _reader_connection()
        except psycopg2.Error as exc:
            raise Unavailable("the database is unavailable; retry shortly", retry_after=1.0) from exc
        try:
            self._conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
            self._cursor = self._conn.cursor()
            _check_exists(self._cursor, dataset_id, self._key)  # takes the snapshot
        except BaseException:
            self._conn.close()
            raise

    def page(self, start_us: int, end_us: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``limit`` points in [start_us, end_us), in time order, as of the snapshot."""
        try:
            return _raw_points(self._cursor, self._key, start_us, end_us, limit)
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:  # the server went away
            raise Unavailable("the database is unavailable; retry shortly", retry_after=1.0) from exc

    def close(self) -> None:
        """End the transaction and close the connection."""
        self._conn.close()


@contextlib.contextmanager
def _read_snapshot() -> Iterator[Any]:
    """A cursor in a read-only REPEATABLE READ transaction (the summaries and the
    chunk bytes read after them agree), or in the caller's transaction if there is one."""
    in_callers = database_proxy.in_transaction()
    with database_proxy.atomic():
        cursor = database_proxy.cursor()
        if not in_callers:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield cursor


def _check_exists(cursor: Any, dataset_id: str, key: uuid.UUID) -> None:
    cursor.execute("SELECT 1 FROM dataset WHERE id = %s", (str(key),))
    if cursor.fetchone() is None:
        raise NotFound("dataset", dataset_id)


# Reading many points back (analyses load millions): the chunks of the window
# are cut into ranges of about equal point counts on chunk edges, read by up
# to _READERS connections on one exported snapshot, each decoding its chunks.
# Connections reading one load: PostgreSQL producing the COPY is a good part of
# the time, so two backends overlap it with decoding.
_READERS = 2
# Ranges handed out to the readers in turn: several per reader, so a slow range
# does not leave the other reader idle.
_RANGES_PER_READER = 4
# Below this many points a second connection costs more than it saves.
_PARALLEL_MIN_POINTS = 1_000_000


def _ranges(found: _Summaries, lo: int, hi: int, parts: int) -> list[tuple[int, int]]:
    """[lo, hi) cut into up to ``parts`` contiguous, disjoint ranges on chunk edges, of about equal point counts."""
    if parts <= 1 or len(found) <= 1:
        return [(lo, hi)]
    before = np.cumsum(found.count) - found.count  # points in the chunks before each chunk
    total = int(found.count.sum())
    firsts = np.searchsorted(before, [total * i // parts for i in range(1, parts)], side="left")
    edges = sorted({int(found.start_us[i]) for i in firsts.tolist() if 0 < i < len(found)} - {lo})
    bounds = [lo, *(edge for edge in edges if lo < edge < hi), hi]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


# A chunk as read: its point count and its pcodec bytes (timestamps, values).
_RawChunk = tuple[int, bytes, bytes]


def _read_range(cursor: Any, key: uuid.UUID, start_us: int, end_us: int) -> list[_RawChunk]:
    """The dataset's chunks overlapping [start_us, end_us), in time order, still encoded."""
    data = _copy_out(
        cursor,
        f"SELECT point_count, ts_data, value_data FROM point_chunk WHERE {_OVERLAPPING} ORDER BY start_us",  # noqa: S608
        _overlapping_params(key, start_us, end_us),
    )
    raw = []
    for count, ts_data, value_data in pgcopy.rows(data):
        if count is None or ts_data is None or value_data is None:
            raise RuntimeError("a chunk row has NULL fields")
        raw.append((int.from_bytes(count, "big", signed=True), bytes(ts_data), bytes(value_data)))
    return raw


@dataclass
class _Destination:
    """The arrays a load decodes its chunks into, each range at its own offset."""

    timestamps_us: np.ndarray
    values: np.ndarray

    def decode(self, raw: list[_RawChunk], offset: int, expected: int) -> None:
        """Decode one range's chunks in place from ``offset``; RuntimeError unless they hold ``expected`` points."""
        if sum(count for count, _, _ in raw) != expected:
            raise RuntimeError(f"chunks changed under a load: {len(raw)} chunks, not {expected} points")
        for count, ts_data, value_data in raw:
            ch.decode_into(
                ts_data, value_data, self.timestamps_us[offset : offset + count], self.values[offset : offset + count]
            )
            offset += count

def _reader_connection() -> Any:
    """A new psycopg2 connection with the parameters of the bound database (the caller closes it)."""
    db: Any = database_proxy.obj
    params = dict(db.connect_params)
    if db.database.startswith("postgresql://"):
        params.setdefault("dsn", db.database)
    else:
        params.setdefault("dbname", db.database)
    return psycopg2.connect(**params)


def _read_ranges(
    cursor: Any, key: uuid.UUID, ranges: list[tuple[int, int]], readers: int,
    decode: Callable[[int, list[_RawChunk]], None],
) -> None:  # fmt: skip
    """Read all ``ranges`` with this cursor and ``readers - 1`` more connections,
    each reader calling ``decode(range index, its chunks)`` as it reads a range.

    The other connections import this transaction's snapshot (as pg_dump's
    parallel mode does), so every range is read as of the same moment. A
    connection that cannot be opened, or fails, leaves its ranges to this one.
    """
    pending: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(ranges)):
        pending.put(index)
    stop = threading.Event()

    def drain(reader: Any) -> None:
        while not stop.is_set():
            try:
                index = pending.get_nowait()
            except queue.Empty:
                return
            try:
                raw = _read_range(reader, key, *ranges[index])
            except BaseException:
                pending.put(index)  # another reader takes it (or fails the same way)
                raise
            decode(index, raw)

    def help_with(snapshot: str) -> None:
        try:
            conn = _reader_connection()
        except psycopg2.Error as exc:
            logger.warning("no extra connection to load points", extra={"error": str(exc)})
            return
        try:
            conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
            with conn.cursor() as reader:
                reader.execute("SET TRANSACTION SNAPSHOT %s", (snapshot,))
                drain(reader)
        except psycopg2.Error as exc:
            logger.warning("an extra connection failed loading points", extra={"error": str(exc)})
        finally:
            conn.close()

    if readers > 1 and len(ranges) > 1:
        cursor.execute("SELECT pg_export_snapshot()")
        (snapshot,) = cursor.fetchone()
        with ThreadPoolExecutor(readers - 1, thread_name_prefix="load-points") as pool:
            helpers = [pool.submit(help_with, snapshot) for _ in range(readers - 1)]
            try:
                drain(cursor)
            except BaseException:
                stop.set()  # the helpers finish the range they are on, and take no more
                raise
            for helper in helpers:
                helper.result()
    drain(cursor)  # whatever a failed helper gave back


def load_points(
    dataset_id: str, start_us: int | None = None, end_us: int | None = None, *, readers: int = _READERS
) -> tuple[np.ndarray, np.ndarray]:
    """A dataset's points in ``[start_us, end_us)`` as numpy arrays (epoch µs
    int64, float64), in time order, as of one moment.

    Chunk bytes come in binary COPY and are decoded by pcodec straight into
    numpy: no Python object per point. A load of at least
    _PARALLEL_MIN_POINTS splits its chunks over ``readers`` connections (this
    one and fresh ones with the same parameters, closed before it returns)
    reading one exported snapshot. Inside a caller's transaction it reads in
    that transaction instead. NotFound for an unknown dataset.
    """
    if readers < 1:
        raise ValueError("readers must be at least 1")
    key = _key(dataset_id)
    lo = _INT64_MIN if start_us is None else int(start_us)
    hi = _INT64_MAX if end_us is None else int(end_us)
    in_callers = database_proxy.in_transaction()
    with database_proxy.atomic():
        cursor = database_proxy.cursor()
        if not in_callers:  # one snapshot for the summaries, ranges and connections of this load
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        _check_exists(cursor, dataset_id, key)
        if lo >= hi:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        if in_callers:
            # The caller's isolation level may be READ COMMITTED: one statement reads
            # the chunks, and they are placed by the counts they came with.
            raw = _read_range(cursor, key, lo, hi)
            total = sum(count for count, _, _ in raw)
            into = _Destination(np.empty(total, np.int64), np.empty(total, np.float64))
            into.decode(raw, 0, total)
            return _trimmed(into, lo, hi)
        found = _summaries(cursor, key, lo, hi)
        if int(found.count.sum()) < _PARALLEL_MIN_POINTS:
            readers = 1
        ranges = _ranges(found, lo, hi, readers * _RANGES_PER_READER if readers > 1 else 1)
        # Each range's chunks decode straight into their place: the points of
        # the chunks before it come first (only the window's first and last
        # chunk can hold points outside it, cut off below).
        before = np.concatenate([[0], np.cumsum(found.count)])
        firsts = [max(int(np.searchsorted(found.start_us, start, side="right")) - 1, 0) for start, _ in ranges]
        lasts = [*firsts[1:], len(found)]
        total = int(before[-1])
        into = _Destination(np.empty(total, np.int64), np.empty(total, np.float64))
        _read_ranges(
            cursor, key, ranges, readers,
            lambda index, raw: into.decode(raw, int(before[firsts[index]]),
                                           int(before[lasts[index]] - before[firsts[index]])),
        )  # fmt: skip
    return _trimmed(into, lo, hi)


def _trimmed(into: _Destination, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """The decoded points in [lo, hi) (only the first and last chunk can reach outside)."""
    a, b = np.searchsorted(into.timestamps_us, [lo, hi])
    if a == 0 and b == into.timestamps_us.size:
        return into.timestamps_us, into.values
    return into.timestamps_us[a:b].copy(), into.values[a:b].copy()
