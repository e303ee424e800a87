"""The container healthcheck (`python -m mesh_runtime.healthcheck`) against real servers."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from local_stack.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def healthcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mesh_runtime.healthcheck", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.fixture
def grpc_health() -> Iterator[tuple[str, health.HealthServicer]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(None)


def test_serving_server_exits_zero(grpc_health: tuple[str, health.HealthServicer]) -> None:
    address, servicer = grpc_health
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("mesh.analytics.v1.AnalyticsService", health_pb2.HealthCheckResponse.SERVING)
    assert healthcheck(address).returncode == 0
    assert healthcheck(address, "mesh.analytics.v1.AnalyticsService").returncode == 0


def test_not_serving_exits_non_zero_with_one_line(grpc_health: tuple[str, health.HealthServicer]) -> None:
    address, servicer = grpc_health
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    result = healthcheck(address)
    assert result.returncode == 1
    assert result.stderr.strip() == f"unhealthy: {address}: NOT_SERVING"


def test_unknown_service_is_unhealthy(grpc_health: tuple[str, health.HealthServicer]) -> None:
    address, servicer = grpc_health
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    result = healthcheck(address, "no.such.Service")
    assert result.returncode == 1
    assert "does not know this service" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_nothing_listening_is_unhealthy_within_the_timeout() -> None:
    address = f"127.0.0.1:{free_port()}"
    result = healthcheck(address, "--timeout", "1")
    assert result.returncode == 1
    assert result.stderr.startswith(f"unhealthy: {address}: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_usage_exits_two() -> None:
    assert healthcheck("no-port-here").returncode == 2
    assert healthcheck("http://127.0.0.1:1/", "a.Service").returncode == 2


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200 if self.path == "/ok" else 503)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def test_http_targets() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert healthcheck(f"{base}/ok").returncode == 0
        failed = healthcheck(f"{base}/down")
        assert failed.returncode == 1
        assert failed.stderr.strip() == f"unhealthy: {base}/down: HTTP 503"
    finally:
        server.shutdown()
        server.server_close()
