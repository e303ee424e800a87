"""Reading a dataset's points back into numpy with binary COPY."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import numpy as np
import psycopg2
import pytest

from analytics_svc import schema
from analytics_svc.datasets import store as dataset_store
from analytics_svc.points import chunks, store
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from mesh_runtime.errors import NotFound
from tests.conftest import RunningStack


def test_points_come_back_exactly_in_time_order(mesh: RunningStack, bound_store: None) -> None:
    rng = np.random.default_rng(3)
    ts = 1_600_000_000_000_000 + np.sort(rng.choice(10**12, size=5000, replace=False)).astype(np.int64)
    values = rng.normal(0, 1e6, ts.size)
    values[7] = -0.0
    values[8] = 5e-324  # the smallest double survives the round trip
    with mesh.channel(mesh.analytics, "analyst") as channel:
        stub = pb_grpc.AnalyticsServiceStub(channel)
        dataset = stub.CreateDataset(
            pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"load-{uuid.uuid4().hex[:8]}")), timeout=10
        ).dataset
        order = rng.permutation(ts.size)  # arrival order must not matter
        stub.AppendPoints(
            pb.AppendPointsRequest(
                dataset_id=dataset.id, timestamps_us=ts[order].tolist(), values=values[order].tolist()
            ),
            timeout=30,
        )
    got_ts, got_values = store.load_points(dataset.id)
    assert got_ts.dtype == np.int64 and got_values.dtype == np.float64
    np.testing.assert_array_equal(got_ts, ts)
    np.testing.assert_array_equal(got_values, values)

    window_ts, window_values = store.load_points(dataset.id, start_us=int(ts[100]), end_us=int(ts[200]))
    np.testing.assert_array_equal(window_ts, ts[100:200])
    np.testing.assert_array_equal(window_values, values[100:200])

    empty_ts, empty_values = store.load_points(dataset.id, start_us=int(ts[-1]) + 1)
    assert empty_ts.size == 0 and empty_values.size == 0


def test_unknown_dataset_is_not_found(bound_store: None) -> None:
    with pytest.raises(NotFound):
        store.load_points(str(uuid.uuid4()))
    with pytest.raises(NotFound):
        store.load_points("not-a-uuid")


def _dataset_with(ts: np.ndarray, values: np.ndarray) -> str:
    dataset = dataset_store.create_dataset(dataset_store.NewDataset(name=f"load-{uuid.uuid4().hex[:8]}"))
    if ts.size:
        store.append_points(str(dataset.id), ts, values)
    return str(dataset.id)


@pytest.fixture
def split_small_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every load splits over connections, and points are stored in chunks of at most 700,
    so a range holds several chunks."""
    monkeypatch.setattr(store, "_PARALLEL_MIN_POINTS", 0)
    monkeypatch.setattr(chunks, "TARGET_POINTS", 300)
    monkeypatch.setattr(chunks, "MAX_POINTS", 700)


@pytest.fixture
def readers_seen(monkeypatch: pytest.MonkeyPatch, bound_store: None) -> set[int]:
    """Backend pids that read ranges; the caller's own connection waits until another has started one,
    so a split load is really read by more than one connection."""
    leader = schema.database_proxy.connection().get_backend_pid()
    helper_started = threading.Event()
    seen: set[int] = set()
    read_range = store._read_range

    def watched(cursor: Any, key: uuid.UUID, start_us: int, end_us: int) -> list[np.ndarray]:
        pid = cursor.connection.get_backend_pid()
        seen.add(pid)
        if pid == leader:
            assert helper_started.wait(10), "no second connection read a range"
        else:
            helper_started.set()
        return read_range(cursor, key, start_us, end_us)

    monkeypatch.setattr(store, "_read_range", watched)
    return seen


def _chunk_starts(dataset_id: str) -> list[int]:
    cursor = store.database_proxy.cursor()
    cursor.execute("SELECT start_us FROM point_chunk WHERE dataset_id = %s ORDER BY start_us", (dataset_id,))
    return [row[0] for row in cursor.fetchall()]


def test_ranges_cover_the_window_on_chunk_edges_with_even_point_counts(
    bound_store: None, split_small_loads: None
) -> None:
    ts = 1_600_000_000_000_000 + np.arange(20_000, dtype=np.int64) * 1000
    ts[15_000:] += 10**12  # a gap: the last quarter of the points far later
    dataset_id = _dataset_with(ts, np.ones(ts.size))
    starts = _chunk_starts(dataset_id)
    assert len(starts) > 20
    for lo, hi, parts in [(int(ts[0]), int(ts[-1]) + 1, 8), (-(2**63), 2**63 - 1, 3), (int(ts[100]), int(ts[101]), 4)]:
        found = store._summaries(store.database_proxy.cursor(), uuid.UUID(dataset_id), lo, hi)
        ranges = store._ranges(found, lo, hi, parts)
        assert 1 <= len(ranges) <= parts
        assert ranges[0][0] == lo and ranges[-1][1] == hi
        assert all(a[1] == b[0] and a[1] in starts for a, b in zip(ranges, ranges[1:], strict=False))
        counts = [int(((ts >= a) & (ts < b)).sum()) for a, b in ranges]
        assert sum(counts) == int(((ts >= lo) & (ts < hi)).sum())
        if len(ranges) == parts:
            assert max(counts) <= 2 * sum(counts) / parts  # about even, though the points are not even in time


def _range_starts(dataset_id: str, lo: int, hi: int) -> list[int]:
    """Where the ranges of a split load of [lo, hi) start."""
    found = store._summaries(store.database_proxy.cursor(), uuid.UUID(dataset_id), lo, hi)
    return [start for start, _ in store._ranges(found, lo, hi, 3 * store._RANGES_PER_READER)]


def test_a_split_load_equals_one_read_for_skewed_points_and_windows_on_range_boundaries(
    split_small_loads: None, readers_seen: set[int]
) -> None:
    rng = np.random.default_rng(11)
    # Skewed: a few points years apart, then a dense run of consecutive
    # microseconds and a cluster within a quarter hour, all in one of the
    # whole span's ranges. A window over the dense run is split there instead,
    # with a point on every range boundary.
    dense = 1_700_000_000_000_000 + np.arange(6000, dtype=np.int64)
    cluster = 1_700_000_100_000_000 + np.sort(rng.choice(10**9, size=3000, replace=False)).astype(np.int64)
    sparse = np.array([86_400_000_000, 1_000_000_000_000_000, 2_500_000_000_000_000], dtype=np.int64)
    ts = np.sort(np.concatenate([sparse, dense, cluster]))
    values = rng.normal(0, 1e3, ts.size)
    order = rng.permutation(ts.size)
    dataset_id = _dataset_with(ts[order], values[order])
    got_ts, got_values = store.load_points(dataset_id, readers=3)
    assert len(readers_seen) > 1
    np.testing.assert_array_equal(got_ts, ts)
    np.testing.assert_array_equal(got_values, values)
    # The whole span's range boundaries, and windows on them, a microsecond either side.
    edges = _range_starts(dataset_id, int(ts[0]), int(ts[-1]) + 1)
    assert len(edges) >= 5
    windows: list[tuple[int | None, int | None]] = [(None, None), (None, edges[3]), (edges[2], None)]
    windows += [(edges[i] + d, edges[j] + e) for i, j in [(0, 1), (1, 4), (3, -1)] for d in (-1, 0, 1) for e in (-1, 0)]
    # Windows split within the dense run, each of its range boundaries a point.
    first, last = int(dense[0]), int(dense[-1])
    inner = _range_starts(dataset_id, first, last)
    assert len(inner) >= 3
    windows += [
        (first, last),
        (first + 1, last),
        (inner[1], inner[-1]),
        (inner[-1], inner[-1] + 1),
        (first, int(cluster[-1])),
    ]
    for start, end in windows:
        keep = np.ones(ts.size, bool)
        if start is not None:
            keep &= ts >= start
        if end is not None:
            keep &= ts < end
        for readers in (1, 2, 3):
            window_ts, window_values = store.load_points(dataset_id, start, end, readers=readers)
            np.testing.assert_array_equal(window_ts, ts[keep], err_msg=f"[{start}, {end}) with {readers} readers")
            np.testing.assert_array_equal(window_values, values[keep])
        with schema.database_proxy.atomic():  # one COPY in the caller's transaction: the same points
            window_ts, window_values = store.load_points(dataset_id, start, end)
        np.testing.assert_array_equal(window_ts, ts[keep])
        np.testing.assert_array_equal(window_values, values[keep])


def test_a_writer_committing_during_a_split_load_is_not_seen_by_any_part(
    mesh: RunningStack, split_small_loads: None, readers_seen: set[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    ts = 1_600_000_000_000_000 + np.arange(0, 20_000 * 1_000_000, 1_000_000, dtype=np.int64)
    values = np.arange(ts.size, dtype=np.float64)
    dataset_id = _dataset_with(ts, values)
    wrote, writing = threading.Event(), threading.Lock()
    read_range = store._read_range  # already watched: a second connection reads too

    def write_first(cursor: Any, key: uuid.UUID, start_us: int, end_us: int) -> list[np.ndarray]:
        # Every reader's first read comes after this write commits; the load
        # started before the write, so none of its parts may see it.
        with writing:
            if not wrote.is_set():
                write()
                wrote.set()
        return read_range(cursor, key, start_us, end_us)

    def write() -> None:
        # Every point changes, one in ten goes, new points land between the old ones:
        # one transaction on another connection of the pool, in another thread.
        kept = np.arange(ts.size) % 10 != 3
        new_ts = np.concatenate([ts[kept], ts[kept] + 1])
        new_values = np.concatenate([-values[kept] - 1, np.full(int(kept.sum()), 7.0)])

        def commit() -> None:
            with schema.database_proxy.connection_context(), schema.database_proxy.atomic():
                assert store.delete_points(dataset_id, int(ts[0]), int(ts[-1]) + 1) == ts.size
                store.append_points(dataset_id, new_ts, new_values)

        writer = threading.Thread(target=commit)
        writer.start()
        writer.join(60)

    monkeypatch.setattr(store, "_read_range", write_first)
    got_ts, got_values = store.load_points(dataset_id, readers=2)
    assert wrote.is_set() and len(readers_seen) > 1
    np.testing.assert_array_equal(got_ts, ts)
    np.testing.assert_array_equal(got_values, values)
    after_ts, after_values = store.load_points(dataset_id, readers=2)  # the write did land
    assert after_ts.size == 2 * (ts.size - ts.size // 10)
    assert np.all(np.diff(after_ts) > 0) and np.all(after_values[1::2] == 7) and np.all(after_values[::2] < 0)


def test_a_split_load_without_a_second_connection_reads_everything_on_its_own(
    bound_store: None, split_small_loads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ts = 1_600_000_000_000_000 + np.arange(5000, dtype=np.int64) * 1000
    values = np.sqrt(np.arange(5000, dtype=np.float64))
    dataset_id = _dataset_with(ts, values)

    def refused() -> Any:
        raise psycopg2.OperationalError("too many connections")

    monkeypatch.setattr(store, "_reader_connection", refused)
    got_ts, got_values = store.load_points(dataset_id, readers=4)
    np.testing.assert_array_equal(got_ts, ts)
    np.testing.assert_array_equal(got_values, values)


def test_a_range_a_second_connection_fails_on_is_read_by_the_first(
    bound_store: None, split_small_loads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ts = 1_600_000_000_000_000 + np.arange(5000, dtype=np.int64) * 1000
    values = -np.arange(5000, dtype=np.float64)
    dataset_id = _dataset_with(ts, values)
    leader = schema.database_proxy.connection().get_backend_pid()
    opened: list[Any] = []
    failed = threading.Event()
    read_range, reader_connection = store._read_range, store._reader_connection

    def recorded() -> Any:
        opened.append(reader_connection())
        return opened[-1]

    def failing_elsewhere(cursor: Any, key: uuid.UUID, start_us: int, end_us: int) -> list[np.ndarray]:
        if cursor.connection.get_backend_pid() != leader:
            failed.set()
            raise psycopg2.OperationalError("server closed the connection unexpectedly")
        assert failed.wait(10), "the second connection read nothing"
        return read_range(cursor, key, start_us, end_us)

    monkeypatch.setattr(store, "_reader_connection", recorded)
    monkeypatch.setattr(store, "_read_range", failing_elsewhere)
    got_ts, got_values = store.load_points(dataset_id, readers=2)
    np.testing.assert_array_equal(got_ts, ts)
    np.testing.assert_array_equal(got_values, values)
    assert len(opened) == 1 and opened[0].closed


def test_a_failing_load_closes_its_extra_connections(
    bound_store: None, split_small_loads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_id = _dataset_with(1_600_000_000_000_000 + np.arange(5000, dtype=np.int64), np.zeros(5000))
    opened: list[Any] = []
    reader_connection = store._reader_connection

    def recorded() -> Any:
        opened.append(reader_connection())
        return opened[-1]

    def broken(cursor: Any, key: uuid.UUID, start_us: int, end_us: int) -> list[np.ndarray]:
        raise RuntimeError("unexpected COPY output")

    monkeypatch.setattr(store, "_reader_connection", recorded)
    monkeypatch.setattr(store, "_read_range", broken)
    with pytest.raises(RuntimeError):
        store.load_points(dataset_id, readers=3)
    assert len(opened) == 2 and all(conn.closed for conn in opened)
    # The load's own transaction is over too.
    assert schema.database_proxy.connection().get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE


def test_an_empty_dataset_and_an_empty_window_load_as_empty_arrays(bound_store: None, split_small_loads: None) -> None:
    empty = _dataset_with(np.empty(0, np.int64), np.empty(0))
    for dataset_id, start, end in [(empty, None, None), (_dataset_with(np.array([5, 9]), np.array([1.0, 2.0])), 6, 9)]:
        got_ts, got_values = store.load_points(dataset_id, start, end)
        assert got_ts.dtype == np.int64 and got_values.dtype == np.float64
        assert got_ts.size == 0 and got_values.size == 0


def test_window_bounds_are_exact_to_the_microsecond_far_from_1970(bound_store: None) -> None:
    # Instants where to_timestamp(us / 1e6) lands a microsecond off (a double's precision).
    instants = [4_317_789_169_597_961, 9_171_608_293_468_930, 9_223_372_036_854_775]
    ts = np.array(sorted(t + d for t in instants for d in (-1, 0, 1)), dtype=np.int64)
    dataset_id = _dataset_with(ts, np.arange(ts.size, dtype=np.float64))
    for t in instants:
        for start, end in [(t, None), (None, t), (t, t + 1), (t - 1, t + 1)]:
            keep = (ts >= (start if start is not None else ts[0])) & (ts < (end if end is not None else ts[-1] + 1))
            got_ts, _ = store.load_points(dataset_id, start, end)
            np.testing.assert_array_equal(got_ts, ts[keep], err_msg=f"[{start}, {end})")
            with schema.database_proxy.atomic():
                np.testing.assert_array_equal(store.load_points(dataset_id, start, end)[0], ts[keep])
