"""A service dying under a call through Envoy is an outage to every client,
not a bug: gRPC and grpc-web callers get UNAVAILABLE, REST callers 503, each
with Retry-After, so clients that retry UNAVAILABLE do. The analytics API here
is a process of the test's own (its own database) behind an Envoy of its own,
killed with SIGKILL in the middle of an IngestPoints stream."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator

import grpc
import httpx
import pytest

from gateway import envoy_config
from local_stack.ports import free_port
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as analytics_grpc
from mesh.analytics.v1 import dataset_pb2
from tests.clients import authed_channel
from tests.conftest import RunningStack
from tests.gateway.edge_rig import EdgeRig

BATCHES_BEFORE_THE_KILL = 3


class Deployment(EdgeRig):
    """An analytics API ("api") on a database of its own, and an Envoy in front of it."""

    api_port: int
    edge: str

    def start(self) -> None:
        self.api_port = free_port()
        self.create_database()
        self.start_api()
        self.edge = self.start_envoy(
            "envoy", self.upstreams_with("analytics", self.api_port), envoy_config.EdgeLimits()
        )

    def start_api(self) -> None:
        env = {
            "ANALYTICS_DATABASE_URL": self.database_url,
            "ANALYTICS_GRPC_PORT": str(self.api_port),
            "LLM_ADDR": "off",
            "MESH_LOG_FORMAT": "json",
        }
        self.start_service("api", "analytics_svc", env, ready_port=self.api_port)

    def dataset(self) -> str:
        with authed_channel(f"127.0.0.1:{self.api_port}", self.mesh.tokens["analyst"]) as channel:
            created = analytics_grpc.AnalyticsServiceStub(channel).CreateDataset(
                pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"outage-{secrets.token_hex(4)}")),
                timeout=10,
            )
        return str(created.dataset.id)


@pytest.fixture(scope="module")
def deployment(mesh: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(mesh, tmp_path_factory.mktemp("outage"), f"outage_{secrets.token_hex(4)}")
    try:
        d.start()
        yield d
    finally:
        d.close()


@pytest.fixture
def api(deployment: Deployment) -> Deployment:
    """The deployment with its API running (each test kills it)."""
    if "api" not in deployment.processes:
        deployment.start_api()
    return deployment


def _batches(dataset_id: str, ready: threading.Event, go_on: threading.Event) -> Iterator[pb.IngestPointsRequest]:
    """Batches of an IngestPoints stream that pauses after a few until ``go_on``."""
    for index in range(BATCHES_BEFORE_THE_KILL * 2):
        if index == BATCHES_BEFORE_THE_KILL:
            ready.set()
            go_on.wait(60)
        yield pb.IngestPointsRequest(
            dataset_id=dataset_id, timestamps_us=[1_700_000_000_000_000 + index * 1_000_000], values=[float(index)]
        )


def _kill_when(deployment: Deployment, ready: threading.Event, go_on: threading.Event) -> threading.Thread:
    def kill() -> None:
        try:
            if ready.wait(60):
                deployment.kill("api")
        finally:
            go_on.set()

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def test_grpc_through_envoy_gets_unavailable_when_the_service_dies(api: Deployment) -> None:
    dataset_id = api.dataset()
    ready, go_on = threading.Event(), threading.Event()
    killer = _kill_when(api, ready, go_on)
    metadata = [("authorization", f"Bearer {api.mesh.tokens['analyst']}")]
    with grpc.insecure_channel(api.edge) as channel, pytest.raises(grpc.RpcError) as caught:
        analytics_grpc.AnalyticsServiceStub(channel).IngestPoints(
            _batches(dataset_id, ready, go_on), timeout=60, metadata=metadata
        )
    killer.join(60)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
    assert dict(caught.value.trailing_metadata() or ()).get("retry-after")


def test_rest_through_envoy_gets_503_with_retry_after_when_the_service_dies(api: Deployment) -> None:
    dataset_id = api.dataset()
    ready, go_on = threading.Event(), threading.Event()
    killer = _kill_when(api, ready, go_on)

    def body() -> Iterator[bytes]:
        for index, batch in enumerate(_batches(dataset_id, ready, go_on)):
            message = {"datasetId": batch.dataset_id, "timestampsUs": [str(batch.timestamps_us[0])], "values": [0.5]}
            yield ("[" if index == 0 else ",").encode() + json.dumps(message).encode()
        yield b"]"

    response = httpx.post(
        f"http://{api.edge}/v1/datasets:ingest",
        content=body(),
        headers={"authorization": f"Bearer {api.mesh.tokens['analyst']}", "content-type": "application/json"},
        timeout=60,
    )
    killer.join(60)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    assert response.json()["code"] == grpc.StatusCode.UNAVAILABLE.value[0]


def test_a_service_that_is_down_is_unavailable_with_retry_after(api: Deployment) -> None:
    api.kill("api")
    response = httpx.get(
        f"http://{api.edge}/v1/datasets", headers={"authorization": f"Bearer {api.mesh.tokens['analyst']}"}, timeout=30
    )
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] and response.json()["code"] == grpc.StatusCode.UNAVAILABLE.value[0]
