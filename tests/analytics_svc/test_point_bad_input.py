"""Bad input to the point RPCs: INVALID_ARGUMENT with field violations over
gRPC, HTTP 400 with a JSON google.rpc.Status through Envoy; a refused write
leaves the dataset exactly as it was."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from google.api import httpbody_pb2
from google.protobuf import duration_pb2, timestamp_pb2

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from mesh.analytics.v1 import points_pb2 as ppb
from tests.analytics_svc.test_point_queries import DAY_US, T0, append, duration, new_dataset, stamp
from tests.rich_status import field_violations, rest_field_violations

CSV_LIMIT = 20 * 1024 * 1024
MISSING = "00000000-0000-4000-8000-000000000000"
MEAN = [ppb.AGGREGATION_MEAN]
MINUTE = duration(60_000_000)


@pytest.fixture
def stub(analytics_channel: grpc.Channel) -> pb_grpc.AnalyticsServiceStub:
    return pb_grpc.AnalyticsServiceStub(analytics_channel)


def violations_of(call: Callable[[], Any]) -> dict[str, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    return field_violations(caught.value)


def query(**fields: Any) -> pb.QueryPointsRequest:
    return pb.QueryPointsRequest(dataset_id=fields.pop("dataset_id", MISSING), **fields)


# Each request is refused before the (missing) dataset is looked up: the
# violation, not NOT_FOUND, comes back.
QUERY_CASES: dict[str, tuple[pb.QueryPointsRequest, str]] = {
    "end before start": (query(start_time=stamp(T0 + 1), end_time=stamp(T0)), "end_time"),
    "an empty range": (query(start_time=stamp(T0), end_time=stamp(T0)), "end_time"),
    "over 10,000 buckets": (
        query(start_time=stamp(T0), end_time=stamp(T0 + DAY_US), step=duration(1_000_000), aggregations=MEAN),
        "step",
    ),
    "an unknown aggregation": (query(step=MINUTE, aggregations=[99]), "aggregations[0]"),
    "the unspecified aggregation": (query(step=MINUTE, aggregations=[0]), "aggregations[0]"),
    "an aggregation twice": (query(step=MINUTE, aggregations=[1, 4, 1]), "aggregations"),
    "a step without aggregations": (query(step=MINUTE), "aggregations"),
    "aggregations without a step": (query(aggregations=MEAN), "aggregations"),
    "an oversized page": (query(page_size=100_001), "page_size"),
    "a negative page size": (query(page_size=-1), "page_size"),
    "a page size for buckets": (query(step=MINUTE, aggregations=MEAN, page_size=10), "page_size"),
    "a made-up page token": (query(page_token="bm90LWEtdG9rZW4"), "page_token"),
    "a zero step": (query(step=duration_pb2.Duration(), aggregations=MEAN), "step"),
    "a negative step": (query(step=duration_pb2.Duration(seconds=-60), aggregations=MEAN), "step"),
    "a step below a microsecond": (query(step=duration_pb2.Duration(nanos=1500), aggregations=MEAN), "step"),
    "a step over 100 years": (query(step=duration_pb2.Duration(seconds=3_155_760_001), aggregations=MEAN), "step"),
    "an origin without a step": (query(origin=stamp(T0)), "origin"),
    "a start before year 1": (query(start_time=timestamp_pb2.Timestamp(seconds=-62_135_596_801)), "start_time"),
    "an end after year 9999": (query(end_time=timestamp_pb2.Timestamp(seconds=253_402_300_800)), "end_time"),
    "negative nanos": (query(start_time=timestamp_pb2.Timestamp(seconds=1, nanos=-1)), "start_time"),
    "a dataset id that is no uuid": (query(dataset_id="cpu"), "dataset_id"),
}


@pytest.mark.parametrize("name", list(QUERY_CASES))
def test_bad_queries_are_refused_with_the_field(name: str, stub: pb_grpc.AnalyticsServiceStub) -> None:
    request, field = QUERY_CASES[name]
    found = violations_of(lambda: stub.QueryPoints(request, timeout=10))
    assert field in found, found


def test_buckets_are_counted_on_the_data_when_the_range_is_open(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = new_dataset(stub)
    append(stub, dataset_id, np.array([T0, T0 + 2 * DAY_US], dtype=np.int64), np.array([1.0, 2.0]))
    # 2 days of 10-second buckets: 17,281 of them.
    found = violations_of(
        lambda: stub.QueryPoints(query(dataset_id=dataset_id, step=duration(10_000_000), aggregations=MEAN), timeout=10)
    )
    assert "17,281 buckets" in found["step"]
    # One minute per bucket fits (2,881 buckets) ...
    fine = stub.QueryPoints(query(dataset_id=dataset_id, step=MINUTE, aggregations=MEAN), timeout=10)
    assert len(fine.buckets.start_times_us) == 2
    # ... but not for four datasets at once.
    others = [new_dataset(stub) for _ in range(3)]
    found = violations_of(
        lambda: stub.BatchQueryPoints(
            pb.BatchQueryPointsRequest(dataset_ids=[dataset_id, *others], step=MINUTE, aggregations=MEAN),
            timeout=10,
        )
    )
    assert "(4 datasets)" in found["step"]


BATCH_CASES: dict[str, tuple[pb.BatchQueryPointsRequest, str]] = {
    "no datasets": (pb.BatchQueryPointsRequest(step=MINUTE, aggregations=MEAN), "dataset_ids"),
    "a dataset twice": (
        pb.BatchQueryPointsRequest(dataset_ids=[MISSING, MISSING], step=MINUTE, aggregations=MEAN),
        "dataset_ids",
    ),
    "eleven datasets": (
        pb.BatchQueryPointsRequest(dataset_ids=[str(uuid.uuid4()) for _ in range(11)], step=MINUTE, aggregations=MEAN),
        "dataset_ids",
    ),
    "no step": (pb.BatchQueryPointsRequest(dataset_ids=[MISSING], aggregations=MEAN), "step"),
    "no aggregation": (pb.BatchQueryPointsRequest(dataset_ids=[MISSING], step=MINUTE), "aggregations"),
    "end before start": (
        pb.BatchQueryPointsRequest(
            dataset_ids=[MISSING], step=MINUTE, aggregations=MEAN, start_time=stamp(T0), end_time=stamp(T0 - 1)
        ),
        "end_time",
    ),
}


@pytest.mark.parametrize("name", list(BATCH_CASES))
def test_bad_batch_queries_are_refused_with_the_field(name: str, stub: pb_grpc.AnalyticsServiceStub) -> None:
    request, field = BATCH_CASES[name]
    assert field in violations_of(lambda: stub.BatchQueryPoints(request, timeout=10))


def test_bad_exports_and_deletes_change_nothing(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = new_dataset(stub)
    append(stub, dataset_id, T0 + np.arange(5, dtype=np.int64), np.arange(5, dtype=np.float64))
    before = stub.GetDataset(pb.GetDatasetRequest(id=dataset_id), timeout=10).dataset
    export = pb.ExportPointsRequest(dataset_id=dataset_id, start_time=stamp(T0 + 3), end_time=stamp(T0))
    assert "end_time" in violations_of(lambda: list(stub.ExportPoints(export, timeout=10)))
    for request, field in [
        (pb.DeletePointsRequest(dataset_id=dataset_id, start_time=stamp(T0)), "end_time"),
        (pb.DeletePointsRequest(dataset_id=dataset_id, end_time=stamp(T0 + 9)), "start_time"),
        (pb.DeletePointsRequest(dataset_id=dataset_id, start_time=stamp(T0 + 9), end_time=stamp(T0)), "end_time"),
        (
            pb.DeletePointsRequest(
                dataset_id=dataset_id,
                start_time=timestamp_pb2.Timestamp(seconds=-70_000_000_000),
                end_time=stamp(T0 + 9),
            ),
            "start_time",
        ),
    ]:
        assert field in violations_of(lambda r=request: stub.DeletePoints(r, timeout=10))  # type: ignore[misc]
    assert stub.GetDataset(pb.GetDatasetRequest(id=dataset_id), timeout=10).dataset == before
    assert len(stub.QueryPoints(pb.QueryPointsRequest(dataset_id=dataset_id), timeout=10).points.values) == 5


def test_a_csv_over_the_limit_is_refused_and_stores_nothing(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = new_dataset(stub)
    append(stub, dataset_id, np.array([T0], dtype=np.int64), np.array([1.0]))
    before = stub.GetDataset(pb.GetDatasetRequest(id=dataset_id), timeout=10).dataset
    line = b"1714564801,2\n"
    oversized = line * (CSV_LIMIT // len(line) + 1)
    for data in (oversized, b""):
        request = pb.UploadCsvRequest(
            dataset_id=dataset_id, csv=httpbody_pb2.HttpBody(content_type="text/csv", data=data)
        )
        assert "csv" in violations_of(lambda r=request: stub.UploadCsv(r, timeout=60))  # type: ignore[misc]
    assert "csv" in violations_of(lambda: stub.UploadCsv(pb.UploadCsvRequest(dataset_id=dataset_id), timeout=10))
    assert stub.GetDataset(pb.GetDatasetRequest(id=dataset_id), timeout=10).dataset == before


@pytest.mark.parametrize(
    ("retention", "ok"),
    [
        (duration_pb2.Duration(seconds=59), False),
        (duration_pb2.Duration(seconds=-3600), False),
        (duration_pb2.Duration(seconds=3_155_760_001), False),
        (duration_pb2.Duration(seconds=60), True),
        (duration_pb2.Duration(seconds=3_155_760_000), True),
    ],
)
def test_retention_is_between_a_minute_and_a_century(
    retention: duration_pb2.Duration, ok: bool, stub: pb_grpc.AnalyticsServiceStub
) -> None:
    dataset = dataset_pb2.Dataset(name=f"ret-{uuid.uuid4().hex[:8]}", retention=retention)
    if ok:
        created = stub.CreateDataset(pb.CreateDatasetRequest(dataset=dataset), timeout=10).dataset
        assert created.retention == retention
    else:
        assert "dataset.retention" in violations_of(
            lambda: stub.CreateDataset(pb.CreateDatasetRequest(dataset=dataset), timeout=10)
        )


def rest_violations(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == 3 and body["message"]
    return rest_field_violations(body)


def test_rest_bad_input_is_400_with_field_violations(stub: pb_grpc.AnalyticsServiceStub, rest: httpx.Client) -> None:
    dataset_id = new_dataset(stub)
    append(stub, dataset_id, np.array([T0], dtype=np.int64), np.array([1.0]))
    points = f"/v1/datasets/{dataset_id}/points"
    day = {"startTime": "2024-05-01T00:00:00Z", "endTime": "2024-05-02T00:00:00Z"}
    cases: list[tuple[httpx.Response, str]] = [
        (rest.get(points, params={"startTime": "2024-05-02T00:00:00Z", "endTime": "2024-05-01T00:00:00Z"}), "end_time"),
        (rest.get(points, params={**day, "step": "1s", "aggregations": "AGGREGATION_MEAN"}), "step"),
        (rest.get(points, params={"pageSize": 100_001}), "page_size"),
        (rest.get(points, params={"pageToken": "garbage"}), "page_token"),
        (rest.get(points, params={"step": "60s"}), "aggregations"),
        (
            rest.get(
                f"{points}:export", params={"startTime": "2024-05-02T00:00:00Z", "endTime": "2024-05-01T00:00:00Z"}
            ),
            "end_time",
        ),
        (rest.delete(points, params={"startTime": "2024-05-01T00:00:00Z"}), "end_time"),
        (
            rest.request(
                "PATCH", f"/v1/datasets/{dataset_id}", params={"updateMask": "retention"}, json={"retention": "30s"}
            ),
            "dataset.retention",
        ),
    ]
    for response, field in cases:
        assert field in rest_violations(response), (field, response.text)
    # What Envoy itself cannot read is a 400 google.rpc.Status too, naming the field.
    for params, field in [
        ({"step": "60s", "aggregations": "AGGREGATION_MEDIAN"}, "aggregations"),
        ({"startTime": "0000-12-31T23:59:59Z"}, "start_time"),
        ({"endTime": "10000-01-01T00:00:00Z"}, "end_time"),
    ]:
        response = rest.get(points, params=params)
        rest_violations(response)
        assert field in response.json()["message"]
    assert stub.GetDataset(pb.GetDatasetRequest(id=dataset_id), timeout=10).dataset.point_count == 1


def test_rest_csv_upload_over_the_limit_is_400_and_stores_nothing(
    stub: pb_grpc.AnalyticsServiceStub, rest: httpx.Client
) -> None:
    dataset_id = new_dataset(stub)
    line = b"2024-05-01T12:00:00Z,1\n"
    oversized = line * (CSV_LIMIT // len(line) + 1)
    response = rest.post(
        f"/v1/datasets/{dataset_id}/points:uploadCsv",
        content=oversized,
        headers={"content-type": "text/csv"},
        timeout=120,
    )
    assert "csv" in rest_violations(response)
    assert "20 MiB" in rest_field_violations(response.json())["csv"]
    empty = rest.post(f"/v1/datasets/{dataset_id}/points:uploadCsv", content=b"", headers={"content-type": "text/csv"})
    assert "csv" in rest_violations(empty)
    assert stub.GetDataset(pb.GetDatasetRequest(id=dataset_id), timeout=10).dataset.point_count == 0
