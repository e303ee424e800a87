"""Exporting points (a CSV stream over gRPC, a CSV download through Envoy),
uploading a raw CSV body through Envoy, deleting a time range, and a
dataset's retention setting."""

from __future__ import annotations

import uuid

import grpc
import httpx
import numpy as np
import pytest
from google.api import httpbody_pb2
from google.protobuf import duration_pb2, field_mask_pb2

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from mesh_runtime.wire import MAX_TIMESTAMP_US, MIN_TIMESTAMP_US
from tests.analytics_svc.test_point_queries import DAY_US, T0, append, new_dataset, stamp
from tests.conftest import RunningStack


@pytest.fixture
def stub(analytics_channel: grpc.Channel) -> pb_grpc.AnalyticsServiceStub:
    return pb_grpc.AnalyticsServiceStub(analytics_channel)


def all_points(stub: pb_grpc.AnalyticsServiceStub, dataset_id: str) -> tuple[list[int], list[float]]:
    reply = stub.QueryPoints(pb.QueryPointsRequest(dataset_id=dataset_id, page_size=100_000), timeout=30)
    assert reply.next_page_token == ""
    return list(reply.points.timestamps_us), list(reply.points.values)


def awkward_series() -> tuple[np.ndarray, np.ndarray]:
    """Points at both ends of the timestamp range, before 1970, and values whose text is tricky."""
    ts = np.array([MIN_TIMESTAMP_US, -1, 0, 1, T0, T0 + 1, MAX_TIMESTAMP_US - 1, MAX_TIMESTAMP_US], dtype=np.int64)
    values = np.array([0.1 + 0.2, -0.0, 1e300, -5e-324, 123456789.123456789, 2.0**53 + 1, 1 / 3, -7.25])
    return ts, values


def test_export_streams_csv_that_imports_back_unchanged(stub: pb_grpc.AnalyticsServiceStub) -> None:
    source = new_dataset(stub)
    ts, values = awkward_series()
    append(stub, source, ts, values)
    messages = list(stub.ExportPoints(pb.ExportPointsRequest(dataset_id=source), timeout=30))
    assert {m.content_type for m in messages} == {"text/csv; charset=utf-8"}
    text = b"".join(m.data for m in messages).decode()
    lines = text.splitlines()
    assert lines[0] == "timestamp,value"
    assert lines[1] == "0001-01-01T00:00:00.000000Z,0.30000000000000004"
    assert lines[2] == "1969-12-31T23:59:59.999999Z,-0.0"
    assert lines[-1] == "9999-12-31T23:59:59.999999Z,-7.25"
    assert len(lines) == 1 + len(ts)

    copy = new_dataset(stub)
    imported = stub.UploadCsv(
        pb.UploadCsvRequest(dataset_id=copy, csv=httpbody_pb2.HttpBody(content_type="text/csv", data=text.encode())),
        timeout=30,
    )
    assert (imported.accepted_count, imported.rejected_count, imported.header) == (len(ts), 0, "timestamp,value")
    assert all_points(stub, copy) == all_points(stub, source) == (ts.tolist(), values.tolist())


def test_export_of_a_range_in_many_messages(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = new_dataset(stub)
    n = 45_000
    ts = T0 + np.arange(n, dtype=np.int64) * 1_000_000
    append(stub, dataset_id, ts, np.arange(n, dtype=np.float64) / 8)
    request = pb.ExportPointsRequest(dataset_id=dataset_id, start_time=stamp(int(ts[10])), end_time=stamp(int(ts[-10])))
    messages = list(stub.ExportPoints(request, timeout=60))
    assert len(messages) >= 3  # the header, then the points in pieces
    rows = b"".join(m.data for m in messages).decode().splitlines()[1:]
    assert len(rows) == n - 20
    assert rows[0] == "2024-05-01T12:00:10.000000Z,1.25"
    assert [float(row.split(",")[1]) for row in rows] == (np.arange(10, n - 10) / 8).tolist()

    empty = list(stub.ExportPoints(pb.ExportPointsRequest(dataset_id=new_dataset(stub)), timeout=10))
    assert b"".join(m.data for m in empty) == b"timestamp,value\n"
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.ExportPoints(pb.ExportPointsRequest(dataset_id=str(uuid.uuid4())), timeout=10))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_an_export_is_one_snapshot_whatever_is_written_during_it(stub: pb_grpc.AnalyticsServiceStub) -> None:
    """Points deleted and rewritten while an export streams are in none of its pages: the
    export is the dataset as it was when it began (each page used to see the latest write)."""
    dataset_id = new_dataset(stub)
    n = 400_000  # 20 messages of about 1 MB: far more than the stream's flow-control window holds
    ts = T0 + np.arange(n, dtype=np.int64) * 1_000_000
    before = np.arange(n, dtype=np.float64) / 4
    append(stub, dataset_id, ts, before)
    stream = stub.ExportPoints(pb.ExportPointsRequest(dataset_id=dataset_id), timeout=120)
    received = [next(stream), next(stream)]  # the header and the first page
    # Mid-export: every point deleted, then written again with other values, and one more.
    deleted = stub.DeletePoints(
        pb.DeletePointsRequest(dataset_id=dataset_id, start_time=stamp(int(ts[0])), end_time=stamp(int(ts[-1]) + 1)),
        timeout=60,
    )
    assert deleted.deleted_count == n
    append(stub, dataset_id, np.append(ts, ts[-1] + 1_000_000), -np.arange(n + 1, dtype=np.float64))
    received += list(stream)
    rows = b"".join(m.data for m in received).decode().splitlines()
    assert rows[0] == "timestamp,value" and len(rows) == n + 1
    assert [float(row.split(",")[1]) for row in rows[1:]] == before.tolist()
    # The next export sees the new points.
    after = b"".join(m.data for m in stub.ExportPoints(pb.ExportPointsRequest(dataset_id=dataset_id), timeout=120))
    assert after.decode().splitlines()[-1] == "2024-05-06T03:06:40.000000Z,-400000.0"


def test_csv_download_and_upload_through_envoy(stub: pb_grpc.AnalyticsServiceStub, rest: httpx.Client) -> None:
    source = new_dataset(stub)
    ts, values = awkward_series()
    append(stub, source, ts, values)
    name = stub.GetDataset(pb.GetDatasetRequest(id=source), timeout=10).dataset.name

    download = rest.get(f"/v1/datasets/{source}/points:export")
    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == "text/csv; charset=utf-8"
    assert download.headers["content-disposition"] == f'attachment; filename="{name}.csv"'
    assert download.text.startswith("timestamp,value\n0001-01-01T00:00:00.000000Z,")
    window = rest.get(
        f"/v1/datasets/{source}/points:export",
        params={"startTime": "1969-12-31T23:59:59.999999Z", "endTime": "1970-01-01T00:00:00.000001Z"},
    )
    assert window.text == "timestamp,value\n1969-12-31T23:59:59.999999Z,-0.0\n1970-01-01T00:00:00.000000Z,1e+300\n"
    missing = rest.get(f"/v1/datasets/{uuid.uuid4()}/points:export")
    assert (missing.status_code, missing.json()["code"]) == (404, 5)

    # The downloaded file goes back up as the raw request body.
    copy = new_dataset(stub)
    uploaded = rest.post(
        f"/v1/datasets/{copy}/points:uploadCsv", content=download.content, headers={"content-type": "text/csv"}
    )
    assert uploaded.status_code == 200, uploaded.text
    body = uploaded.json()
    assert (body["acceptedCount"], body["rejectedCount"], body["header"]) == (str(len(ts)), "0", "timestamp,value")
    assert body["dataset"]["firstPointTime"] == "0001-01-01T00:00:00Z"
    assert all_points(stub, copy) == (ts.tolist(), values.tolist())

    # Any content type; bad lines come back by number, the good ones are stored.
    other = new_dataset(stub)
    mixed = rest.post(
        f"/v1/datasets/{other}/points:uploadCsv",
        content=b"1714564800,1\nnot a time,2\n1714564801,3\n",
        headers={"content-type": "application/octet-stream"},
    )
    assert mixed.status_code == 200, mixed.text
    assert mixed.json()["acceptedCount"] == "2" and mixed.json()["rejectedLines"][0]["line"] == "2"
    # The JSON form with base64 keeps working beside it.
    assert rest.post(f"/v1/datasets/{other}/points:importCsv", json={"csv": "MTcxNDU2NDgwMiw0Cg=="}).status_code == 200
    assert all_points(stub, other)[1] == [1.0, 3.0, 4.0]


def test_delete_ranges(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = new_dataset(stub)
    ts = np.concatenate([np.array([MIN_TIMESTAMP_US, -DAY_US]), T0 + np.arange(100, dtype=np.int64) * 1_000])
    values = np.arange(ts.size, dtype=np.float64)
    append(stub, dataset_id, ts, values)

    # A cut in the middle: [T0 + 10 ms, T0 + 20 ms) holds 10 points.
    reply = stub.DeletePoints(
        pb.DeletePointsRequest(dataset_id=dataset_id, start_time=stamp(T0 + 10_000), end_time=stamp(T0 + 20_000)),
        timeout=10,
    )
    assert reply.deleted_count == 10 and reply.dataset.point_count == ts.size - 10
    keep = (ts < T0 + 10_000) | (ts >= T0 + 20_000)
    assert all_points(stub, dataset_id) == (ts[keep].tolist(), values[keep].tolist())

    # The first points: the dataset's first point time moves on.
    reply = stub.DeletePoints(
        pb.DeletePointsRequest(dataset_id=dataset_id, start_time=stamp(MIN_TIMESTAMP_US), end_time=stamp(0)),
        timeout=10,
    )
    assert reply.deleted_count == 2
    assert reply.dataset.first_point_time.ToMicroseconds() == T0
    # An empty range deletes nothing and changes nothing.
    again = stub.DeletePoints(
        pb.DeletePointsRequest(dataset_id=dataset_id, start_time=stamp(0), end_time=stamp(T0)), timeout=10
    )
    assert again.deleted_count == 0 and again.dataset == reply.dataset
    # Everything left: the dataset is empty, with no time range.
    rest = stub.DeletePoints(
        pb.DeletePointsRequest(dataset_id=dataset_id, start_time=stamp(T0), end_time=stamp(MAX_TIMESTAMP_US)),
        timeout=10,
    )
    assert rest.deleted_count == 90 and rest.dataset.point_count == 0
    assert not rest.dataset.HasField("first_point_time") and not rest.dataset.HasField("last_point_time")
    assert all_points(stub, dataset_id) == ([], [])

    with pytest.raises(grpc.RpcError) as caught:
        stub.DeletePoints(
            pb.DeletePointsRequest(dataset_id=str(uuid.uuid4()), start_time=stamp(0), end_time=stamp(1)), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_delete_through_rest_and_only_for_analysts(
    stub: pb_grpc.AnalyticsServiceStub, rest: httpx.Client, mesh: RunningStack
) -> None:
    dataset_id = new_dataset(stub)
    append(stub, dataset_id, T0 + np.arange(4, dtype=np.int64) * 1_000_000, np.ones(4))
    window = {"startTime": "2024-05-01T12:00:01Z", "endTime": "2024-05-01T12:00:03Z"}
    with httpx.Client(base_url=mesh.rest, headers={"authorization": f"Bearer {mesh.tokens['viewer']}"}) as viewer:
        assert viewer.delete(f"/v1/datasets/{dataset_id}/points", params=window).status_code == 403
        assert viewer.get(f"/v1/datasets/{dataset_id}/points:export").status_code == 200
    deleted = rest.delete(f"/v1/datasets/{dataset_id}/points", params=window)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deletedCount"] == "2" and deleted.json()["dataset"]["pointCount"] == "2"
    assert all_points(stub, dataset_id)[0] == [T0, T0 + 3_000_000]


def test_retention_is_set_shown_changed_and_cleared(stub: pb_grpc.AnalyticsServiceStub, rest: httpx.Client) -> None:
    week = duration_pb2.Duration(seconds=7 * 86_400)
    created = stub.CreateDataset(
        pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"ret-{uuid.uuid4().hex[:8]}", retention=week)),
        timeout=10,
    ).dataset
    assert created.retention == week
    assert stub.GetDataset(pb.GetDatasetRequest(id=created.id), timeout=10).dataset.retention == week
    assert rest.get(f"/v1/datasets/{created.id}").json()["dataset"]["retention"] == "604800s"

    # Other fields change without touching it; the mask names it to change it.
    described = stub.UpdateDataset(
        pb.UpdateDatasetRequest(
            dataset=dataset_pb2.Dataset(id=created.id, description="kept a week"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        ),
        timeout=10,
    ).dataset
    assert described.retention == week
    changed = rest.patch(
        f"/v1/datasets/{created.id}", params={"updateMask": "retention"}, json={"retention": "90061.5s"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["dataset"]["retention"] == "90061.500s"
    cleared = stub.UpdateDataset(
        pb.UpdateDatasetRequest(
            dataset=dataset_pb2.Dataset(id=created.id), update_mask=field_mask_pb2.FieldMask(paths=["retention"])
        ),
        timeout=10,
    ).dataset
    assert not cleared.HasField("retention")
    assert "retention" not in rest.get(f"/v1/datasets/{created.id}").json()["dataset"]
