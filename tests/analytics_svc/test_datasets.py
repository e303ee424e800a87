"""Datasets through gRPC (straight and via Envoy) and through REST."""

from __future__ import annotations

import uuid

import grpc
import httpx
import pytest

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
