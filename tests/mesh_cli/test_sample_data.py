"""`mesh sample-data`: realistic series whose injected anomalies the
analyses find, loaded through the API into the test stack."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid

import numpy as np

from analytics_svc.analyses import numeric
from local_stack.paths import ROOT
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from sample_data import series as sample_data
from tests.conftest import RunningStack

END = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def test_series_are_regular_and_their_anomalies_are_detectable() -> None:
    series = sample_data.generate(sample_data.KINDS[0], 20_000, END, 60.0, seed=7)
    assert series.values.size == 20_000 and np.all(np.isfinite(series.values))
    assert np.all(np.diff(series.timestamps_us) == 60_000_000)
    assert series.timestamps_us[-1] == int(END.timestamp() * 1e6)
    found = numeric.robust_anomalies(series.timestamps_us, series.values, threshold=3.5)
    found_at = {a.timestamp_us for a in found.anomalies}
    injected_at = set(series.timestamps_us[series.anomaly_indices].tolist())
    assert injected_at <= found_at
    assert sample_data.generate(sample_data.KINDS[0], 100, END, 60.0, seed=7).values.tolist() == (
        sample_data.generate(sample_data.KINDS[0], 100, END, 60.0, seed=7).values.tolist()
    )


def cli(mesh: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MESH_STATE_DIR": str(mesh.settings.state_dir),
        "MESH_POSTGRES_PORT": str(mesh.settings.postgres_port),
        "ANALYTICS_GRPC_PORT": str(mesh.settings.analytics_port),
    }
    return subprocess.run(
        [sys.executable, "-m", "mesh_cli", "sample-data", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sample_data_loads_through_the_api(mesh: RunningStack) -> None:
    prefix = f"s{uuid.uuid4().hex[:6]}"
    result = cli(
        mesh, "--user", mesh.credentials["analyst"][0], "--datasets", "2", "--points", "30000", "--prefix", prefix
    )
    assert result.returncode == 0, result.stderr
    assert "30,000/30,000" in result.stderr  # the progress bar reached the end
    with mesh.channel(mesh.analytics, "viewer") as channel:
        listed = pb_grpc.AnalyticsServiceStub(channel).ListDatasets(pb.ListDatasetsRequest(page_size=1000), timeout=10)
    mine = {d.name: d for d in listed.datasets if d.name.startswith(prefix)}
    assert set(mine) == {f"{prefix}-cpu-load", f"{prefix}-orders-per-minute"}
    for dataset in mine.values():
        assert dataset.point_count == 30_000
        span = dataset.last_point_time.ToSeconds() - dataset.first_point_time.ToSeconds()
        assert span == 60 * (30_000 - 1)


def test_bad_arguments_and_viewers_are_refused(mesh: RunningStack) -> None:
    result = cli(mesh, "--user", mesh.credentials["analyst"][0], "--points", "-5")
    assert result.returncode == 2 and "points" in result.stderr and "Traceback" not in result.stderr
    result = cli(mesh, "--user", mesh.credentials["viewer"][0], "--datasets", "1", "--points", "100")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "analytics refused" in result.stderr
