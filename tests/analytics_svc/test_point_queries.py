"""Reading points back: QueryPoints (raw pages, buckets) and BatchQueryPoints,
through gRPC and REST, checked against an independent computation."""

from __future__ import annotations

import math
import uuid
from collections import defaultdict

import grpc
import httpx
import numpy as np
import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from mesh.analytics.v1 import points_pb2 as ppb
from mesh_runtime.wire import MAX_TIMESTAMP_US, MIN_TIMESTAMP_US
from tests.conftest import RunningStack

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
T0 = 1_714_564_800_000_000  # 2024-05-01T12:00:00Z
ALL = [
    ppb.AGGREGATION_COUNT,
    ppb.AGGREGATION_MIN,
    ppb.AGGREGATION_MAX,
    ppb.AGGREGATION_MEAN,
    ppb.AGGREGATION_SUM,
    ppb.AGGREGATION_FIRST,
    ppb.AGGREGATION_LAST,
]


@pytest.fixture
def stub(analytics_channel: grpc.Channel) -> pb_grpc.AnalyticsServiceStub:
    return pb_grpc.AnalyticsServiceStub(analytics_channel)


def new_dataset(stub: pb_grpc.AnalyticsServiceStub) -> str:
    name = f"query-{uuid.uuid4().hex[:8]}"
    return str(
        stub.CreateDataset(pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name)), timeout=10).dataset.id
    )


def append(stub: pb_grpc.AnalyticsServiceStub, dataset_id: str, ts: np.ndarray, values: np.ndarray) -> None:
    for start in range(0, len(ts), 100_000):
        reply = stub.AppendPoints(
            pb.AppendPointsRequest(
                dataset_id=dataset_id,
                timestamps_us=ts[start : start + 100_000].tolist(),
                values=values[start : start + 100_000].tolist(),
            ),
            timeout=60,
        )
        assert reply.rejected_count == 0, reply.rejected_points


def stamp(us: int) -> timestamp_pb2.Timestamp:
    seconds, micros = divmod(us, 1_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=micros * 1000)


def duration(us: int) -> duration_pb2.Duration:
    seconds, micros = divmod(us, 1_000_000)
    return duration_pb2.Duration(seconds=seconds, nanos=micros * 1000)


def irregular_series(seed: int, n: int, start_us: int, span_us: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct random timestamps in [start_us, start_us + span_us), sorted, with random values."""
    rng = np.random.default_rng(seed)
    ts = np.unique(rng.integers(start_us, start_us + span_us, size=n, dtype=np.int64))
    values = rng.normal(50, 20, size=ts.size).round(rng.integers(0, 6))
    return ts, values


def expected_buckets(
    ts: np.ndarray, values: np.ndarray, start_us: int, end_us: int, step_us: int, origin_us: int
) -> dict[str, list[float]]:
    """The aggregates per bucket, computed point by point in plain Python (no numpy grouping)."""
    groups: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for t, v in zip(ts.tolist(), values.tolist(), strict=True):
        if start_us <= t < end_us:
            groups[(t - origin_us) // step_us].append((t, v))
    out: dict[str, list[float]] = defaultdict(list)
    for k in sorted(groups):
        members = sorted(groups[k])
        vals = [v for _, v in members]
        out["start_times_us"].append(origin_us + k * step_us)
        out["count"].append(len(vals))
        out["min"].append(min(vals))
        out["max"].append(max(vals))
        out["sum"].append(math.fsum(vals))
        out["mean"].append(math.fsum(vals) / len(vals))
        out["first"].append(members[0][1])
        out["last"].append(members[-1][1])
    return out


def assert_buckets_equal(got: ppb.PointBuckets, want: dict[str, list[float]], names: list[str]) -> None:
    assert list(got.start_times_us) == want["start_times_us"]
    for name in names:
        values = list(getattr(got, name))
        if name in ("sum", "mean"):  # summation order may differ: equal to rounding
            assert np.allclose(values, want[name], rtol=1e-12, atol=1e-9), name
        else:
            assert values == want[name], name


def test_raw_points_come_back_in_pages(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = new_dataset(stub)
    ts, values = irregular_series(1, 2_500, T0, DAY_US)
    append(stub, dataset_id, ts[::-1].copy(), values[::-1].copy())  # written newest first

    got_ts: list[int] = []
    got_values: list[float] = []
    token = ""
    pages = 0
    while True:
        reply = stub.QueryPoints(
            pb.QueryPointsRequest(dataset_id=dataset_id, page_size=1_000, page_token=token), timeout=10
        )
        assert reply.WhichOneof("result") == "points"
        assert len(reply.points.timestamps_us) <= 1_000
        got_ts += reply.points.timestamps_us
        got_values += reply.points.values
        pages += 1
        token = reply.next_page_token
        if not token:
            break
    assert pages == 3
    assert got_ts == ts.tolist() and got_values == values.tolist()  # time order, exact doubles

    # A range is half-open, and the default page holds all 2,500.
    lo, hi = int(ts[100]), int(ts[200])
    window = stub.QueryPoints(
        pb.QueryPointsRequest(dataset_id=dataset_id, start_time=stamp(lo), end_time=stamp(hi)), timeout=10
    )
    assert list(window.points.timestamps_us) == ts[100:200].tolist()
    assert window.next_page_token == ""
    assert len(stub.QueryPoints(pb.QueryPointsRequest(dataset_id=dataset_id), timeout=10).points.values) == 2_500


def test_a_page_token_belongs_to_its_query(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = new_dataset(stub)
    append(stub, dataset_id, T0 + np.arange(10, dtype=np.int64), np.arange(10, dtype=np.float64))
    first = stub.QueryPoints(pb.QueryPointsRequest(dataset_id=dataset_id, page_size=4), timeout=10)
    assert first.next_page_token
    # The page size may change between pages (AIP-158); the range may not.
    rest = stub.QueryPoints(
        pb.QueryPointsRequest(dataset_id=dataset_id, page_size=100, page_token=first.next_page_token), timeout=10
    )
    assert list(rest.points.values) == [float(v) for v in range(4, 10)]
    with pytest.raises(grpc.RpcError) as caught:
        stub.QueryPoints(
            pb.QueryPointsRequest(dataset_id=dataset_id, start_time=stamp(T0), page_token=first.next_page_token),
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_buckets_match_an_independent_computation(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = new_dataset(stub)
    ts, values = irregular_series(2, 20_000, T0 - 3 * DAY_US, 10 * DAY_US)
    append(stub, dataset_id, ts, values)
    names = ["count", "min", "max", "mean", "sum", "first", "last"]
    cases = [
        # (start, end, step, origin): whole days from the epoch; hours from an odd origin; a cut range.
        (None, None, DAY_US, 0),
        (None, None, HOUR_US, 17 * 60_000_000 + 3),
        (int(ts[5_000]) + 1, int(ts[15_000]), 6 * HOUR_US + 7, 0),
        (T0 - 100 * DAY_US, T0 + 100 * DAY_US, 30 * DAY_US, T0),
    ]
    for start, end, step, origin in cases:
        request = pb.QueryPointsRequest(dataset_id=dataset_id, step=duration(step), aggregations=ALL)
        if start is not None and end is not None:
            request.start_time.CopyFrom(stamp(start))
            request.end_time.CopyFrom(stamp(end))
        if origin:
            request.origin.CopyFrom(stamp(origin))
        reply = stub.QueryPoints(request, timeout=30)
        assert reply.WhichOneof("result") == "buckets"
        want = expected_buckets(
            ts,
            values,
            start if start is not None else int(ts[0]),
            end if end is not None else int(ts[-1]) + 1,
            step,
            origin,
        )
        assert_buckets_equal(reply.buckets, want, names)


def test_buckets_before_1970_and_over_all_of_time(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = new_dataset(stub)
    ts, values = irregular_series(5, 5_000, -5 * DAY_US, 10 * DAY_US)  # around the epoch
    ends = np.array([MIN_TIMESTAMP_US, MIN_TIMESTAMP_US + 1, MAX_TIMESTAMP_US], dtype=np.int64)
    ts, values = np.concatenate([ends, ts]), np.concatenate([[7.0, -7.0, 9.5], values])
    append(stub, dataset_id, ts, values)
    ts, values = ts[np.argsort(ts)], values[np.argsort(ts)]
    names = ["count", "min", "max", "mean", "sum", "first", "last"]
    # Days around the epoch: negative bucket numbers before it.
    day = stub.QueryPoints(
        pb.QueryPointsRequest(
            dataset_id=dataset_id,
            start_time=stamp(-5 * DAY_US),
            end_time=stamp(5 * DAY_US),
            step=duration(DAY_US),
            aggregations=ALL,
        ),
        timeout=30,
    ).buckets
    assert_buckets_equal(day, expected_buckets(ts, values, -5 * DAY_US, 5 * DAY_US, DAY_US, 0), names)
    assert day.start_times_us[0] == -5 * DAY_US
    # All of time in 100-year steps from year 1 (36,525 days: the longest step).
    century = 36_525 * DAY_US
    whole = stub.QueryPoints(
        pb.QueryPointsRequest(
            dataset_id=dataset_id, step=duration(century), origin=stamp(MIN_TIMESTAMP_US), aggregations=ALL
        ),
        timeout=30,
    ).buckets
    want = expected_buckets(ts, values, MIN_TIMESTAMP_US, MAX_TIMESTAMP_US + 1, century, MIN_TIMESTAMP_US)
    assert_buckets_equal(whole, want, names)
    assert (whole.count[0], whole.first[0], whole.last[0]) == (2, 7.0, -7.0)
    assert whole.count[-1] == 1 and whole.last[-1] == 9.5


def test_only_the_requested_aggregations_are_filled(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = new_dataset(stub)
    ts = T0 + np.array([0, 1, HOUR_US, HOUR_US + 5], dtype=np.int64)
    append(stub, dataset_id, ts, np.array([1.0, 3.0, -2.0, 8.0]))
    reply = stub.QueryPoints(
        pb.QueryPointsRequest(
            dataset_id=dataset_id,
            step=duration(HOUR_US),
            aggregations=[ppb.AGGREGATION_LAST, ppb.AGGREGATION_MEAN],
        ),
        timeout=10,
    ).buckets
    assert list(reply.start_times_us) == [T0, T0 + HOUR_US]
    assert (list(reply.mean), list(reply.last)) == ([2.0, 3.0], [3.0, 8.0])
    assert not reply.count and not reply.min and not reply.max and not reply.sum and not reply.first


def test_empty_datasets_and_ranges(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = new_dataset(stub)
    raw = stub.QueryPoints(pb.QueryPointsRequest(dataset_id=dataset_id), timeout=10)
    assert raw.WhichOneof("result") == "points" and not raw.points.timestamps_us and not raw.next_page_token
    buckets = stub.QueryPoints(
        pb.QueryPointsRequest(dataset_id=dataset_id, step=duration(60_000_000), aggregations=ALL), timeout=10
    )
    assert buckets.WhichOneof("result") == "buckets" and not buckets.buckets.start_times_us
    append(stub, dataset_id, np.array([T0], dtype=np.int64), np.array([1.0]))
    later = stub.QueryPoints(
        pb.QueryPointsRequest(
            dataset_id=dataset_id,
            start_time=stamp(T0 + 1),
            step=duration(60_000_000),
            aggregations=[ppb.AGGREGATION_COUNT],
        ),
        timeout=10,
    )
    assert not later.buckets.start_times_us


def test_unknown_datasets_are_not_found(stub: pb_grpc.AnalyticsServiceStub) -> None:
    missing = str(uuid.uuid4())
    calls = [
        lambda: stub.QueryPoints(pb.QueryPointsRequest(dataset_id=missing), timeout=10),
        lambda: stub.QueryPoints(
            pb.QueryPointsRequest(dataset_id=missing, step=duration(60_000_000), aggregations=ALL), timeout=10
        ),
        lambda: stub.BatchQueryPoints(
            pb.BatchQueryPointsRequest(
                dataset_ids=[new_dataset(stub), missing], step=duration(60_000_000), aggregations=ALL
            ),
            timeout=10,
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_batch_overlays_share_one_grid(stub: pb_grpc.AnalyticsServiceStub) -> None:
    first, second, empty = new_dataset(stub), new_dataset(stub), new_dataset(stub)
    ts_a, values_a = irregular_series(3, 3_000, T0, 2 * DAY_US)
    ts_b, values_b = irregular_series(4, 3_000, T0 + DAY_US, 3 * DAY_US)
    append(stub, first, ts_a, values_a)
    append(stub, second, ts_b, values_b)
    step = 2 * HOUR_US
    reply = stub.BatchQueryPoints(
        pb.BatchQueryPointsRequest(dataset_ids=[second, empty, first], step=duration(step), aggregations=ALL),
        timeout=30,
    )
    assert [d.dataset_id for d in reply.datasets] == [second, empty, first]  # the order of the request
    start, end = int(ts_a[0]), int(ts_b[-1]) + 1  # the union of the datasets' ranges
    names = ["count", "min", "max", "mean", "sum", "first", "last"]
    assert_buckets_equal(reply.datasets[0].buckets, expected_buckets(ts_b, values_b, start, end, step, 0), names)
    assert not reply.datasets[1].buckets.start_times_us
    assert_buckets_equal(reply.datasets[2].buckets, expected_buckets(ts_a, values_a, start, end, step, 0), names)
    # Each dataset's buckets equal what QueryPoints answers over the same range.
    alone = stub.QueryPoints(
        pb.QueryPointsRequest(
            dataset_id=first, start_time=stamp(start), end_time=stamp(end), step=duration(step), aggregations=ALL
        ),
        timeout=30,
    )
    assert alone.buckets == reply.datasets[2].buckets


def test_viewers_read_points(stub: pb_grpc.AnalyticsServiceStub, mesh: RunningStack) -> None:
    dataset_id = new_dataset(stub)
    append(stub, dataset_id, np.array([T0], dtype=np.int64), np.array([2.5]))
    with mesh.channel(mesh.analytics, "viewer") as channel:
        viewer = pb_grpc.AnalyticsServiceStub(channel)
        assert list(viewer.QueryPoints(pb.QueryPointsRequest(dataset_id=dataset_id), timeout=10).points.values) == [2.5]


def test_rest_queries(stub: pb_grpc.AnalyticsServiceStub, rest: httpx.Client) -> None:
    dataset_id = new_dataset(stub)
    ts = T0 + np.arange(0, 6 * HOUR_US, 30 * 60_000_000, dtype=np.int64)  # every 30 minutes, 12 points
    values = np.arange(12, dtype=np.float64) * 1.5
    append(stub, dataset_id, ts, values)

    raw = rest.get(
        f"/v1/datasets/{dataset_id}/points",
        params={"startTime": "2024-05-01T13:00:00Z", "endTime": "2024-05-01T14:00:00Z"},
    )
    assert raw.status_code == 200, raw.text
    assert raw.json()["points"] == {
        "timestampsUs": [str(T0 + 2 * 30 * 60_000_000), str(T0 + 3 * 30 * 60_000_000)],
        "values": [3.0, 4.5],
    }
    page = rest.get(f"/v1/datasets/{dataset_id}/points", params={"pageSize": 5}).json()
    assert len(page["points"]["values"]) == 5 and page["nextPageToken"]
    after = rest.get(f"/v1/datasets/{dataset_id}/points", params={"pageToken": page["nextPageToken"]}).json()
    assert after["points"]["values"] == values[5:].tolist() and after["nextPageToken"] == ""

    # Query strings repeat a parameter for a list; a Duration is "<seconds>s".
    buckets = rest.get(
        f"/v1/datasets/{dataset_id}/points",
        params=[("step", "7200s"), ("aggregations", "AGGREGATION_MAX"), ("aggregations", "AGGREGATION_COUNT")],
    )
    assert buckets.status_code == 200, buckets.text
    body = buckets.json()["buckets"]
    assert body["startTimesUs"] == [str(T0 + k * 2 * HOUR_US) for k in range(3)]  # 12:00 starts a 2-hour bucket
    assert body["count"] == ["4", "4", "4"] and body["max"] == [4.5, 10.5, 16.5]
    assert body["mean"] == []

    both = rest.get(
        "/v1/datasets:batchQueryPoints",
        params=[("datasetIds", dataset_id), ("step", "21600s"), ("aggregations", "AGGREGATION_SUM")],
    )
    assert both.status_code == 200, both.text
    only = {**{name: [] for name in body}, "startTimesUs": [str(T0)], "sum": [float(values.sum())]}
    assert both.json()["datasets"] == [{"datasetId": dataset_id, "buckets": only}]


def test_the_largest_answers_come_through_envoy_whole(stub: pb_grpc.AnalyticsServiceStub, rest: httpx.Client) -> None:
    # A full page (100,000 points) and 10,000 buckets of every aggregation are several MB of JSON,
    # more than Envoy's default 1 MiB buffer for a transcoded answer.
    dataset_id = new_dataset(stub)
    n = 100_000
    ts = T0 + np.arange(n, dtype=np.int64) * 1_000_000
    values = np.random.default_rng(6).normal(0, 1e6, n)
    append(stub, dataset_id, ts, values)
    page = rest.get(f"/v1/datasets/{dataset_id}/points", params={"pageSize": n}, timeout=60)
    assert page.status_code == 200, page.text[:300]
    assert len(page.content) > 3 * 2**20
    assert page.json()["points"]["values"] == values.tolist() and page.json()["nextPageToken"] == ""
    names = [ppb.Aggregation.Name(a) for a in ALL]
    buckets = rest.get(
        f"/v1/datasets/{dataset_id}/points",
        params=[("step", "10s"), *(("aggregations", name) for name in names)],
        timeout=60,
    )
    assert buckets.status_code == 200, buckets.text[:300]
    body = buckets.json()["buckets"]
    assert len(body["startTimesUs"]) == len(body["mean"]) == len(body["last"]) == 10_000
    assert body["count"] == ["10"] * 10_000
