"""A dataset's points: appending them (bulk COPY) and loading them back as numpy arrays.

The point table is created by migration 3 (``analytics_svc.schema``). All
functions here block; the servicer runs them through a BlockingRunner.
"""

from __future__ import annotations

import io
import itertools
import logging
import queue
import struct
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg2

from analytics_svc.datasets.store import DatasetRow
from analytics_svc.schema import database_proxy
from mesh_runtime.errors import NotFound


def _last_occurrences(timestamps_us: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The batch with one point per timestamp, the later occurrence winning, sorted by time."""
    reversed_ts = timestamps_us[::-1]
    unique_ts, first_in_reversed = np.unique(reversed_ts, return_index=True)
    keep = len(timestamps_us) - 1 - first_in_reversed
    return unique_ts, values[keep]


def _copy_text(timestamps_us: np.ndarray, values: np.ndarray) -> io.StringIO:
    """COPY text rows "ISO timestamp<TAB>value" (repr keeps every double exact)."""
    stamps = np.datetime_as_string(timestamps_us.astype("datetime64[us]"), unit="us")
    lines = [f"{stamp}Z\t{value!r}\n" for stamp, value in zip(stamps, values.tolist(), strict=True)]
    return io.StringIO("".join(lines))


def append_points(
    dataset_id: str, timestamps_us: Sequence[int] | np.ndarray, values: Sequence[float] | np.ndarray
) -> DatasetRow:
    """Store points into a dataset: one transaction, bulk-loaded with COPY.

    The caller has screened the points (finite values, timestamps in range).
    A timestamp already stored gets the new value; within the batch the later
    occurrence wins. The dataset's point_count and first/last point times are
    updated in the same transaction. NotFound if the dataset does not exist.
    """
    ts = np.asarray(timestamps_us, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    try:
        key = uuid.UUID(dataset_id)
    except ValueError:
        raise NotFound("dataset", dataset_id) from None
    with database_proxy.atomic():
        # Locking the dataset row serialises writers of one dataset, so the
        # count of new timestamps below stays exact.
        locked = DatasetRow.select().where(DatasetRow.id == key).for_update().first()
        if locked is None:
            raise NotFound("dataset", dataset_id)
        if len(ts) == 0:
            return locked
        ts, vals = _last_occurrences(ts, vals)
        cursor = database_proxy.connection().cursor()
        cursor.execute(
            "CREATE TEMP TABLE point_staging (ts timestamptz NOT NULL, value double precision NOT NULL)"
            " ON COMMIT DROP"
        )
        cursor.copy_expert("COPY point_staging (ts, value) FROM STDIN", _copy_text(ts, vals))
        cursor.execute(
            "SELECT count(*) FROM point_staging s JOIN point p ON p.dataset_id = %s AND p.ts = s.ts",
            (str(key),),
        )
        (replaced,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO point (dataset_id, ts, value) SELECT %s, ts, value FROM point_staging"
            " ON CONFLICT (dataset_id, ts) DO UPDATE SET value = EXCLUDED.value",
            (str(key),),
        )
        cursor.execute(
            "UPDATE dataset SET point_count = point_count + %s,"
            " first_point_time = LEAST(first_point_time, (SELECT min(ts) FROM point_staging)),"
            " last_point_time = GREATEST(last_point_time, (SELECT max(ts) FROM point_staging))"
            " WHERE id = %s",
            (len(ts) - replaced, str(key)),
        )
        cursor.execute("DROP TABLE point_staging")
        return DatasetRow.get_by_id(key)


# Reading points back. PostgreSQL's binary COPY is a 19-byte header, then per
# row a field count and (length, value) pairs in network byte order, then a
# 2-byte trailer; timestamptz travels as microseconds since 2000-01-01 UTC,
# float8 as an IEEE double. Row by row that costs a CopyData message on the
# server and a Python call in psycopg2 per point, so a chunk of points travels
# as one bytea of (timestamptz, float8) pairs instead: one COPY row per chunk.
_COPY_HEADER_BYTES = 19
_COPY_TRAILER = b"\xff\xff"
_POSTGRES_EPOCH_US = 946_684_800_000_000
_POINT_ROW = np.dtype(
    [("fields", ">i2"), ("ts_len", ">i4"), ("ts", ">i8"), ("value_len", ">i4"), ("value", ">f8")]
)
_POINT_PAIR = np.dtype([("ts", ">i8"), ("value", ">f8")])
# 4 MB per chunk: bounded however the points are spread in time (a bytea
# holds at most 1 GB), large enough that the per-chunk round trip is noise.
_CHUNK_POINTS = 1 << 18
# Connections reading one load: PostgreSQL producing the COPY is most of the
# time, so two backends halve it; a third was no faster on the 2-core bench.
_READERS = 2
# Disjoint time ranges handed out to the readers in turn: several per reader,
# so points bunched in time still spread over the readers.
_RANGES_PER_READER = 4
# Below this many expected points a second connection costs more than it saves.
_PARALLEL_MIN_POINTS = 1_000_000
# First and last epoch µs of the points matching a condition: two index probes.
_SPAN_SQL = (
    "SELECT (extract(epoch FROM min(ts)) * 1000000)::bigint, (extract(epoch FROM max(ts)) * 1000000)::bigint"
    " FROM point WHERE "
)

logger = logging.getLogger("analytics.store")


def _at(us: int) -> tuple[str, list[int]]:
    """SQL for the timestamptz at epoch microseconds ``us`` and its parameters.

    Exact: whole seconds and microseconds apart, where ``to_timestamp(us / 1e6)``
    is a microsecond off for many instants after 2033 (a double's precision).
    """
    seconds, micros = divmod(us, 1_000_000)
    return "(to_timestamp(%s) + %s * interval '1 microsecond')", [seconds, micros]


def _window_sql(key: uuid.UUID, start_us: int | None, end_us: int | None) -> tuple[str, list[Any]]:
    """The WHERE condition (and its parameters) of a dataset's points in [start_us, end_us)."""
    conditions = ["dataset_id = %s"]
    params: list[Any] = [str(key)]
    for bound, op in ((start_us, ">="), (end_us, "<")):
        if bound is not None:
            at, at_params = _at(int(bound))
            conditions.append(f"ts {op} {at}")
            params.extend(at_params)
    return " AND ".join(conditions), params


def _split(start_us: int, end_us: int, parts: int) -> list[tuple[int, int]]:
    """[start_us, end_us) cut into up to ``parts`` contiguous, disjoint, equally long ranges."""
    bounds = sorted({start_us + (end_us - start_us) * i // parts for i in range(parts + 1)})
    return list(itertools.pairwise(bounds))


@dataclass
class _Appender:
    """A file for psycopg2's copy_expert that keeps each message it writes (4 MB, not copied again)."""

    messages: list[bytes]

    def write(self, data: bytes) -> None:
        self.messages.append(data)


def _chunk_from_copy(messages: list[bytes]) -> np.ndarray | None:
    """The big-endian pairs in a binary COPY of one bytea row, None for a NULL (no point left)."""
    if len(messages) == 2 and messages[1] == _COPY_TRAILER:  # header and row, trailer: used as sent
        data: bytes | memoryview = messages[0]
    else:
        data = memoryview(b"".join(messages))[: -len(_COPY_TRAILER)]
    # The row: a field count of 1, the bytea's length (-1: NULL), the bytea.
    fields, length = struct.unpack_from(">hi", data, _COPY_HEADER_BYTES)
    start = _COPY_HEADER_BYTES + 6
    if fields != 1 or len(data) != start + max(length, 0) or max(length, 0) % _POINT_PAIR.itemsize:
        raise RuntimeError(f"unexpected COPY output: {fields} fields, {length} bytes of {len(data)}")
    if length < 0:
        return None
    return np.frombuffer(data, dtype=_POINT_PAIR, count=length // _POINT_PAIR.itemsize, offset=start)


def _read_range(cursor: Any, key: uuid.UUID, start_us: int, end_us: int) -> list[np.ndarray]:
    """The dataset's points in [start_us, end_us), chunk by chunk, as arrays of big-endian pairs.

    Each chunk is the next _CHUNK_POINTS points after the previous chunk's
    last, so the caller's transaction must hold one snapshot (REPEATABLE READ).
    """
    chunks: list[np.ndarray] = []
    while start_us < end_us:
        where, params = _window_sql(key, start_us, end_us)
        query = cursor.mogrify(
            # Only fixed condition strings are joined; values go through mogrify.
            "COPY (SELECT string_agg(timestamptz_send(ts) || float8send(value), ''::bytea ORDER BY ts)"  # noqa: S608
            f" FROM (SELECT ts, value FROM point WHERE {where} ORDER BY ts LIMIT %s) AS chunk)"
            " TO STDOUT WITH BINARY",
            [*params, _CHUNK_POINTS],
        ).decode()
        messages: list[bytes] = []
        cursor.copy_expert(query, _Appender(messages))
        chunk = _chunk_from_copy(messages)
        if chunk is None:
            break
        chunks.append(chunk)
        if chunk.size < _CHUNK_POINTS:
            break
        start_us = int(chunk["ts"][-1]) + _POSTGRES_EPOCH_US + 1
    return chunks


def _reader_connection() -> Any:
    """A new psycopg2 connection with the parameters of the bound database (the caller closes it)."""
    db: Any = database_proxy.obj
    params = dict(db.connect_params)
    if db.database.startswith("postgresql://"):
        params.setdefault("dsn", db.database)
    else:
        params.setdefault("dbname", db.database)
    return psycopg2.connect(**params)


def _read_ranges(cursor: Any, key: uuid.UUID, ranges: list[tuple[int, int]], readers: int) -> list[np.ndarray]:
    """The chunks of all ``ranges`` in order, read by this cursor and ``readers - 1`` more connections.

    The other connections import this transaction's snapshot (as pg_dump's
    parallel mode does), so every range is read as of the same moment. A
    connection that cannot be opened, or fails, leaves its ranges to this one.
    """
    results: list[list[np.ndarray] | None] = [None] * len(ranges)
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
                results[index] = _read_range(reader, key, *ranges[index])
            except BaseException:
                pending.put(index)  # another reader takes it (or fails the same way)
                raise

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
    return [chunk for chunks in results if chunks is not None for chunk in chunks]


def load_points(
    dataset_id: str, start_us: int | None = None, end_us: int | None = None, *, readers: int = _READERS
) -> tuple[np.ndarray, np.ndarray]:
    """A dataset's points in ``[start_us, end_us)`` as numpy arrays (epoch µs
    int64, float64), in time order, as of one moment.

    Analyses load millions of points: they come as binary COPY chunks parsed
    by a numpy dtype, no Python object per point, and a load of at least
    _PARALLEL_MIN_POINTS splits its time range over ``readers`` connections
    (this one and fresh ones with the same parameters, closed before it
    returns) reading one exported snapshot. Inside a caller's transaction it
    reads with one COPY in that transaction instead. NotFound for an unknown
    dataset.
    """
    if readers < 1:
        raise ValueError("readers must be at least 1")
    try:
        key = uuid.UUID(dataset_id)
    except ValueError:
        raise NotFound("dataset", dataset_id) from None
    if database_proxy.in_transaction():
        return _load_in_callers_transaction(dataset_id, key, start_us, end_us)
    with database_proxy.atomic():
        cursor = database_proxy.cursor()
        # One snapshot for the chunks, ranges and connections of this load.
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT point_count FROM dataset WHERE id = %s", (str(key),))
        row = cursor.fetchone()
        if row is None:
            raise NotFound("dataset", dataset_id)
        where, params = _window_sql(key, start_us, end_us)
        cursor.execute(_SPAN_SQL + where, params)
        first_us, last_us = cursor.fetchone()
        if first_us is None:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        expected = row[0]
        if (start_us is not None or end_us is not None) and expected >= _PARALLEL_MIN_POINTS:
            # The window's share of the dataset's time span, as if points were even in time.
            cursor.execute(_SPAN_SQL + "dataset_id = %s", (str(key),))
            all_first_us, all_last_us = cursor.fetchone()
            expected = expected * (last_us - first_us + 1) // (all_last_us - all_first_us + 1)
        if expected < _PARALLEL_MIN_POINTS:
            readers = 1
        ranges = _split(first_us, last_us + 1, readers * _RANGES_PER_READER if readers > 1 else 1)
        chunks = _read_ranges(cursor, key, ranges, readers)
    total = sum(chunk.size for chunk in chunks)
    timestamps, values = np.empty(total, np.int64), np.empty(total, np.float64)
    offset = 0
    for chunk in chunks:  # network to native byte order, into place (a cast, then an add: np.add of both was slower)
        part = timestamps[offset : offset + chunk.size]
        part[...] = chunk["ts"]
        part += _POSTGRES_EPOCH_US
        values[offset : offset + chunk.size] = chunk["value"]
        offset += chunk.size
    return timestamps, values


def _load_in_callers_transaction(
    dataset_id: str, key: uuid.UUID, start_us: int | None, end_us: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """load_points inside the caller's transaction: one COPY, one row per point."""
    if DatasetRow.select().where(DatasetRow.id == key).count() == 0:
        raise NotFound("dataset", dataset_id)
    cursor = database_proxy.cursor()
    where, params = _window_sql(key, start_us, end_us)
    query = cursor.mogrify(
        # Only fixed condition strings are joined; values go through mogrify.
        f"COPY (SELECT ts, value FROM point WHERE {where} ORDER BY ts) TO STDOUT WITH BINARY",  # noqa: S608
        params,
    ).decode()
    buffer = io.BytesIO()
    cursor.copy_expert(query, buffer)
    rows = np.frombuffer(buffer.getbuffer()[_COPY_HEADER_BYTES:-2], dtype=_POINT_ROW)
    return rows["ts"].astype(np.int64) + _POSTGRES_EPOCH_US, rows["value"].astype(np.float64)
