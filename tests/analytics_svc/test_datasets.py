"""Datasets through gRPC (straight and via Envoy) and through REST."""

from __future__ import annotations

import uuid

import grpc
import httpx
import psycopg2
import pytest
from google.protobuf import field_mask_pb2

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from tests.conftest import RunningStack
from tests.rich_status import field_violations, rest_field_violations


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def stub(analytics_channel: grpc.Channel) -> pb_grpc.AnalyticsServiceStub:
    return pb_grpc.AnalyticsServiceStub(analytics_channel)


def test_create_get_and_list_over_grpc(stub: pb_grpc.AnalyticsServiceStub) -> None:
    name = unique("cpu.load")
    created = stub.CreateDataset(
        pb.CreateDatasetRequest(
            dataset=dataset_pb2.Dataset(name=name, description="CPU load", unit="%", labels={"host": "a1"})
        ),
        timeout=10,
    ).dataset
    assert uuid.UUID(created.id)
    assert created.name == name and created.unit == "%" and dict(created.labels) == {"host": "a1"}
    assert created.point_count == 0 and created.create_time.seconds > 0
    assert not created.HasField("first_point_time")

    got = stub.GetDataset(pb.GetDatasetRequest(id=created.id), timeout=10).dataset
    assert got == created

    listed = stub.ListDatasets(pb.ListDatasetsRequest(page_size=1000), timeout=10)
    assert name in [d.name for d in listed.datasets]
    assert listed.total_size >= 1


def test_duplicate_name_is_already_exists(stub: pb_grpc.AnalyticsServiceStub) -> None:
    name = unique("dup")
    stub.CreateDataset(pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name)), timeout=10)
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateDataset(pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name)), timeout=10)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert name in caught.value.details()


def test_unknown_dataset_is_not_found(stub: pb_grpc.AnalyticsServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetDataset(pb.GetDatasetRequest(id=str(uuid.uuid4())), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_invalid_fields_get_field_violations(stub: pb_grpc.AnalyticsServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateDataset(
            pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name="-bad name!", unit="u" * 40)),
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(caught.value)
    assert set(violations) == {"dataset.name", "dataset.unit"}
    assert "32" in violations["dataset.unit"]

    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateDataset(pb.CreateDatasetRequest(), timeout=10)
    assert field_violations(caught.value) == {"dataset": "value is required"}

    with pytest.raises(grpc.RpcError) as caught:
        stub.GetDataset(pb.GetDatasetRequest(id="not-a-uuid"), timeout=10)
    assert "id" in field_violations(caught.value)


def test_pages_cover_every_dataset_once(stub: pb_grpc.AnalyticsServiceStub) -> None:
    prefix = unique("page")
    names = {f"{prefix}-{i:02d}" for i in range(7)}
    for name in names:
        stub.CreateDataset(pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name)), timeout=10)
    seen: list[str] = []
    token = ""
    while True:
        page = stub.ListDatasets(pb.ListDatasetsRequest(page_size=3, page_token=token), timeout=10)
        assert len(page.datasets) <= 3
        seen += [d.name for d in page.datasets]
        token = page.next_page_token
        if not token:
            break
    assert names <= set(seen)
    assert len(seen) == len(set(seen)) and seen == sorted(seen)


def test_forged_page_token_is_invalid_argument(stub: pb_grpc.AnalyticsServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListDatasets(pb.ListDatasetsRequest(page_token="bm90IGEgdG9rZW4"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in field_violations(caught.value)


def test_grpc_through_envoy(mesh: RunningStack) -> None:
    with mesh.channel(mesh.envoy, "analyst") as channel:
        stub = pb_grpc.AnalyticsServiceStub(channel)
        name = unique("via-envoy")
        stub.CreateDataset(pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name)), timeout=10)
        listed = stub.ListDatasets(pb.ListDatasetsRequest(page_size=1000), timeout=10)
    assert name in [d.name for d in listed.datasets]


def test_rest_create_get_list(rest: httpx.Client) -> None:
    name = unique("rest")
    created = rest.post("/v1/datasets", json={"name": name, "unit": "ms", "labels": {"team": "web"}})
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["dataset"]["name"] == name
    assert body["dataset"]["pointCount"] == "0"  # int64 as a JSON string
    assert body["dataset"]["labels"] == {"team": "web"}
    dataset_id = body["dataset"]["id"]
    assert created.headers.get("x-request-id")

    got = rest.get(f"/v1/datasets/{dataset_id}")
    assert got.status_code == 200 and got.json()["dataset"]["id"] == dataset_id

    listed = rest.get("/v1/datasets", params={"pageSize": 1000})
    assert listed.status_code == 200
    assert name in [d["name"] for d in listed.json()["datasets"]]


def test_rest_validation_error_is_400_with_field_violations(rest: httpx.Client) -> None:
    response = rest.post("/v1/datasets", json={"name": ""})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == 3
    assert "dataset.name" in rest_field_violations(body)


def test_rest_not_found_is_404_json(rest: httpx.Client) -> None:
    response = rest.get(f"/v1/datasets/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["code"] == 5


def test_rest_malformed_json_is_400(rest: httpx.Client) -> None:
    response = rest.post("/v1/datasets", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "code" in response.json()


def test_rest_unknown_query_parameter_is_400(rest: httpx.Client) -> None:
    response = rest.get("/v1/datasets", params={"colour": "blue"})
    assert response.status_code == 400
    assert response.json()["code"] == 3


def test_rest_unknown_route_is_404_json(rest: httpx.Client) -> None:
    response = rest.get("/v1/no-such-thing")
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == 5 and body["message"]


def _create(stub: pb_grpc.AnalyticsServiceStub, **fields: object) -> dataset_pb2.Dataset:
    dataset = dataset_pb2.Dataset(name=unique("ds"), **fields)  # type: ignore[arg-type]
    return stub.CreateDataset(pb.CreateDatasetRequest(dataset=dataset), timeout=10).dataset


def _point_rows(mesh: RunningStack, dataset_id: str) -> int:
    with psycopg2.connect(mesh.database_url("analytics")) as conn, conn.cursor() as cur:
        cur.execute("SELECT coalesce(sum(point_count), 0) FROM point_chunk WHERE dataset_id = %s", (dataset_id,))
        row = cur.fetchone()
    assert row is not None
    return int(row[0])


def test_update_changes_only_the_masked_fields(stub: pb_grpc.AnalyticsServiceStub) -> None:
    created = _create(stub, description="old", unit="ms", labels={"a": "1"})
    renamed = unique("renamed")
    updated = stub.UpdateDataset(
        pb.UpdateDatasetRequest(
            dataset=dataset_pb2.Dataset(id=created.id, name=renamed, description="new", unit="s"),
            update_mask=field_mask_pb2.FieldMask(paths=["name", "description"]),
        ),
        timeout=10,
    ).dataset
    assert (updated.name, updated.description, updated.unit) == (renamed, "new", "ms")
    assert dict(updated.labels) == {"a": "1"}
    assert updated.update_time.ToDatetime() > created.update_time.ToDatetime()
    assert stub.GetDataset(pb.GetDatasetRequest(id=created.id), timeout=10).dataset == updated

    # Without "name" in the mask the name may be left out.
    relabelled = stub.UpdateDataset(
        pb.UpdateDatasetRequest(
            dataset=dataset_pb2.Dataset(id=created.id, labels={"b": "2"}),
            update_mask=field_mask_pb2.FieldMask(paths=["labels"]),
        ),
        timeout=10,
    ).dataset
    assert relabelled.name == renamed and dict(relabelled.labels) == {"b": "2"}


def test_update_errors(stub: pb_grpc.AnalyticsServiceStub) -> None:
    first, second = _create(stub), _create(stub)
    mask = field_mask_pb2.FieldMask(paths=["name"])
    with pytest.raises(grpc.RpcError) as caught:
        stub.UpdateDataset(
            pb.UpdateDatasetRequest(dataset=dataset_pb2.Dataset(id=second.id, name=first.name), update_mask=mask),
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as caught:
        stub.UpdateDataset(
            pb.UpdateDatasetRequest(dataset=dataset_pb2.Dataset(id=second.id), update_mask=mask), timeout=10
        )
    assert field_violations(caught.value) == {"dataset.name": "value is required"}
    with pytest.raises(grpc.RpcError) as caught:
        stub.UpdateDataset(
            pb.UpdateDatasetRequest(
                dataset=dataset_pb2.Dataset(id=second.id), update_mask=field_mask_pb2.FieldMask(paths=["id"])
            ),
            timeout=10,
        )
    assert "update_mask" in field_violations(caught.value)
    with pytest.raises(grpc.RpcError) as caught:
        stub.UpdateDataset(
            pb.UpdateDatasetRequest(
                dataset=dataset_pb2.Dataset(id=str(uuid.uuid4()), name=unique("x")), update_mask=mask
            ),
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        stub.UpdateDataset(pb.UpdateDatasetRequest(), timeout=10)
    assert set(field_violations(caught.value)) == {"dataset"}
    # No mask (AIP-134: the fields set change) and nothing set: nothing to update.
    with pytest.raises(grpc.RpcError) as caught:
        stub.UpdateDataset(pb.UpdateDatasetRequest(dataset=dataset_pb2.Dataset(id=second.id)), timeout=10)
    assert "nothing to update" in field_violations(caught.value)["update_mask"]


def test_delete_removes_the_dataset_and_its_points(
    stub: pb_grpc.AnalyticsServiceStub, mesh: RunningStack
) -> None:
    created = _create(stub)
    appended = stub.AppendPoints(
        pb.AppendPointsRequest(dataset_id=created.id, timestamps_us=[1, 2, 3], values=[1.0, 2.0, 3.0]), timeout=10
    )
    assert appended.dataset.point_count == 3 and _point_rows(mesh, created.id) == 3
    stub.DeleteDataset(pb.DeleteDatasetRequest(id=created.id), timeout=10)
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetDataset(pb.GetDatasetRequest(id=created.id), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert _point_rows(mesh, created.id) == 0
    with pytest.raises(grpc.RpcError) as caught:
        stub.DeleteDataset(pb.DeleteDatasetRequest(id=created.id), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_viewer_cannot_update_or_delete(stub: pb_grpc.AnalyticsServiceStub, mesh: RunningStack) -> None:
    created = _create(stub)
    with mesh.channel(mesh.analytics, "viewer") as channel:
        viewer = pb_grpc.AnalyticsServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            viewer.DeleteDataset(pb.DeleteDatasetRequest(id=created.id), timeout=10)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as caught:
            viewer.UpdateDataset(
                pb.UpdateDatasetRequest(
                    dataset=dataset_pb2.Dataset(id=created.id, unit="x"),
                    update_mask=field_mask_pb2.FieldMask(paths=["unit"]),
                ),
                timeout=10,
            )
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert stub.GetDataset(pb.GetDatasetRequest(id=created.id), timeout=10).dataset == created


def test_rest_patch_and_delete(rest: httpx.Client, mesh: RunningStack) -> None:
    dataset_id = rest.post("/v1/datasets", json={"name": unique("rest-upd"), "unit": "ms"}).json()["dataset"]["id"]
    patched = rest.patch(
        f"/v1/datasets/{dataset_id}", params={"updateMask": "description,labels"},
        json={"description": "via REST", "unit": "ignored", "labels": {"k": "v"}},
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()["dataset"]
    assert (body["description"], body["unit"], body["labels"]) == ("via REST", "ms", {"k": "v"})

    appended = rest.post(
        f"/v1/datasets/{dataset_id}/points:append", json={"timestampsUs": ["1", "2"], "values": [0.5, 1.5]}
    )
    assert appended.status_code == 200, appended.text
    assert _point_rows(mesh, dataset_id) == 2
    deleted = rest.delete(f"/v1/datasets/{dataset_id}")
    assert deleted.status_code == 200, deleted.text
    assert rest.get(f"/v1/datasets/{dataset_id}").status_code == 404
    assert rest.delete(f"/v1/datasets/{dataset_id}").status_code == 404
    assert _point_rows(mesh, dataset_id) == 0
