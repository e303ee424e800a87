"""A real Prometheus (Debian's ``prometheus`` package; ``.ci/run`` installs it)
scrapes every endpoint of the session stack, as a deployment's would: every
target is up, and PromQL sees the RPCs a test makes."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from local_stack.ports import free_port
from tests.conftest import RunningStack
from tests.eventually import eventually


def _scrape_config(mesh: RunningStack) -> dict[str, object]:
    jobs = []
    for name, url in sorted(mesh.stack.metrics_urls().items()):
        parts = urlsplit(url)
        jobs.append({"job_name": name, "metrics_path": parts.path, "static_configs": [{"targets": [parts.netloc]}]})
    return {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"}, "scrape_configs": jobs}


@pytest.fixture(scope="module")
def prometheus(mesh: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus scraping the session stack; its HTTP API's base URL."""
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus package is needed: apt-get install prometheus (.ci/run does)"
    folder = tmp_path_factory.mktemp("prometheus")
    config = folder / "prometheus.yml"
    config.write_text(yaml.safe_dump(_scrape_config(mesh)))
    port = free_port()
    log = (folder / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _ready(base), 60, lambda: f"Prometheus ready ({_tail(folder / 'prometheus.log')})")
        yield base
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _tail(path: Path) -> str:
    return path.read_text()[-2000:]


def _query(base: str, promql: str) -> list[dict[str, object]]:
    reply = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=10)
    reply.raise_for_status()
    body = reply.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def test_prometheus_scrapes_every_process_and_envoy(mesh: RunningStack, prometheus: str) -> None:
    expected = set(mesh.stack.metrics_urls())

    def healthy() -> dict[str, str]:
        targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        return health if set(health) == expected and set(health.values()) == {"up"} else {}

    eventually(healthy, 60, "every target scraped and up")
    up = _query(prometheus, "up")
    assert {r["metric"]["job"] for r in up} == expected  # type: ignore[index]


def test_promql_sees_the_calls_by_method_and_code(mesh: RunningStack, prometheus: str, rest: httpx.Client) -> None:
    missing = rest.get(f"/v1/datasets/{uuid.uuid4()}")
    assert missing.status_code == 404
    promql = (
        'sum by (grpc_method, grpc_code) (grpc_server_handled_total{job="analytics", grpc_method="GetDataset",'
        ' grpc_code="NOT_FOUND"})'
    )
    found = eventually(lambda: _query(prometheus, promql), 30, "the NOT_FOUND GetDataset in Prometheus")
    assert float(found[0]["value"][1]) >= 1  # type: ignore[index]
    # A histogram Prometheus can take quantiles of.
    quantile = 'histogram_quantile(0.99, sum by (le) (grpc_server_handling_seconds_bucket{job="analytics"}))'
    assert _query(prometheus, quantile)
    # And Envoy's own view of the same upstream.
    envoy = _query(prometheus, 'envoy_cluster_upstream_rq_total{job="envoy", envoy_cluster_name="analytics"}')
    assert envoy and float(envoy[0]["value"][1]) >= 1  # type: ignore[index]


def test_the_stacks_metric_urls_are_what_mesh_up_prints(mesh: RunningStack) -> None:
    printed = dict(mesh.stack.endpoints())
    for name, url in mesh.stack.metrics_urls().items():
        assert printed[f"metrics: {name}"] == url
