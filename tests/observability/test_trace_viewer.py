"""``./mesh up`` runs the trace viewer (Arize Phoenix, in a virtual environment
of its own, installed on first use) and every process, Envoy included, sends
it its spans: one analysis's whole trace is there, and a browser shows it
(the screenshot in the README's "See inside" comes from this test)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from local_stack.paths import ROOT
from tests.eventually import eventually
from tests.web.browser import SCREENSHOTS, launched_chromium

ADMIN = ("trace-admin", "correct horse battery staple")
PORT_VARIABLES = [
    "MESH_POSTGRES_PORT", "MESH_NATS_PORT", "MESH_NATS_MONITOR_PORT", "MESH_SMTP_PORT", "MESH_MAIL_HTTP_PORT",
    "MESH_ENVOY_PORT", "MESH_ENVOY_ADMIN_PORT", "ANALYTICS_GRPC_PORT", "LLM_GRPC_PORT", "NOTIFY_GRPC_PORT",
    "MESH_DOCS_PORT", "MESH_TRACE_VIEWER_PORT", "MESH_TRACE_VIEWER_GRPC_PORT",
]  # fmt: skip
# The first run installs the viewer (minutes); later ones find it installed.
START_TIMEOUT = 1200


def _start_mesh(state: Path) -> tuple[subprocess.Popen[str], dict[str, str], list[str]]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        "MESH_STATE_DIR": str(state),
        "AUTH_BOOTSTRAP_ADMIN_USERNAME": ADMIN[0],
        "AUTH_BOOTSTRAP_ADMIN_PASSWORD": ADMIN[1],
        # Spans reach the viewer within a fifth of a second.
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        **{v: "0" for v in PORT_VARIABLES},
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesh_cli", "up", "--no-web"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []
    table: dict[str, str] = {}
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if found := re.match(r"\s+(REST API \(Envoy\)|trace viewer)\s+(http://127\.0\.0\.1:\d+)", line):
            table[found.group(1)] = found.group(2)
        if line.lstrip().startswith("sign in") and table:
            return proc, table, seen
    proc.kill()
    pytest.fail("mesh up did not print its table:\n" + "".join(seen[-40:]))


def _spans(viewer: str, trace_id: str) -> list[dict[str, object]]:
    reply = httpx.get(f"{viewer}/v1/projects/default/spans", params={"limit": 1000}, timeout=10)
    reply.raise_for_status()
    return [s for s in reply.json()["data"] if s["context"]["trace_id"] == trace_id]  # type: ignore[index]


def test_mesh_up_runs_a_trace_viewer_that_shows_a_whole_trace(tmp_path: Path) -> None:
    proc, table, seen = _start_mesh(tmp_path / "state")
    try:
        assert "trace viewer" in table, "".join(seen[-30:])
        viewer, rest = table["trace viewer"], table["REST API (Envoy)"]
        login = httpx.post(f"{rest}/v1/auth:login", json={"username": ADMIN[0], "password": ADMIN[1]}, timeout=10)
        assert login.status_code == 200, login.text
        headers = {"authorization": f"Bearer {login.json()['session']['accessToken']}"}
        with httpx.Client(base_url=rest, headers=headers, timeout=10) as client:
            dataset = client.post("/v1/datasets", json={"name": f"latency-{uuid.uuid4().hex[:6]}", "unit": "ms"})
            dataset_id = dataset.json()["dataset"]["id"]
            values = [100.0 + (i % 7) for i in range(200)]
            values[100] = 900.0
            stamps = [str(1_700_000_000_000_000 + i * 60_000_000) for i in range(200)]
            client.post(f"/v1/datasets/{dataset_id}/points:append", json={"timestampsUs": stamps, "values": values})
            client.post("/v1/subscriptions", json={"email": "ops@example.com", "datasetIds": [dataset_id]})
            trace_id, caller = os.urandom(16).hex(), os.urandom(8).hex()
            queued = client.post(
                f"/v1/datasets/{dataset_id}:analyze",
                json={"kind": "ANALYSIS_KIND_REPORT"},
                headers={"traceparent": f"00-{trace_id}-{caller}-01"},
            )
            assert queued.status_code == 200, queued.text

        # The whole trace reaches the viewer: Envoy, the RPC, the worker, llm, notify, the SMTP send.
        wanted = {
            f"POST /v1/datasets/{dataset_id}:analyze",
            "mesh.analytics.v1.AnalyticsService/RunAnalysis",
            "analysis job",
            "mesh.llm.v1.LlmService/Complete",
            "event received",
            "deliver e-mail",
            "SMTP send",
        }

        def whole() -> list[dict[str, object]]:
            spans = _spans(viewer, trace_id)
            return spans if wanted <= {str(s["name"]) for s in spans} else []

        spans = eventually(whole, 120, lambda: f"the whole trace in the viewer (have {_spans(viewer, trace_id)})")
        by_id = {s["context"]["span_id"]: s for s in spans}  # type: ignore[index]
        edge = next(s for s in spans if s["name"] == f"POST /v1/datasets/{dataset_id}:analyze")
        assert edge["parent_id"] == caller
        rpc = next(s for s in spans if s["name"] == "mesh.analytics.v1.AnalyticsService/RunAnalysis")
        assert by_id[rpc["parent_id"]] is edge

        # A browser opens the trace from the link the web app's result page uses.
        with launched_chromium() as browser:
            page = browser.new_page(viewport={"width": 1600, "height": 1800})
            page.goto(f"{viewer}/redirects/traces/{trace_id}")
            expect(page.get_by_text("SMTP send").first).to_be_visible(timeout=60_000)
            # The root span's details (Envoy's) beside the tree, once loaded.
            page.wait_for_load_state("networkidle")
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "trace.png"))
            page.close()
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
