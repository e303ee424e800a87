"""The chunked point store against a real PostgreSQL: writes that overlap, arrive out
of order or concurrently, deletes and retention cutting chunks, the whole timestamp
range, and bucket queries checked against an independent numpy computation."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from analytics_svc import schema
from analytics_svc.datasets import store as dataset_store
from analytics_svc.points import chunks, store
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh_runtime.errors import NotFound
from mesh_runtime.wire import MAX_TIMESTAMP_US, MIN_TIMESTAMP_US
from tests.conftest import RunningStack

T0 = 1_714_521_600_000_000  # 2024-05-01T00:00:00Z, a Wednesday
MINUTE, HOUR, DAY = chunks.MINUTE, chunks.HOUR, chunks.DAY


class Model:
    """What the store should hold: a plain dict, last write wins."""

    def __init__(self) -> None:
        self.points: dict[int, float] = {}

    def write(self, ts: np.ndarray, values: np.ndarray) -> None:
        self.points.update(zip(ts.tolist(), values.tolist(), strict=True))

    def delete(self, start: int, end: int) -> int:
        gone = [t for t in self.points if start <= t < end]
        for t in gone:
            del self.points[t]
        return len(gone)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        ts = np.array(sorted(self.points), dtype=np.int64)
        return ts, np.array([self.points[t] for t in ts.tolist()], dtype=np.float64)


def _new_dataset() -> str:
    return str(dataset_store.create_dataset(dataset_store.NewDataset(name=f"ps-{uuid.uuid4().hex[:8]}")).id)


def _chunk_rows(dataset_id: str) -> list[tuple[int, int, int]]:
    cursor = schema.database_proxy.cursor()
    cursor.execute(
        "SELECT start_us, end_us, point_count FROM point_chunk WHERE dataset_id = %s ORDER BY start_us", (dataset_id,)
    )
    return [tuple(row) for row in cursor.fetchall()]


def _assert_holds(dataset_id: str, model: Model) -> None:
    """The store has exactly the model's points, its chunks are disjoint and the dataset's summary exact."""
    want_ts, want_values = model.arrays()
    got_ts, got_values = store.load_points(dataset_id)
    np.testing.assert_array_equal(got_ts, want_ts)
    assert got_values.tobytes() == want_values.tobytes()
    rows = _chunk_rows(dataset_id)
    assert all(a[1] <= b[0] for a, b in zip(rows, rows[1:], strict=False)), "chunks overlap"
    assert sum(count for _, _, count in rows) == want_ts.size
    row = dataset_store.get_dataset(dataset_id)
    assert row.point_count == want_ts.size
    if want_ts.size:
        assert _us(row.first_point_time) == want_ts[0] and _us(row.last_point_time) == want_ts[-1]
    else:
        assert row.first_point_time is None and row.last_point_time is None


def _us(moment: Any) -> int:
    from mesh_runtime.wire import datetime_to_us

    return int(datetime_to_us(moment))


def test_last_write_wins_across_chunk_edges_and_within_a_batch(bound_store: None) -> None:
    dataset_id, model = _new_dataset(), Model()
    ts = T0 + np.arange(3 * 7 * 24 * 60, dtype=np.int64) * MINUTE  # three weeks of minutes: week chunks
    values = np.arange(ts.size, dtype=np.float64)
    store.append_points(dataset_id, ts, values)
    model.write(ts, values)
    assert len(_chunk_rows(dataset_id)) >= 3
    edge = _chunk_rows(dataset_id)[1][0]
    # Over two chunk edges, repeated timestamps in the batch (the later wins), and new points between.
    over = np.concatenate([np.arange(edge - HOUR, edge + HOUR, MINUTE), [edge, edge], np.arange(edge - 30, edge + 30)])
    new_values = -np.arange(over.size, dtype=np.float64)
    row = store.append_points(dataset_id, over, new_values)
    for t, v in zip(over.tolist(), new_values.tolist(), strict=True):
        model.points[t] = v
    assert row.point_count == len(model.points)
    _assert_holds(dataset_id, model)


def test_out_of_order_and_overlapping_batches_end_as_one_series(bound_store: None) -> None:
    rng = np.random.default_rng(5)
    dataset_id, model = _new_dataset(), Model()
    ts = T0 + np.sort(rng.choice(60 * DAY // MINUTE, 40_000, replace=False)).astype(np.int64) * MINUTE
    batches = []
    for start in range(0, ts.size, 4_000):  # overlapping slices, shuffled points, in random order
        part = ts[max(0, start - 500) : start + 4_000]
        batches.append(rng.permutation(part))
    for i in rng.permutation(len(batches)).tolist():
        values = rng.normal(0, 1, batches[i].size)
        store.append_points(dataset_id, batches[i], values)
        model.write(batches[i], values)
    # Points before everything and after everything, and far away in the 1960s.
    extra = np.array([T0 - 400 * DAY, -5 * 365 * DAY, T0 + 900 * DAY], dtype=np.int64)
    store.append_points(dataset_id, extra, np.array([1.0, 2.0, 3.0]))
    model.write(extra, np.array([1.0, 2.0, 3.0]))
    _assert_holds(dataset_id, model)


def _two_writers_at_once(dataset_id: str, model: Model, batches: int, times: Callable[[int, int], np.ndarray]) -> None:
    """Two threads, each on a connection of its own, started together, append
    ``times(writer, batch)`` for each batch (writer 0 the values 1.0, writer 1
    the values 2.0); ``model`` gets the same points."""
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            with schema.database_proxy.connection_context():
                start.wait(10)
                for batch in range(batches):
                    ts = times(offset, batch)
                    store.append_points(dataset_id, ts, np.full(ts.size, offset + 1.0))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(offset,)) for offset in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    for offset in (0, 1):
        for batch in range(batches):
            ts = times(offset, batch)
            model.write(ts, np.full(ts.size, offset + 1.0))


def test_two_concurrent_writers_never_lose_a_point(bound_store: None) -> None:
    dataset_id, model = _new_dataset(), Model()
    initial = T0 + np.arange(0, 4 * DAY, MINUTE)
    store.append_points(dataset_id, initial, np.zeros(initial.size))
    model.write(initial, np.zeros(initial.size))

    def times(offset: int, batch: int) -> np.ndarray:
        # Interleaved seconds into the same chunks.
        return T0 + (np.arange(batch * 600, (batch + 1) * 600) * 2 + offset) * chunks.SECOND * 29

    _two_writers_at_once(dataset_id, model, 20, times)
    _assert_holds(dataset_id, model)


def _chunk_xmins(dataset_id: str) -> dict[int, str]:
    """Each chunk's start and the transaction that last wrote its row (changes when it is written again)."""
    cursor = schema.database_proxy.cursor()
    cursor.execute("SELECT start_us, xmin::text FROM point_chunk WHERE dataset_id = %s", (dataset_id,))
    return dict(cursor.fetchall())


def test_small_appends_leave_the_chunks_before_them_alone_and_stay_few(bound_store: None) -> None:
    """A stream of one-point appends after a big batch: the big chunk is not written again
    on every append (the old write amplification made such a stream quadratic), the cell
    holds O(log n) chunks, and the points, the summaries and a query over them stay exact."""
    rng = np.random.default_rng(11)
    dataset_id, model = _new_dataset(), Model()
    thursday = T0 + DAY  # week chunks count from 1970-01-01, a Thursday: all of these in one week
    ts = thursday + np.arange(3_000, dtype=np.int64) * MINUTE
    values = rng.normal(20, 1, ts.size)
    store.append_points(dataset_id, ts, values)
    model.write(ts, values)
    (big_start,) = _chunk_xmins(dataset_id)
    appends = 1_000
    for i in range(appends):
        t, v = np.array([ts[-1] + (i + 1) * MINUTE]), rng.normal(20, 1, 1)
        store.append_points(dataset_id, t, v)
        model.write(t, v)
        if i == 0:
            big_xmin = _chunk_xmins(dataset_id)[big_start]  # its window ended at its last point, once
    assert _chunk_xmins(dataset_id)[big_start] == big_xmin, "the big chunk was written again"
    rows = _chunk_rows(dataset_id)
    assert rows[0] == (big_start, int(ts[-1]) + 1, ts.size)
    assert len(rows) <= 2 + 2 * int(np.log2(appends)), rows
    _assert_holds(dataset_id, model)
    want_ts, want_values = model.arrays()
    got = store.query_buckets(dataset_id, thursday, thursday + 7 * DAY, DAY)
    days = (want_ts - thursday) // DAY
    assert got.count.tolist() == np.bincount(days).tolist()
    np.testing.assert_allclose(got.sum, np.bincount(days, weights=want_values), rtol=1e-12)
    assert got.last.tolist() == [want_values[days == d][-1] for d in range(int(days.max()) + 1)]


def test_tail_chunks_take_overwrites_out_of_order_points_and_deletes(bound_store: None) -> None:
    rng = np.random.default_rng(12)
    dataset_id, model = _new_dataset(), Model()
    base = T0 + np.arange(2_000, dtype=np.int64) * MINUTE
    for part in np.array_split(base, 40):  # appends of 50: tail chunks of several sizes
        values = rng.normal(0, 1, part.size)
        store.append_points(dataset_id, part, values)
        model.write(part, values)
    assert len(_chunk_rows(dataset_id)) > 1
    for batch in (
        base[rng.choice(base.size, 300, replace=False)],  # overwrites scattered over every tail chunk
        base[-1] + np.array([5, 1, 3, 2]) * MINUTE,  # after the end, out of order
        np.array([base[0] - MINUTE, base[1000] + 30 * chunks.SECOND, base[-1] + 4 * MINUTE]),  # before, between, again
    ):
        values = rng.normal(0, 1, batch.size)
        store.append_points(dataset_id, batch, values)
        model.write(batch, values)
        _assert_holds(dataset_id, model)
    for start, end in ((base[700], base[1300]), (base[1999] - 30 * chunks.SECOND, base[1999] + 3 * MINUTE)):
        assert store.delete_points(dataset_id, int(start), int(end)) == model.delete(int(start), int(end))
        _assert_holds(dataset_id, model)
    more = base[-1] + np.arange(10, 20, dtype=np.int64) * MINUTE
    store.append_points(dataset_id, more, np.ones(more.size))
    model.write(more, np.ones(more.size))
    _assert_holds(dataset_id, model)


def test_two_concurrent_appenders_to_one_tail_never_lose_a_point(bound_store: None) -> None:
    dataset_id, model = _new_dataset(), Model()
    initial = T0 + np.arange(0, 2_000) * MINUTE
    store.append_points(dataset_id, initial, np.zeros(initial.size))
    model.write(initial, np.zeros(initial.size))

    def times(offset: int, batch: int) -> np.ndarray:
        # Both append after the end, interleaved: each batch lands after the last point or among the other's.
        return T0 + (2_000 + (np.arange(batch * 3, batch * 3 + 3) * 2 + offset)) * MINUTE

    _two_writers_at_once(dataset_id, model, 60, times)
    _assert_holds(dataset_id, model)


def test_deleting_ranges_that_cut_chunks_keeps_count_and_time_range_exact(bound_store: None) -> None:
    dataset_id, model = _new_dataset(), Model()
    ts = T0 + np.arange(0, 60 * DAY, 10 * chunks.SECOND, dtype=np.int64)  # day chunks
    values = np.sin(np.arange(ts.size, dtype=np.float64))
    store.append_points(dataset_id, ts, values)
    model.write(ts, values)
    rows = _chunk_rows(dataset_id)
    for start, end in [
        (rows[3][0] + 7, rows[9][0] + HOUR),  # cuts two chunks, drops the ones between
        (rows[20][0], rows[21][0]),  # exactly one chunk
        (rows[30][0] + 1, rows[30][0] + 2),  # nothing there: no point at that microsecond
        (int(ts[-1]), int(ts[-1]) + 1),  # the last point: the time range shrinks
        (int(ts[0]) - DAY, int(ts[0]) + 5 * MINUTE),  # the first points
        (rows[50][0], rows[40][0]),  # an empty range
    ]:
        assert store.delete_points(dataset_id, start, end) == model.delete(start, end)
        _assert_holds(dataset_id, model)
    assert store.delete_points(dataset_id, MIN_TIMESTAMP_US, MAX_TIMESTAMP_US + 1) == model.delete(
        MIN_TIMESTAMP_US, MAX_TIMESTAMP_US + 1
    )
    _assert_holds(dataset_id, model)
    assert _chunk_rows(dataset_id) == []


def test_retention_drops_whole_old_chunks_and_trims_the_one_it_cuts(bound_store: None) -> None:
    dataset_id, model = _new_dataset(), Model()
    ts = T0 + np.arange(0, 10 * DAY, MINUTE, dtype=np.int64)
    store.append_points(dataset_id, ts, np.ones(ts.size))
    model.write(ts, np.ones(ts.size))
    before = _chunk_rows(dataset_id)
    cutoff = int(ts[0]) + 5 * DAY + 3 * HOUR
    decoded: list[int] = []
    read_chunks = store._read_chunks

    def counted(cursor: Any, key: uuid.UUID, starts: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        decoded.extend(starts.tolist())
        return read_chunks(cursor, key, starts)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "_read_chunks", counted)
        assert store.drop_points_before(dataset_id, cutoff) == model.delete(MIN_TIMESTAMP_US, cutoff)
    straddling = [start for start, end, _ in before if start < cutoff < end]
    assert decoded == straddling  # only the chunk the cutoff cuts was decoded
    after = _chunk_rows(dataset_id)
    assert [row[0] for row in after] == [start for start, end, _ in before if end > cutoff]
    _assert_holds(dataset_id, model)
    assert store.drop_points_before(dataset_id, cutoff) == 0


def test_the_whole_timestamp_range_round_trips_through_the_api_and_the_store(
    bound_store: None, mesh: RunningStack
) -> None:
    ts = np.array(
        [MIN_TIMESTAMP_US, MIN_TIMESTAMP_US + 1, -86_400_000_001, -1, 0, 1, MAX_TIMESTAMP_US - 1, MAX_TIMESTAMP_US],
        dtype=np.int64,
    )
    values = np.arange(ts.size, dtype=np.float64) - 3.5
    dataset_id = _new_dataset()
    with mesh.channel(mesh.analytics, "analyst") as channel:
        stub = pb_grpc.AnalyticsServiceStub(channel)
        reply = stub.AppendPoints(
            pb.AppendPointsRequest(
                dataset_id=dataset_id, timestamps_us=ts[::-1].tolist(), values=values[::-1].tolist()
            ),
            timeout=30,
        )
        assert (reply.accepted_count, reply.dataset.point_count) == (ts.size, ts.size)
        got = stub.GetDataset(pb.GetDatasetRequest(id=dataset_id), timeout=10).dataset
        assert got.first_point_time.ToMicroseconds() == MIN_TIMESTAMP_US
        assert got.last_point_time.ToMicroseconds() == MAX_TIMESTAMP_US
    model = Model()
    model.write(ts, values)
    _assert_holds(dataset_id, model)
    np.testing.assert_array_equal(store.query_raw(dataset_id, MIN_TIMESTAMP_US, 1, 100)[0], ts[:5])
    np.testing.assert_array_equal(store.load_points(dataset_id, -1, MAX_TIMESTAMP_US)[0], ts[3:7])
    buckets = store.query_buckets(dataset_id, MIN_TIMESTAMP_US, MAX_TIMESTAMP_US + 1, 1000 * 365 * DAY)
    assert buckets.count.sum() == ts.size and buckets.start_us[0] <= MIN_TIMESTAMP_US
    assert buckets.min.min() == values.min() and buckets.first[0] == values[0] and buckets.last[-1] == values[-1]
    assert store.delete_points(dataset_id, MIN_TIMESTAMP_US, 0) == 4
    assert store.drop_points_before(dataset_id, MAX_TIMESTAMP_US) == 3
    model.delete(MIN_TIMESTAMP_US, MAX_TIMESTAMP_US)
    _assert_holds(dataset_id, model)


def _numpy_buckets(ts: np.ndarray, values: np.ndarray, start: int, end: int, step: int, origin: int
                   ) -> dict[int, tuple[int, float, float, float, float, float]]:
    """The buckets the plain way: a boolean mask per bucket start."""
    keep = (ts >= start) & (ts < end)
    ts, values = ts[keep], values[keep]
    out = {}
    for bucket_start in sorted({origin + ((t - origin) // step) * step for t in ts.tolist()}):
        mask = (ts >= bucket_start) & (ts < bucket_start + step)
        v = values[mask]
        out[bucket_start] = (int(mask.sum()), v.min(), v.max(), v.sum(), v[0], v[-1])
    return out


def test_query_buckets_match_numpy_and_decode_only_chunks_that_straddle_edges(bound_store: None) -> None:
    rng = np.random.default_rng(21)
    dataset_id = _new_dataset()
    ts = T0 - 30 * DAY + np.sort(rng.choice(120 * DAY // chunks.SECOND, 150_000, replace=False)).astype(np.int64) * (
        chunks.SECOND
    )
    values = np.round(rng.normal(10, 5, ts.size), 2)
    store.append_points(dataset_id, ts, values)
    stored_width = dataset_store.get_dataset(dataset_id).chunk_width_us
    assert stored_width is not None
    width = int(stored_width)
    decoded: list[int] = []
    read_chunks = store._read_chunks

    def counted(cursor: Any, key: uuid.UUID, starts: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        decoded.append(starts.size)
        return read_chunks(cursor, key, starts)

    cases = [
        (int(ts[0]) // width * width, (int(ts[-1]) // width + 1) * width, width * 4, 0),  # aligned on chunk edges
        (T0 - 7 * DAY, T0 + 14 * DAY, DAY, 0),
        (T0 - 7 * DAY + 5, T0 + 14 * DAY - 3, DAY, 0),  # range ends cut chunks
        (T0, T0 + 60 * DAY, 7 * DAY, T0 + 5 * DAY),  # weeks from a Monday
        (T0 - 20 * DAY, T0 + 40 * DAY, 17 * MINUTE, 123),  # an odd step and origin
        (T0, T0 + 1, HOUR, 0),
        (T0 + 500 * DAY, T0 + 600 * DAY, DAY, 0),  # nothing there
    ]
    for start, end, step, origin in cases:
        decoded.clear()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(store, "_read_chunks", counted)
            got = store.query_buckets(dataset_id, start, end, step, origin)
        want = _numpy_buckets(ts, values, start, end, step, origin)
        assert got.start_us.tolist() == list(want), (start, end, step, origin)
        assert got.count.dtype == np.int64 and got.sum.dtype == np.float64
        for i, bucket_start in enumerate(got.start_us.tolist()):
            count, low, high, total, first, last = want[bucket_start]
            assert (got.count[i], got.min[i], got.max[i], got.first[i], got.last[i]) == (count, low, high, first, last)
            assert got.sum[i] == pytest.approx(total, rel=1e-12)
        if step % width == 0 and origin % width == 0 and start % width == 0 and end % width == 0:
            assert sum(decoded) == 0  # every bucket is whole chunks: answered from their summaries
        else:
            assert sum(decoded) <= 2 * len(want) + 2
    assert 1_000 <= 150_000 * width / (120 * DAY) <= chunks.TARGET_POINTS  # thousands of points per chunk


def test_query_raw_pages_through_the_range_in_time_order(bound_store: None) -> None:
    dataset_id = _new_dataset()
    ts = T0 + np.arange(0, 50_000, dtype=np.int64) * 7 * chunks.SECOND
    values = np.cos(np.arange(ts.size, dtype=np.float64))
    store.append_points(dataset_id, ts, values)
    start, end = int(ts[123]) - 1, int(ts[45_678])
    pages_ts, pages_values = [], []
    while True:
        page_ts, page_values = store.query_raw(dataset_id, start, end, 7_000)
        assert page_ts.size <= 7_000
        if page_ts.size == 0:
            break
        pages_ts.append(page_ts)
        pages_values.append(page_values)
        start = int(page_ts[-1]) + 1
    np.testing.assert_array_equal(np.concatenate(pages_ts), ts[123:45_678])
    np.testing.assert_array_equal(np.concatenate(pages_values), values[123:45_678])
    assert store.query_raw(dataset_id, int(ts[5]), int(ts[5]), 10)[0].size == 0


def test_every_function_says_not_found_for_an_unknown_dataset(bound_store: None) -> None:
    calls: list[Callable[[str], object]] = [
        lambda dataset_id: store.append_points(dataset_id, np.array([1]), np.array([1.0])),
        store.load_points,
        lambda dataset_id: store.query_buckets(dataset_id, 0, 10, 1),
        lambda dataset_id: store.query_raw(dataset_id, 0, 10, 1),
        lambda dataset_id: store.delete_points(dataset_id, 0, 10),
        lambda dataset_id: store.drop_points_before(dataset_id, 10),
    ]
    for dataset_id in (str(uuid.uuid4()), "not-a-uuid"):
        for call in calls:
            with pytest.raises(NotFound):
                call(dataset_id)


def test_reads_inside_a_callers_transaction_see_its_own_writes(bound_store: None) -> None:
    dataset_id = _new_dataset()
    ts = T0 + np.arange(0, 3 * DAY, MINUTE, dtype=np.int64)
    store.append_points(dataset_id, ts, np.ones(ts.size))
    with schema.database_proxy.atomic() as transaction:
        store.append_points(dataset_id, ts[:10] + 1, np.full(10, 2.0))  # not committed
        assert store.load_points(dataset_id)[0].size == ts.size + 10
        assert store.query_raw(dataset_id, int(ts[0]), int(ts[5]), 100)[0].size == 10
        assert store.query_buckets(dataset_id, int(ts[0]), int(ts[-1]) + 1, DAY).count.sum() == ts.size + 10
        transaction.rollback()
    assert store.load_points(dataset_id)[0].size == ts.size
