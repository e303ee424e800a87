"""`mesh up` end to end, as a user runs it: the table, working endpoints,
Ctrl-C leaving no process behind, and data kept across restarts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import httpx
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from local_stack.paths import ROOT
from tests.eventually import eventually

PORT_VARIABLES = [
    "MESH_POSTGRES_PORT", "MESH_NATS_PORT", "MESH_NATS_MONITOR_PORT", "MESH_SMTP_PORT",
    "MESH_MAIL_HTTP_PORT", "MESH_ENVOY_PORT", "MESH_ENVOY_ADMIN_PORT", "ANALYTICS_GRPC_PORT",
    "LLM_GRPC_PORT", "NOTIFY_GRPC_PORT", "MESH_DOCS_PORT",
]


def processes_using(state_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(str(state_dir) in part for part in proc.info["cmdline"] or ()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


ADMIN = ("first-admin", "correct horse battery staple")


def start_mesh(state_dir: Path) -> tuple[subprocess.Popen[str], str, list[str]]:
    env = {
        **os.environ,
        "MESH_STATE_DIR": str(state_dir),
        "AUTH_BOOTSTRAP_ADMIN_USERNAME": ADMIN[0],
        "AUTH_BOOTSTRAP_ADMIN_PASSWORD": ADMIN[1],
        **{v: "0" for v in PORT_VARIABLES},
        # The trace viewer has a test of its own (tests/observability/test_trace_viewer.py).
        "MESH_TRACE_VIEWER": "false",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesh_cli", "up", "--no-web"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    rest = None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if "REST API (Envoy)" in line:
            rest = re.search(r"(http://127\.0\.0\.1:\d+)/v1/datasets", line)
            assert rest
        if "sign in" in line and rest:
            return proc, rest.group(1), seen
    proc.kill()
    pytest.fail("mesh up did not print its table:\n" + "".join(seen[-40:]))


def sign_in(rest: str) -> dict[str, str]:
    reply = httpx.post(f"{rest}/v1/auth:login", json={"username": ADMIN[0], "password": ADMIN[1]}, timeout=10)
    assert reply.status_code == 200, reply.text
    return {"authorization": f"Bearer {reply.json()['session']['accessToken']}"}


def stop_with_ctrl_c(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)
    return rest


def test_mesh_up_runs_prints_stops_cleanly_and_keeps_data(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc, rest, seen = start_mesh(state)
    try:
        assert "sign in" in seen[-1] and "./mesh token" in seen[-1]
        headers = sign_in(rest)
        created = httpx.post(
            f"{rest}/v1/datasets", json={"name": "kept-across-restarts"}, headers=headers, timeout=10
        )
        assert created.status_code == 200, created.text
        # Every process's metrics URL is in the table, and answers.
        metrics = dict(m.groups() for line in seen if (m := re.search(r"metrics: (\S+)\s+(http://\S+)", line)))
        assert set(metrics) == {"analytics", "llm", "notify", "analytics-scheduler", "analytics-worker", "envoy"}
        assert 'grpc_method="CreateDataset"' in httpx.get(metrics["analytics"], timeout=10).text
        assert "envoy_cluster_upstream_rq_total" in httpx.get(metrics["envoy"], timeout=10).text
    finally:
        output = stop_with_ctrl_c(proc)
    assert proc.returncode == 0, output
    assert "everything stopped" in output
    assert processes_using(state) == [], "mesh up left processes running"
    assert (state / "logs" / "analytics.log").read_text()

    proc, rest, _ = start_mesh(state)
    try:
        listed = httpx.get(f"{rest}/v1/datasets", headers=sign_in(rest), timeout=10).json()
        assert "kept-across-restarts" in [d["name"] for d in listed["datasets"]]
    finally:
        stop_with_ctrl_c(proc)
    assert processes_using(state) == []


def test_killed_supervisor_leaves_no_orphans(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc, _, _ = start_mesh(state)
    children = psutil.Process(proc.pid).children(recursive=True)
    names = " ".join(" ".join(c.cmdline()) for c in children)
    for server in ("postgres", "nats-server", "mail_catcher", "analytics_svc", "llm_svc", "notify_svc", "envoy"):
        assert server in names, f"{server} should be running"
    # The exported first-admin password reaches the analytics API alone.
    holders = [" ".join(c.cmdline()) for c in children if "AUTH_BOOTSTRAP_ADMIN_PASSWORD" in c.environ()]
    assert [h.split()[-2:] for h in holders] == [["-m", "analytics_svc"]], holders
    proc.kill()  # no chance to clean up: the children must still go
    proc.wait(10)
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert alive == [], f"orphans: {[p.pid for p in alive]}"
    assert processes_using(state) == []


def test_a_crashed_service_is_restarted_and_the_supervisor_says_so(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc, _, seen = start_mesh(state)
    assert proc.stdout is not None
    output: list[str] = []
    stdout = proc.stdout
    reader = threading.Thread(target=lambda: output.extend(iter(stdout.readline, "")), daemon=True)
    reader.start()
    try:
        (llm_port,) = [int(m.group(1)) for line in seen if (m := re.search(r"llm gRPC\s+127\.0\.0\.1:(\d+)", line))]
        (llm,) = [c for c in psutil.Process(proc.pid).children(recursive=True) if "llm_svc" in " ".join(c.cmdline())]
        llm.kill()
        eventually(lambda: any("llm restarted" in line for line in output), 60, lambda: "".join(output[-20:]))
        assert any("llm exited unexpectedly" in line and "restarting it in" in line for line in output)
        assert eventually(lambda: grpc_serving(llm_port), 60, "llm serving again", retry_on=(grpc.RpcError,))
        assert proc.poll() is None, "the rest of the stack keeps running"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(120)
        reader.join(10)
    assert proc.returncode == 0, "".join(output[-40:])
    assert processes_using(state) == []


def grpc_serving(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
