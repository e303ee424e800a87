"""Retention: a dataset's points older than its retention are deleted by the
schedulers, the dataset's count and time range follow, others are untouched."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from analytics_svc import schema
from analytics_svc.jobs import scheduler
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from mesh_runtime.database import connect
from mesh_runtime.wire import datetime_to_us
from tests.analytics_svc.deployment import Deployment
from tests.analytics_svc.test_point_queries import append
from tests.clients import authed_channel
from tests.conftest import RunningStack
from tests.eventually import eventually

HOUR_US = 3_600_000_000
HOUR = duration_pb2.Duration(seconds=3600)


def dataset_with_points(
    stub: pb_grpc.AnalyticsServiceStub, now_us: int, retention: duration_pb2.Duration | None
) -> tuple[str, np.ndarray]:
    """A dataset with points 3 h and 2 h old, 59 min old, and an hour ahead."""
    dataset = dataset_pb2.Dataset(name=f"retain-{uuid.uuid4().hex[:8]}")
    if retention is not None:
        dataset.retention.CopyFrom(retention)
    dataset_id = stub.CreateDataset(pb.CreateDatasetRequest(dataset=dataset), timeout=10).dataset.id
    ts = now_us + np.array([-3 * HOUR_US, -2 * HOUR_US, -59 * 60_000_000, HOUR_US], dtype=np.int64)
    append(stub, dataset_id, ts, np.array([1.0, 2.0, 3.0, 4.0]))
    return str(dataset_id), ts


def timestamps(stub: pb_grpc.AnalyticsServiceStub, dataset_id: str) -> list[int]:
    return list(stub.QueryPoints(pb.QueryPointsRequest(dataset_id=dataset_id), timeout=10).points.timestamps_us)


@pytest.fixture(scope="module")
def bound_schema(mesh: RunningStack) -> Iterator[None]:
    db = connect(mesh.database_url("analytics"), max_connections=1)
    schema.bind(db)
    with db.connection_context():
        yield


def test_a_retention_pass_drops_only_points_past_retention(analytics_channel: grpc.Channel, bound_schema: None) -> None:
    stub = pb_grpc.AnalyticsServiceStub(analytics_channel)
    now = dt.datetime.now(dt.UTC)
    now_us = datetime_to_us(now)
    kept_an_hour, ts = dataset_with_points(stub, now_us, HOUR)
    kept_forever, forever_ts = dataset_with_points(stub, now_us, None)

    assert scheduler.apply_retention(now) >= 2  # other tests' datasets may have old points too
    assert timestamps(stub, kept_an_hour) == ts[2:].tolist()
    dataset = stub.GetDataset(pb.GetDatasetRequest(id=kept_an_hour), timeout=10).dataset
    assert dataset.point_count == 2 and dataset.first_point_time.ToMicroseconds() == int(ts[2])
    assert timestamps(stub, kept_forever) == forever_ts.tolist()

    # Nothing more to drop at the same moment; an hour later the next point goes.
    scheduler.apply_retention(now)
    assert timestamps(stub, kept_an_hour) == ts[2:].tolist()
    scheduler.apply_retention(now + dt.timedelta(hours=1))
    assert timestamps(stub, kept_an_hour) == ts[3:].tolist()

    # A retention set later applies from the next pass on.
    stub.UpdateDataset(
        pb.UpdateDatasetRequest(
            dataset=dataset_pb2.Dataset(id=kept_forever, retention=duration_pb2.Duration(seconds=150 * 60)),
            update_mask=field_mask_pb2.FieldMask(paths=["retention"]),
        ),
        timeout=10,
    )
    scheduler.apply_retention(now)
    assert timestamps(stub, kept_forever) == forever_ts[1:].tolist()


@pytest.fixture(scope="module")
def deployment(mesh: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The API and two schedulers of a private deployment, retention passes every 0.3 s."""
    d = Deployment(mesh, tmp_path_factory.mktemp("retention"), f"retention_{secrets.token_hex(4)}")
    try:
        d.create_database()
        d.start_nats()
        d.start_analytics("api", "analytics_svc")
        for n in (1, 2):
            d.start_analytics(
                f"scheduler-{n}", "analytics_svc.jobs.scheduler", ANALYTICS_RETENTION_INTERVAL_SECONDS="0.3"
            )
        yield d
    finally:
        d.close()


def test_the_schedulers_enforce_retention(deployment: Deployment) -> None:
    with authed_channel(f"127.0.0.1:{deployment.api_port}", deployment.mesh.tokens["analyst"]) as channel:
        stub = pb_grpc.AnalyticsServiceStub(channel)
        now_us = datetime_to_us(dt.datetime.now(dt.UTC))
        dataset_id, ts = dataset_with_points(stub, now_us, HOUR)
        untouched, untouched_ts = dataset_with_points(stub, now_us, None)
        eventually(lambda: timestamps(stub, dataset_id) == ts[2:].tolist(), 30, "the schedulers to drop old points")
        dataset = stub.GetDataset(pb.GetDatasetRequest(id=dataset_id), timeout=10).dataset
        assert dataset.point_count == 2
        assert timestamps(stub, untouched) == untouched_ts.tolist()
