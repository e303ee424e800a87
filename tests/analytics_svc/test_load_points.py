"""Reading a dataset's points back into numpy with binary COPY."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from analytics_svc import store
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from mesh_cli import infra
from mesh_runtime.database import connect
from mesh_runtime.errors import NotFound
from tests.conftest import RunningStack


@pytest.fixture(scope="module")
def bound_store(mesh: RunningStack) -> Iterator[None]:
    db = connect(infra.postgres_dsn(mesh.settings.postgres_port, "analytics"), max_connections=1)
    store.bind(db)
    with db.connection_context():
        yield


def test_points_come_back_exactly_in_time_order(mesh: RunningStack, bound_store: None) -> None:
    rng = np.random.default_rng(3)
    ts = 1_600_000_000_000_000 + np.sort(rng.choice(10**12, size=5000, replace=False)).astype(np.int64)
    values = rng.normal(0, 1e6, ts.size)
    values[7] = -0.0
    values[8] = 5e-324  # the smallest double survives the round trip
    with mesh.channel(mesh.analytics, "analyst") as channel:
        stub = pb_grpc.AnalyticsServiceStub(channel)
        dataset = stub.CreateDataset(
            pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"load-{uuid.uuid4().hex[:8]}")), timeout=10
        ).dataset
        order = rng.permutation(ts.size)  # arrival order must not matter
        stub.AppendPoints(
            pb.AppendPointsRequest(
                dataset_id=dataset.id, timestamps_us=ts[order].tolist(), values=values[order].tolist()
            ),
            timeout=30,
        )
    got_ts, got_values = store.load_points(dataset.id)
    assert got_ts.dtype == np.int64 and got_values.dtype == np.float64
    np.testing.assert_array_equal(got_ts, ts)
    np.testing.assert_array_equal(got_values, values)

    window_ts, window_values = store.load_points(dataset.id, start_us=int(ts[100]), end_us=int(ts[200]))
    np.testing.assert_array_equal(window_ts, ts[100:200])
    np.testing.assert_array_equal(window_values, values[100:200])

    empty_ts, empty_values = store.load_points(dataset.id, start_us=int(ts[-1]) + 1)
    assert empty_ts.size == 0 and empty_values.size == 0


def test_unknown_dataset_is_not_found(bound_store: None) -> None:
    with pytest.raises(NotFound):
        store.load_points(str(uuid.uuid4()))
    with pytest.raises(NotFound):
        store.load_points("not-a-uuid")

