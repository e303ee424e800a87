"""PostgreSQL killed and started again under a running analytics deployment.

The deployment (API, scheduler, worker, NATS) runs on a PostgreSQL server of
its own, so the tests can SIGKILL it without disturbing the shared stack.
Nothing but PostgreSQL is restarted: the API, scheduler and worker recover
by themselves.
"""

from __future__ import annotations

import queue
import secrets
import threading
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from tests.analytics_svc.deployment import LEASE_SECONDS, Deployment, create_dataset, wait_all_finished
from tests.clients import authed_channel
from tests.conftest import RunningStack
from tests.eventually import eventually

SERVICE = "mesh.analytics.v1.AnalyticsService"
SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def deployment(mesh: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(mesh, tmp_path_factory.mktemp("pg-restart"), f"restart_{secrets.token_hex(4)}")
    try:
        d.start_postgres()
        d.create_database()
        d.start_nats()
        d.start_analytics("api", "analytics_svc")
        d.start_analytics("scheduler-1", "analytics_svc.jobs.scheduler")
        d.start_analytics("worker-1", "analytics_svc.jobs.worker")
        yield d
    finally:
        d.close()


@pytest.fixture
def stub(deployment: Deployment) -> Iterator[pb_grpc.AnalyticsServiceStub]:
    with authed_channel(f"127.0.0.1:{deployment.api_port}", deployment.mesh.tokens["analyst"]) as channel:
        yield pb_grpc.AnalyticsServiceStub(channel)


def service_health(d: Deployment) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{d.api_port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)
    return int(reply.status)


class Watcher:
    """A WatchResults stream read on a thread: what it received, and how it ended."""

    def __init__(self, stub: pb_grpc.AnalyticsServiceStub, dataset_id: str) -> None:
        self.results: queue.Queue[apb.Result] = queue.Queue()
        self.ended: grpc.StatusCode | None = None
        self.call = stub.WatchResults(pb.WatchResultsRequest(dataset_id=dataset_id), timeout=300)
        self.call.initial_metadata()  # established: no change from here on is missed
        if self.call.done() and self.call.code() != grpc.StatusCode.OK:
            raise self.call  # refused (e.g. UNAVAILABLE while the change feed is down)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for reply in self.call:
                self.results.put(reply.result)
        except grpc.RpcError as exc:
            self.ended = exc.code()  # type: ignore[attr-defined]

    def succeeded(self, result_id: str, timeout: float = 60) -> apb.Result:
        """The first update of ``result_id`` that says it succeeded."""

        def next_success() -> apb.Result | None:
            result = self.results.get(timeout=1)
            return result if result.id == result_id and result.status == apb.RESULT_STATUS_SUCCEEDED else None

        found = eventually(
            next_success, timeout, f"the watch to report {result_id} succeeded", interval=0, retry_on=(queue.Empty,)
        )
        assert found is not None
        return found

    def close(self) -> None:
        self.call.cancel()
        self.thread.join(10)


def run_summary(stub: pb_grpc.AnalyticsServiceStub, dataset_id: str) -> str:
    request = pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_SUMMARY)
    return str(stub.RunAnalysis(request, timeout=10).result.id)


def listed_status(stub: pb_grpc.AnalyticsServiceStub, dataset_id: str, result_id: str) -> int:
    results = stub.ListResults(pb.ListResultsRequest(dataset_id=dataset_id), timeout=10).results
    return next(r.status for r in results if r.id == result_id)


def test_results_and_watchers_recover_from_a_postgres_restart(
    deployment: Deployment, stub: pb_grpc.AnalyticsServiceStub
) -> None:
    dataset_id = create_dataset(stub)
    before = Watcher(stub, dataset_id)
    try:
        first = run_summary(stub, dataset_id)
        before.succeeded(first)
        assert listed_status(stub, dataset_id, first) == apb.RESULT_STATUS_SUCCEEDED  # now a cached page
        deployment.kill("postgres")
        # While PostgreSQL is away the API says it cannot serve fresh reads, and
        # watchers are told to list and watch again instead of hearing nothing.
        eventually(lambda: service_health(deployment) != SERVING, 60, "the service NOT_SERVING")
        eventually(lambda: before.ended, 60, "the watch to end")
        assert before.ended == grpc.StatusCode.UNAVAILABLE
    finally:
        before.close()

    deployment.start_postgres()  # the same data; nothing else is restarted
    eventually(lambda: service_health(deployment) == SERVING, 60, "the service SERVING again")
    after = eventually(lambda: Watcher(stub, dataset_id), 60, "a new watch", retry_on=(grpc.RpcError,))
    try:
        second = eventually(lambda: run_summary(stub, dataset_id), 60, "RunAnalysis", retry_on=(grpc.RpcError,))
        # A list read while the result is pending must not be served once it has succeeded.
        eventually(lambda: listed_status(stub, dataset_id, second), 60, "a first listing", retry_on=(grpc.RpcError,))
        assert after.succeeded(second).status == apb.RESULT_STATUS_SUCCEEDED
        assert listed_status(stub, dataset_id, second) == apb.RESULT_STATUS_SUCCEEDED
        assert listed_status(stub, dataset_id, first) == apb.RESULT_STATUS_SUCCEEDED
        got = stub.GetResult(pb.GetResultRequest(id=second), timeout=10).result
        assert got.status == apb.RESULT_STATUS_SUCCEEDED and got.output.summary.count == 200
    finally:
        after.close()
    for name in ("api", "scheduler-1", "worker-1"):
        assert "Traceback" not in deployment.log(name), name


def test_postgres_dying_under_a_running_analysis_ends_in_a_retried_result(
    deployment: Deployment, stub: pb_grpc.AnalyticsServiceStub
) -> None:
    big = eventually(lambda: create_dataset(stub, points=2_000_000), 120, "a dataset", retry_on=(grpc.RpcError,))
    request = pb.RunAnalysisRequest(dataset_id=big, kind=apb.ANALYSIS_KIND_REPORT)
    result_id = str(stub.RunAnalysis(request, timeout=10).result.id)
    status_now = "SELECT status FROM analysis_result WHERE id = %s"
    eventually(lambda: deployment.query(status_now, (result_id,))[0][0] == 2, 30, "the analysis to start")
    deployment.kill("postgres")
    deployment.start_postgres()
    # The worker's lease on the job lapses while PostgreSQL is away; the job is run again.
    wait_all_finished(deployment, [result_id], timeout=20 * LEASE_SECONDS + 120)
    status, error = deployment.query("SELECT status, error FROM analysis_result WHERE id = %s", (result_id,))[0]
    assert (status, error) == (3, "")  # succeeded on a retry
    worker_log = deployment.log("worker-1")
    assert "Traceback" not in worker_log
    about_it = [line for line in worker_log.splitlines() if result_id in line]
    # At most one line for the outage (when the worker needed the database while
    # it was away), however many times the job came back meanwhile; then done.
    assert sum("job failed on the database; it will be retried" in line for line in about_it) <= 1, about_it
    assert sum('"analysis finished"' in line for line in about_it) == 1, about_it
