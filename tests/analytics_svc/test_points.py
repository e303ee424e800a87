"""Writing points: AppendPoints, IngestPoints (client streaming) and ImportCsv,
through gRPC and REST, with per-point rejections and last-write-wins."""

from __future__ import annotations

import base64
import datetime as dt
import uuid

import grpc
import httpx
import psycopg2
import pytest

from analytics_svc.points import chunks, ingest
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from tests.conftest import RunningStack
from tests.rich_status import error_info, field_violations, rest_error_info

T0 = 1_714_564_800_000_000  # 2024-05-01T12:00:00Z in microseconds


@pytest.fixture
def stub(analytics_channel: grpc.Channel) -> pb_grpc.AnalyticsServiceStub:
    return pb_grpc.AnalyticsServiceStub(analytics_channel)


def new_dataset(stub: pb_grpc.AnalyticsServiceStub) -> str:
    name = f"points-{uuid.uuid4().hex[:8]}"
    created = stub.CreateDataset(pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name)), timeout=10)
    return str(created.dataset.id)


def stored_points(mesh: RunningStack, dataset_id: str) -> dict[int, float]:
    """The points stored for a dataset, read from its chunk rows: epoch microseconds -> value."""
    with psycopg2.connect(mesh.database_url("analytics")) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT point_count, ts_data, value_data FROM point_chunk WHERE dataset_id = %s ORDER BY start_us",
            (dataset_id,),
        )
        points: dict[int, float] = {}
        for count, ts_data, value_data in cur.fetchall():
            ts, values = chunks.decode(bytes(ts_data), bytes(value_data), count)
            points.update(zip(ts.tolist(), values.tolist(), strict=True))
        return points


def micros(stamp: object) -> int:
    return int(stamp.ToMicroseconds())  # type: ignore[attr-defined]


def test_append_counts_and_time_range(stub: pb_grpc.AnalyticsServiceStub, mesh: RunningStack) -> None:
    dataset_id = new_dataset(stub)
    reply = stub.AppendPoints(
        pb.AppendPointsRequest(dataset_id=dataset_id, timestamps_us=[T0 + 2, T0, T0 + 1], values=[3.0, 1.0, 2.0]),
        timeout=10,
    )
    assert (reply.accepted_count, reply.rejected_count) == (3, 0)
    assert reply.dataset.point_count == 3
    assert micros(reply.dataset.first_point_time) == T0 and micros(reply.dataset.last_point_time) == T0 + 2

    later = stub.AppendPoints(
        pb.AppendPointsRequest(dataset_id=dataset_id, timestamps_us=[T0 - 10, T0 + 100], values=[0.0, 9.0]),
        timeout=10,
    ).dataset
    got = stub.GetDataset(pb.GetDatasetRequest(id=dataset_id), timeout=10).dataset
    assert got == later and got.point_count == 5
    assert micros(got.first_point_time) == T0 - 10 and micros(got.last_point_time) == T0 + 100
    assert stored_points(mesh, dataset_id) == {T0 - 10: 0.0, T0: 1.0, T0 + 1: 2.0, T0 + 2: 3.0, T0 + 100: 9.0}


def test_repeated_timestamp_last_write_wins(stub: pb_grpc.AnalyticsServiceStub, mesh: RunningStack) -> None:
    dataset_id = new_dataset(stub)
    stub.AppendPoints(pb.AppendPointsRequest(dataset_id=dataset_id, timestamps_us=[T0], values=[1.0]), timeout=10)
    reply = stub.AppendPoints(
        pb.AppendPointsRequest(dataset_id=dataset_id, timestamps_us=[T0, T0 + 1, T0 + 1], values=[2.0, 5.0, 6.0]),
        timeout=10,
    )
    assert reply.accepted_count == 3
    assert reply.dataset.point_count == 2
    assert stored_points(mesh, dataset_id) == {T0: 2.0, T0 + 1: 6.0}


def test_bad_points_are_rejected_one_by_one(stub: pb_grpc.AnalyticsServiceStub, mesh: RunningStack) -> None:
    dataset_id = new_dataset(stub)
    reply = stub.AppendPoints(
        pb.AppendPointsRequest(
            dataset_id=dataset_id,
            timestamps_us=[T0, T0 + 1, ingest.MIN_TIMESTAMP_US - 1, ingest.MAX_TIMESTAMP_US + 1, T0 + 2, T0 + 3],
            values=[1.0, float("nan"), 1.0, 1.0, float("inf"), 4.0],
        ),
        timeout=10,
    )
    assert (reply.accepted_count, reply.rejected_count) == (2, 4)
    reasons = {r.index: (r.timestamp_us, r.reason) for r in reply.rejected_points}
    assert sorted(reasons) == [1, 2, 3, 4]
    assert "finite" in reasons[1][1] and "finite" in reasons[4][1]
    outside = "timestamp is outside the range 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z"
    assert reasons[2] == (ingest.MIN_TIMESTAMP_US - 1, outside)
    assert reasons[3] == (ingest.MAX_TIMESTAMP_US + 1, outside)
    assert stored_points(mesh, dataset_id) == {T0: 1.0, T0 + 3: 4.0}


def test_append_validation_and_not_found(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = new_dataset(stub)
    with pytest.raises(grpc.RpcError) as caught:
        stub.AppendPoints(
            pb.AppendPointsRequest(dataset_id=str(uuid.uuid4()), timestamps_us=[T0], values=[1.0]), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        stub.AppendPoints(
            pb.AppendPointsRequest(dataset_id=dataset_id, timestamps_us=[T0, T0 + 1], values=[1.0]), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "same length" in caught.value.details()
    too_many = 100_001
    with pytest.raises(grpc.RpcError) as caught:
        stub.AppendPoints(
            pb.AppendPointsRequest(dataset_id=dataset_id, timestamps_us=range(too_many), values=[1.0] * too_many),
            timeout=30,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == {"timestamps_us", "values"}
    assert stub.GetDataset(pb.GetDatasetRequest(id=dataset_id), timeout=10).dataset.point_count == 0


def test_largest_batch_is_stored_whole(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = new_dataset(stub)
    n = 100_000
    reply = stub.AppendPoints(
        pb.AppendPointsRequest(
            dataset_id=dataset_id, timestamps_us=[T0 + i * 1000 for i in range(n)], values=[i / 7 for i in range(n)]
        ),
        timeout=60,
    )
    assert reply.accepted_count == n and reply.dataset.point_count == n
    assert micros(reply.dataset.last_point_time) == T0 + (n - 1) * 1000


def test_ingest_stream_of_batches(stub: pb_grpc.AnalyticsServiceStub, mesh: RunningStack) -> None:
    first, second = new_dataset(stub), new_dataset(stub)
    batches = [
        pb.IngestPointsRequest(dataset_id=first, timestamps_us=[T0, T0 + 1], values=[1.0, 2.0]),
        pb.IngestPointsRequest(dataset_id=second, timestamps_us=[T0, T0 + 5], values=[float("nan"), 3.0]),
        pb.IngestPointsRequest(dataset_id=first, timestamps_us=[T0 + 1, T0 + 2], values=[20.0, 30.0]),
    ]
    reply = stub.IngestPoints(iter(batches), timeout=30)
    assert (reply.accepted_count, reply.rejected_count, reply.batch_count) == (5, 1, 3)
    assert [(r.index, r.timestamp_us) for r in reply.rejected_points] == [(2, T0)]
    assert stored_points(mesh, first) == {T0: 1.0, T0 + 1: 20.0, T0 + 2: 30.0}
    assert stored_points(mesh, second) == {T0 + 5: 3.0}
    assert stub.GetDataset(pb.GetDatasetRequest(id=first), timeout=10).dataset.point_count == 3


def test_ingest_unknown_dataset_fails_the_stream_saying_what_is_stored(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = new_dataset(stub)
    batches = [
        pb.IngestPointsRequest(dataset_id=dataset_id, timestamps_us=[T0, T0 + 1], values=[1.0, float("inf")]),
        pb.IngestPointsRequest(dataset_id=dataset_id, timestamps_us=[T0 + 2], values=[2.0]),
        pb.IngestPointsRequest(dataset_id=str(uuid.uuid4()), timestamps_us=[T0 + 3], values=[3.0]),
        pb.IngestPointsRequest(dataset_id=dataset_id, timestamps_us=[T0 + 4], values=[4.0]),
    ]
    with pytest.raises(grpc.RpcError) as caught:
        stub.IngestPoints(iter(batches), timeout=30)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    # Batches before the failing one stay stored, as documented, and the error says so.
    assert stub.GetDataset(pb.GetDatasetRequest(id=dataset_id), timeout=10).dataset.point_count == 2
    assert "batch 2 failed" in caught.value.details() and "2 points stored" in caught.value.details()
    info = error_info(caught.value)
    assert info is not None and info.reason == "INGEST_STOPPED"
    assert dict(info.metadata) == {
        "storedBatches": "2", "storedPoints": "2", "rejectedPoints": "1", "failedBatch": "2"
    }


def test_ingest_invalid_first_batch_says_nothing_is_stored(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = new_dataset(stub)
    batches = [pb.IngestPointsRequest(dataset_id=dataset_id, timestamps_us=[T0, T0 + 1], values=[1.0])]
    with pytest.raises(grpc.RpcError) as caught:
        stub.IngestPoints(iter(batches), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value)  # the validation error keeps its field violations
    info = error_info(caught.value)
    assert info is not None and info.metadata["storedBatches"] == "0" and info.metadata["storedPoints"] == "0"
    assert "nothing of the stream was stored" in caught.value.details()


def test_rest_ingest_failing_part_way_says_what_is_stored(rest: httpx.Client) -> None:
    dataset_id = rest.post("/v1/datasets", json={"name": f"rest-ingest-{uuid.uuid4().hex[:8]}"}).json()["dataset"]["id"]
    batches = [
        {"datasetId": dataset_id, "timestampsUs": [str(T0), str(T0 + 1)], "values": [1.0, 2.0]},
        {"datasetId": dataset_id, "timestampsUs": [str(T0 + 2)], "values": [3.0]},
        {"datasetId": str(uuid.uuid4()), "timestampsUs": [str(T0 + 3)], "values": [4.0]},
    ]
    failed = rest.post("/v1/datasets:ingest", json=batches)
    assert failed.status_code == 404, failed.text
    body = failed.json()
    assert "batch 2 failed" in body["message"]
    info = rest_error_info(body)
    assert info is not None and info["reason"] == "INGEST_STOPPED"
    assert info["metadata"]["storedBatches"] == "2" and info["metadata"]["storedPoints"] == "3"
    assert rest.get(f"/v1/datasets/{dataset_id}").json()["dataset"]["pointCount"] == "3"


CSV_WITH_HEADER = b"""timestamp,value
2024-05-01T12:00:00Z,1.5
2024-05-01T14:00:01+02:00,2.5
2024-05-01T12:00:02,3.5
not-a-time,4.5
1714564803,5
1714564803.5,6
"""


def test_csv_with_header_iso_and_epoch(stub: pb_grpc.AnalyticsServiceStub, mesh: RunningStack) -> None:
    dataset_id = new_dataset(stub)
    reply = stub.ImportCsv(pb.ImportCsvRequest(dataset_id=dataset_id, csv=CSV_WITH_HEADER), timeout=10)
    assert (reply.accepted_count, reply.rejected_count) == (5, 1)
    assert [(r.line, "not-a-time" in r.reason) for r in reply.rejected_lines] == [(5, True)]
    assert reply.dataset.point_count == 5
    second = 1_000_000
    assert stored_points(mesh, dataset_id) == {
        T0: 1.5,
        T0 + second: 2.5,
        T0 + 2 * second: 3.5,
        T0 + 3 * second: 5.0,
        T0 + 3 * second + 500_000: 6.0,
    }


def test_csv_without_header_and_bad_values(stub: pb_grpc.AnalyticsServiceStub, mesh: RunningStack) -> None:
    dataset_id = new_dataset(stub)
    data = b"1714564800,1\n1714564801,nan\n\n1714564802,x\n1714564803,1,2\n-99999999999,3\n1714564804,4\n"
    reply = stub.ImportCsv(pb.ImportCsvRequest(dataset_id=dataset_id, csv=data), timeout=10)
    assert reply.accepted_count == 2
    assert [line.line for line in reply.rejected_lines] == [2, 4, 5, 6]
    assert stored_points(mesh, dataset_id) == {T0: 1.0, T0 + 4_000_000: 4.0}


def test_csv_errors(stub: pb_grpc.AnalyticsServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.ImportCsv(pb.ImportCsvRequest(dataset_id=str(uuid.uuid4()), csv=b"1,1\n"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    dataset_id = new_dataset(stub)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ImportCsv(pb.ImportCsvRequest(dataset_id=dataset_id, csv=b"\xff1,1\n"), timeout=10)
    assert "csv" in field_violations(caught.value)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ImportCsv(pb.ImportCsvRequest(dataset_id=dataset_id, csv=b"1,1\n" * (5 * 1024 * 1024 + 1)), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "csv" in field_violations(caught.value)


# Before 1970 and both ends of what a google.protobuf.Timestamp holds.
EDGES = [ingest.MIN_TIMESTAMP_US, -14_182_940_000_000, -1, ingest.MAX_TIMESTAMP_US]


def test_every_timestamp_a_protobuf_timestamp_holds_is_stored(
    stub: pb_grpc.AnalyticsServiceStub, mesh: RunningStack
) -> None:
    appended, ingested, imported = new_dataset(stub), new_dataset(stub), new_dataset(stub)
    reply = stub.AppendPoints(
        pb.AppendPointsRequest(dataset_id=appended, timestamps_us=EDGES, values=[1.0, 2.0, 3.0, 4.0]), timeout=10
    )
    assert (reply.accepted_count, reply.rejected_count) == (4, 0)
    assert micros(reply.dataset.first_point_time) == ingest.MIN_TIMESTAMP_US
    assert micros(reply.dataset.last_point_time) == ingest.MAX_TIMESTAMP_US
    assert stored_points(mesh, appended) == dict(zip(EDGES, [1.0, 2.0, 3.0, 4.0], strict=True))

    batches = [pb.IngestPointsRequest(dataset_id=ingested, timestamps_us=[t], values=[5.0]) for t in EDGES]
    assert stub.IngestPoints(iter(batches), timeout=30).accepted_count == 4
    assert stored_points(mesh, ingested) == dict.fromkeys(EDGES, 5.0)

    csv = b"0001-01-01T00:00:00Z,1\n1969-07-20T20:17:40Z,2\n-0.000001,3\n9999-12-31T23:59:59.999999Z,4\n"
    reply_csv = stub.ImportCsv(pb.ImportCsvRequest(dataset_id=imported, csv=csv), timeout=10)
    assert (reply_csv.accepted_count, reply_csv.rejected_count) == (4, 0)
    assert stored_points(mesh, imported) == dict(zip(EDGES, [1.0, 2.0, 3.0, 4.0], strict=True))
    got = stub.GetDataset(pb.GetDatasetRequest(id=imported), timeout=10).dataset
    assert got.first_point_time.ToDatetime(dt.UTC) == dt.datetime(1, 1, 1, tzinfo=dt.UTC)
    assert got.last_point_time.ToDatetime(dt.UTC) == dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)


def test_csv_exponents_are_rejected_per_line_within_the_call(
    stub: pb_grpc.AnalyticsServiceStub, mesh: RunningStack
) -> None:
    # Found by probing the stack: each "1e999990" line took ~9.5 s of CPU with
    # every other call of the process waiting, and "1e999999" answered INTERNAL.
    dataset_id = new_dataset(stub)
    data = b"1e999990,1\n" * 5_000 + b"1e999999,1\n" * 5_000 + b"1714564800,1\n"
    reply = stub.ImportCsv(pb.ImportCsvRequest(dataset_id=dataset_id, csv=data), timeout=60)
    assert (reply.accepted_count, reply.rejected_count) == (1, 10_000)
    assert {r.reason for r in reply.rejected_lines} == {
        "timestamp is outside the range 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z"
    }
    assert stored_points(mesh, dataset_id) == {T0: 1.0}


def test_csv_lines_that_store_nothing_are_all_reported(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = new_dataset(stub)
    nul = stub.ImportCsv(pb.ImportCsvRequest(dataset_id=dataset_id, csv=b"1714564800,1\x00\n"), timeout=10)
    assert (nul.accepted_count, nul.rejected_count, nul.header) == (0, 1, "")
    quote = stub.ImportCsv(
        pb.ImportCsvRequest(dataset_id=dataset_id, csv=b'"1714564800,1\n1714564801,2\n0x10,0x10\n'), timeout=10
    )
    assert (quote.accepted_count, [r.line for r in quote.rejected_lines]) == (1, [1, 3])
    header = stub.ImportCsv(
        pb.ImportCsvRequest(dataset_id=dataset_id, csv="time,value\n1714564802,3\n".encode("utf-16")), timeout=10
    )
    assert (header.accepted_count, header.rejected_count, header.header) == (1, 0, "time,value")


def test_viewer_cannot_write_points(stub: pb_grpc.AnalyticsServiceStub, mesh: RunningStack) -> None:
    dataset_id = new_dataset(stub)
    with mesh.channel(mesh.analytics, "viewer") as channel:
        viewer = pb_grpc.AnalyticsServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            viewer.AppendPoints(
                pb.AppendPointsRequest(dataset_id=dataset_id, timestamps_us=[T0], values=[1.0]), timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_rest_append_ingest_and_csv(rest: httpx.Client, mesh: RunningStack) -> None:
    dataset_id = rest.post("/v1/datasets", json={"name": f"rest-points-{uuid.uuid4().hex[:8]}"}).json()["dataset"]["id"]
    appended = rest.post(f"/v1/datasets/{dataset_id}/points:append", json={"timestampsUs": [str(T0)], "values": [1.0]})
    assert appended.status_code == 200, appended.text
    assert appended.json()["acceptedCount"] == "1"
    # A client-streaming RPC over REST: the body is a JSON array of batches.
    batches = [
        {"datasetId": dataset_id, "timestampsUs": [str(T0 + 1)], "values": [2.0]},
        {"datasetId": dataset_id, "timestampsUs": [str(T0 + 1)], "values": [2.5]},
    ]
    ingested = rest.post("/v1/datasets:ingest", json=batches)
    assert ingested.status_code == 200, ingested.text
    assert (ingested.json()["acceptedCount"], ingested.json()["batchCount"]) == ("2", "2")
    csv = base64.b64encode(b"timestamp,value\n2024-05-01T12:00:02Z,3\n2024-05-01T12:00:03Z,oops\n").decode()
    imported = rest.post(f"/v1/datasets/{dataset_id}/points:importCsv", json={"csv": csv})
    assert imported.status_code == 200, imported.text
    body = imported.json()
    assert body["dataset"]["pointCount"] == "3"
    assert body["rejectedLines"][0]["line"] == "3"
    last = dt.datetime.fromisoformat(body["dataset"]["lastPointTime"])
    assert last == dt.datetime(2024, 5, 1, 12, 0, 2, tzinfo=dt.UTC)
    assert len(stored_points(mesh, dataset_id)) == 3
    edges = rest.post(
        f"/v1/datasets/{dataset_id}/points:append",
        json={"timestampsUs": [str(t) for t in EDGES], "values": [1.0, 2.0, 3.0, 4.0]},
    )
    assert edges.status_code == 200, edges.text
    assert edges.json()["dataset"]["firstPointTime"] == "0001-01-01T00:00:00Z"
    assert edges.json()["dataset"]["lastPointTime"] == "9999-12-31T23:59:59.999999Z"
    outside = rest.post(
        f"/v1/datasets/{dataset_id}/points:append",
        json={"timestampsUs": [str(ingest.MIN_TIMESTAMP_US - 1)], "values": [1.0]},
    )
    assert outside.status_code == 200 and outside.json()["rejectedPoints"][0]["reason"].endswith(
        "0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z"
    )
    missing = rest.post(f"/v1/datasets/{uuid.uuid4()}/points:append", json={"timestampsUs": ["1"], "values": [1.0]})
    assert missing.status_code == 404
