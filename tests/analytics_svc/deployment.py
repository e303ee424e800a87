"""A private analytics deployment for the reliability suites: the API,
schedulers and workers as processes of their own, on a NATS server and a
database of their own (on a PostgreSQL server of their own when a test
kills it), so tests can kill any of them without disturbing the shared stack."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import grpc
import numpy as np

from local_stack.ports import free_port
from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from tests.eventually import eventually
from tests.rig import ProcessRig

# The job lease the deployments run with: short, so lost jobs come back quickly.
LEASE_SECONDS = 3


@dataclass
class Deployment(ProcessRig):
    """A separate analytics deployment: processes by name ("nats", "api",
    "scheduler-<n>", "worker-<n>", maybe "postgres"), its NATS and database."""

    api_port: int = field(default_factory=free_port)

    @property
    def env(self) -> dict[str, str]:
        """What every analytics process of the deployment runs with."""
        return {
            "ANALYTICS_DATABASE_URL": self.database_url,
            "ANALYTICS_GRPC_PORT": str(self.api_port),
            "NATS_URL": self.nats_url,
            "LLM_ADDR": "off",  # no insights here: events go out at once
            "ANALYTICS_JOB_LEASE_SECONDS": str(LEASE_SECONDS),
            "ANALYTICS_JOB_REQUEUE_SECONDS": "30",
            "ANALYTICS_SCHEDULER_TICK_SECONDS": "0.2",
            "MESH_LOG_FORMAT": "json",
        }

    def start_analytics(self, name: str, module: str, **env: str) -> None:
        """``python -m module`` (the API, a scheduler or a worker) with ``env`` over the deployment's."""
        health = free_port()
        port = self.api_port if module == "analytics_svc" else health
        self.start_service(name, module, {**self.env, **env, "MESH_HEALTH_PORT": str(health)}, ready_port=port)

    def stub(self, channel: grpc.Channel) -> pb_grpc.AnalyticsServiceStub:
        return pb_grpc.AnalyticsServiceStub(channel)


def create_dataset(stub: pb_grpc.AnalyticsServiceStub, points: int = 200) -> str:
    """A new dataset of ``points`` normal values a second apart; its id."""
    dataset = stub.CreateDataset(
        pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"rel-{uuid.uuid4().hex[:10]}")), timeout=10
    ).dataset
    ts = 1_700_000_000_000_000 + np.arange(points, dtype=np.int64) * 1_000_000
    values = np.random.default_rng(1).normal(0, 1, points)
    for start in range(0, points, 100_000):
        stub.AppendPoints(
            pb.AppendPointsRequest(
                dataset_id=dataset.id,
                timestamps_us=ts[start : start + 100_000].tolist(),
                values=values[start : start + 100_000].tolist(),
            ),
            timeout=60,
        )
    return str(dataset.id)


def finished_count(d: Deployment, ids: list[str]) -> int:
    """How many results of ``ids`` have succeeded or failed (read from the database)."""
    statement = "SELECT count(*) FROM analysis_result WHERE id = ANY(%s::uuid[]) AND status = ANY(%s)"
    return int(d.query(statement, (ids, [apb.RESULT_STATUS_SUCCEEDED, apb.RESULT_STATUS_FAILED]))[0][0])


def wait_all_finished(d: Deployment, ids: list[str], timeout: float = 90) -> None:
    """Until every result of ``ids`` has succeeded or failed."""
    eventually(
        lambda: finished_count(d, ids) == len(ids),
        timeout,
        lambda: f"all {len(ids)} results to finish (finished: {finished_count(d, ids)})",
        interval=0.3,
    )
