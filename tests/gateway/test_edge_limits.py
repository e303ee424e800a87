"""Time and rate limits at the edge, on private Envoys with small limits:
every route's time limit reaches the service as its gRPC deadline (REST calls
included), the service's call is cancelled when it passes, streams have their
own limit, and sign-in and the LLM routes have a token bucket per client."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from gateway import envoy_config
from local_stack.ports import free_port
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as analytics_grpc
from mesh.analytics.v1 import dataset_pb2
from mesh.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from tests.conftest import RunningStack
from tests.eventually import eventually
from tests.gateway.edge_rig import EdgeRig

ANALYTICS = "mesh.analytics.v1.AnalyticsService"
ROUTE_SECONDS = 2
STREAM_SECONDS = 4


@dataclass
class FakeAnalytics:
    """A gRPC server answering three analytics RPCs the way a test needs:
    GetDataset reports the deadline it got (in the dataset's description),
    RunAnalysis never answers, WatchResults never sends; each records what it saw."""

    port: int = field(default_factory=free_port)
    cancelled: dict[str, threading.Event] = field(
        default_factory=lambda: {"RunAnalysis": threading.Event(), "WatchResults": threading.Event()}
    )
    deadlines: dict[str, float | None] = field(default_factory=dict)

    async def get_dataset(self, request: pb.GetDatasetRequest, context: grpc.aio.ServicerContext) -> Any:
        remaining = context.time_remaining()
        return pb.GetDatasetResponse(
            dataset=dataset_pb2.Dataset(id=request.id, name="fake", description=repr(remaining))
        )

    async def run_analysis(self, request: pb.RunAnalysisRequest, context: grpc.aio.ServicerContext) -> Any:
        self.deadlines["RunAnalysis"] = context.time_remaining()
        try:
            await asyncio.Event().wait()  # never answers: only the deadline ends it
        except asyncio.CancelledError:
            self.cancelled["RunAnalysis"].set()
            raise
        return pb.RunAnalysisResponse()

    async def watch_results(
        self, request: pb.WatchResultsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchResultsResponse]:
        self.deadlines["WatchResults"] = context.time_remaining()
        await context.send_initial_metadata(())
        try:
            await asyncio.Event().wait()  # never answers: only the deadline ends it
        except asyncio.CancelledError:
            self.cancelled["WatchResults"].set()
            raise
        yield pb.WatchResultsResponse()

    def handlers(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            ANALYTICS,
            {
                "GetDataset": grpc.unary_unary_rpc_method_handler(
                    self.get_dataset,
                    request_deserializer=pb.GetDatasetRequest.FromString,
                    response_serializer=pb.GetDatasetResponse.SerializeToString,
                ),
                "RunAnalysis": grpc.unary_unary_rpc_method_handler(
                    self.run_analysis,
                    request_deserializer=pb.RunAnalysisRequest.FromString,
                    response_serializer=pb.RunAnalysisResponse.SerializeToString,
                ),
                "WatchResults": grpc.unary_stream_rpc_method_handler(
                    self.watch_results,
                    request_deserializer=pb.WatchResultsRequest.FromString,
                    response_serializer=pb.WatchResultsResponse.SerializeToString,
                ),
            },
        )


@pytest.fixture(scope="module")
def rig(mesh: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeRig]:
    edge = EdgeRig(mesh, tmp_path_factory.mktemp("edge"), database="unused")
    try:
        yield edge
    finally:
        edge.close()


@pytest.fixture(scope="module")
def fake(rig: EdgeRig) -> Iterator[FakeAnalytics]:
    """The fake analytics server, served on the stack's supervising loop."""
    fake = FakeAnalytics()

    async def start() -> grpc.aio.Server:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((fake.handlers(),))
        server.add_insecure_port(f"127.0.0.1:{fake.port}")
        await server.start()
        return server

    server = rig.run(start())
    yield fake
    rig.run(server.stop(0))


@pytest.fixture(scope="module")
def timed_edge(rig: EdgeRig, fake: FakeAnalytics) -> str:
    """An Envoy with short limits in front of the fake analytics server."""
    limits = envoy_config.EdgeLimits(route_timeout_seconds=ROUTE_SECONDS, stream_timeout_seconds=STREAM_SECONDS)
    return rig.start_envoy("envoy-timed", rig.upstreams_with("analytics", fake.port), limits)


def _auth(mesh: RunningStack, role: str = "analyst") -> dict[str, str]:
    return {"authorization": f"Bearer {mesh.tokens[role]}"}


def _reported_deadline(response: httpx.Response) -> float:
    remaining = response.json()["dataset"]["description"]
    assert remaining != "None", "the call reached the service without a deadline"
    return float(remaining)


def test_a_rest_call_reaches_the_service_with_the_route_deadline(mesh: RunningStack, timed_edge: str) -> None:
    response = httpx.get(f"http://{timed_edge}/v1/datasets/x", headers=_auth(mesh), timeout=10)
    assert response.status_code == 200, response.text
    assert 0 < _reported_deadline(response) <= ROUTE_SECONDS


def test_a_grpc_call_keeps_a_shorter_deadline_and_gets_the_route_one_without(
    mesh: RunningStack, timed_edge: str
) -> None:
    metadata = [("authorization", f"Bearer {mesh.tokens['analyst']}")]
    with grpc.insecure_channel(timed_edge) as channel:
        stub = analytics_grpc.AnalyticsServiceStub(channel)
        short = stub.GetDataset(pb.GetDatasetRequest(id="x"), timeout=0.8, metadata=metadata)
        unset = stub.GetDataset(pb.GetDatasetRequest(id="x"), metadata=metadata)
    assert 0 < float(short.dataset.description) <= 0.8
    assert 0.8 < float(unset.dataset.description) <= ROUTE_SECONDS


def test_a_call_past_its_deadline_is_cancelled_in_the_service(
    mesh: RunningStack, timed_edge: str, fake: FakeAnalytics
) -> None:
    response = httpx.post(
        f"http://{timed_edge}/v1/datasets/x:analyze",
        json={"kind": "ANALYSIS_KIND_SUMMARY"},
        headers=_auth(mesh),
        timeout=30,
    )
    assert response.status_code == 504, response.text
    assert response.json()["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert 0 < (fake.deadlines["RunAnalysis"] or 0) <= ROUTE_SECONDS
    assert fake.cancelled["RunAnalysis"].wait(10), "the service kept working past the deadline"


def test_a_stream_has_its_own_longer_limit(mesh: RunningStack, timed_edge: str, fake: FakeAnalytics) -> None:
    with httpx.stream(
        "GET", f"http://{timed_edge}/v1/results:watch", headers=_auth(mesh), timeout=30
    ) as response:
        assert response.status_code == 200
        response.read()
    assert ROUTE_SECONDS < (fake.deadlines["WatchResults"] or 0) <= STREAM_SECONDS
    assert fake.cancelled["WatchResults"].wait(10), "the stream outlived its limit in the service"


def test_a_real_watch_ends_in_the_service_at_its_limit(mesh: RunningStack, rig: EdgeRig) -> None:
    """The analytics service itself stops a WatchResults stream at the limit Envoy set."""
    limits = envoy_config.EdgeLimits(route_timeout_seconds=ROUTE_SECONDS, stream_timeout_seconds=STREAM_SECONDS)
    edge = rig.start_envoy("envoy-watch", rig.shared_upstreams(), limits)
    request_id = f"watch-limit-{secrets.token_hex(6)}"
    with httpx.stream(
        "GET",
        f"http://{edge}/v1/results:watch",
        headers={**_auth(mesh), "x-request-id": request_id},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        response.read()
    # The service logs one "rpc" line per call as it ends.
    log = mesh.logs() / "analytics.log"
    eventually(
        lambda: [e for e in _json_lines(log) if e.get("request_id") == request_id and e["msg"] == "rpc"],
        20,
        "the WatchResults call to end in the service",
    )


def _json_lines(path: Path) -> list[dict[str, Any]]:
    entries = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return entries


@pytest.fixture(scope="module")
def limited_edge(rig: EdgeRig) -> str:
    """An Envoy with tiny buckets in front of the shared stack."""
    limits = envoy_config.EdgeLimits(
        sign_in=envoy_config.RateLimit(burst=3, per_minute=2, key="client_address"),
        llm=envoy_config.RateLimit(burst=2, per_minute=2, key="subject"),
    )
    return rig.start_envoy("envoy-limited", rig.shared_upstreams(), limits)


def test_sign_in_has_a_bucket_per_client_with_retry_after(mesh: RunningStack, limited_edge: str) -> None:
    # Different usernames: the services' per-account throttling never sees two failures of one.
    attempts = [
        httpx.post(
            f"http://{limited_edge}/v1/auth:login",
            json={"username": f"nobody-{secrets.token_hex(4)}", "password": "wrong password"},
            timeout=10,
        )
        for _ in range(5)
    ]
    assert [a.status_code for a in attempts[:3]] == [401] * 3
    refused = attempts[3]
    assert refused.status_code == 429, refused.text
    assert refused.headers["retry-after"] == "30"
    assert refused.json()["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    # gRPC sign-in goes through the same bucket.
    with grpc.insecure_channel(limited_edge) as channel, pytest.raises(grpc.RpcError) as caught:
        auth_service_pb2_grpc.AuthServiceStub(channel).Login(
            auth_service_pb2.LoginRequest(username="nobody", password="wrong password"), timeout=10
        )
    assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


def test_the_llm_routes_have_a_bucket_per_user(mesh: RunningStack, limited_edge: str) -> None:
    body = {"messages": [{"role": "ROLE_USER", "content": "mean 12.5"}]}
    with httpx.Client(base_url=f"http://{limited_edge}", timeout=30) as client:
        analyst = [client.post("/v1/completions", json=body, headers=_auth(mesh, "analyst")) for _ in range(3)]
        other = client.post("/v1/completions", json=body, headers=_auth(mesh, "viewer"))
    assert [r.status_code for r in analyst] == [200, 200, 429], [r.text for r in analyst]
    assert analyst[2].headers["retry-after"] == "30"
    assert other.status_code == 200, "one user's bucket must not stop another"
