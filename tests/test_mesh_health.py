"""Every service of the running mesh is healthy and discoverable."""

from __future__ import annotations

import json
import subprocess
import uuid

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from local_stack.paths import VENV_BIN
from tests.conftest import RunningStack

SERVICES = {
    "analytics": "mesh.analytics.v1.AnalyticsService",
    "llm": "mesh.llm.v1.LlmService",
    "notify": "mesh.notify.v1.NotifyService",
}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_health_reports_serving(mesh: RunningStack, name: str) -> None:
    with grpc.insecure_channel(getattr(mesh, name)) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICES[name]):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as caught:
            health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_grpcurl_lists_services_through_reflection(mesh: RunningStack, name: str) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "grpcurl"), "-plaintext", getattr(mesh, name), "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    listed = set(result.stdout.split())
    assert {SERVICES[name], "grpc.health.v1.Health"} <= listed


def grpcurl(address: str, method: str, body: str, token: str) -> dict[str, object]:
    result = subprocess.run(
        [str(VENV_BIN / "grpcurl"), "-plaintext", "-H", f"authorization: Bearer {token}", "-d", body, address, method],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_grpcurl_calls_methods(mesh: RunningStack) -> None:
    service = "mesh.analytics.v1.AnalyticsService"
    token = mesh.tokens["analyst"]
    name = f"made-by-grpcurl-{uuid.uuid4().hex[:8]}"
    created = grpcurl(mesh.analytics, f"{service}/CreateDataset", json.dumps({"dataset": {"name": name}}), token)
    assert created["dataset"]["name"] == name  # type: ignore[index]
    listed = grpcurl(mesh.analytics, f"{service}/ListDatasets", '{"pageSize": 1000}', token)
    assert name in [d["name"] for d in listed["datasets"]]  # type: ignore[attr-defined]


def test_envoy_is_ready_and_infrastructure_is_up(mesh: RunningStack) -> None:
    s = mesh.settings
    assert httpx.get(f"http://127.0.0.1:{s.envoy_admin_port}/ready").text.strip() == "LIVE"
    assert httpx.get(f"http://127.0.0.1:{s.nats_monitor_port}/healthz?js-enabled-only=true").status_code == 200
    assert httpx.get(f"{mesh.mail_api}/api/v1/messages").status_code == 200
