"""Schedulers, workers and the outbox under failure, on real NATS and PostgreSQL.

This module runs its own analytics deployment — an API process, two
schedulers and two workers on a NATS server and database of its own — so it
can kill NATS and workers without disturbing the shared test stack.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import Counter
from collections.abc import Iterator

import grpc
import nats
import pytest

from local_stack.ports import free_port
from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.events.v1 import events_pb2
from mesh_runtime import streams
from tests.analytics_svc.deployment import LEASE_SECONDS, Deployment, create_dataset, wait_all_finished
from tests.clients import authed_channel
from tests.conftest import RunningStack
from tests.eventually import eventually


@pytest.fixture(scope="module")
def deployment(mesh: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(mesh, tmp_path_factory.mktemp("jobs"), f"jobs_{secrets.token_hex(4)}")
    try:
        d.create_database()
        d.start_nats()
        d.start_analytics("api", "analytics_svc")
        for role in ("scheduler", "worker"):
            for n in (1, 2):
                d.start_analytics(f"{role}-{n}", f"analytics_svc.jobs.{role}")
        yield d
    finally:
        d.close()


@pytest.fixture
def channel(deployment: Deployment) -> Iterator[grpc.Channel]:
    with authed_channel(f"127.0.0.1:{deployment.api_port}", deployment.mesh.tokens["analyst"]) as channel:
        yield channel


def _pending_outbox(d: Deployment, min_attempts: int = 0) -> int:
    statement = "SELECT count(*) FROM outbox WHERE publish_time IS NULL AND attempts >= %s"
    return int(d.query(statement, (min_attempts,))[0][0])


def _wait_outbox_empty(d: Deployment, timeout: float = 60) -> None:
    eventually(lambda: _pending_outbox(d) == 0, timeout, "the outbox to drain", interval=0.3)


def _restore_workers(d: Deployment, *temporary: str) -> None:
    """Stop a test's own workers and bring back worker-1 and worker-2 for the next test."""
    for name in temporary:
        d.stop(name)
    for name in ("worker-1", "worker-2"):
        if name not in d.processes:
            d.start_analytics(name, "analytics_svc.jobs.worker")


def _events(d: Deployment) -> list[events_pb2.Event]:
    """Every event in the deployment's MESH_EVENTS stream."""

    async def read() -> list[events_pb2.Event]:
        nc = await nats.connect(d.nats_url)
        try:
            js = nc.jetstream()
            info = await js.stream_info(streams.EVENTS_STREAM)
            out = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await js.get_msg(streams.EVENTS_STREAM, seq)
                assert msg.headers and msg.headers.get("Nats-Msg-Id")
                event = events_pb2.Event.FromString(msg.data or b"")
                assert msg.headers["Nats-Msg-Id"] == event.event_id
                assert msg.subject == streams.event_subject(event)
                out.append(event)
            return out
        finally:
            await nc.close()

    return d.run(read())


def _succeeded_ids(events: list[events_pb2.Event]) -> list[str]:
    return [e.result_succeeded.result_id for e in events if e.WhichOneof("payload") == "result_succeeded"]


def _run(stub: pb_grpc.AnalyticsServiceStub, dataset_id: str, count: int) -> list[str]:
    return [
        stub.RunAnalysis(
            pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_SUMMARY), timeout=10
        ).result.id
        for _ in range(count)
    ]


def test_two_workers_share_the_jobs_and_none_runs_twice(deployment: Deployment, channel: grpc.Channel) -> None:
    stub = deployment.stub(channel)
    ids = _run(stub, create_dataset(stub), 60)
    wait_all_finished(deployment, ids)
    attempts = deployment.query(
        "SELECT attempts, status, count(*) FROM analysis_result WHERE id = ANY(%s::uuid[]) GROUP BY 1, 2", (ids,)
    )
    assert attempts == [(1, 3, 60)]  # each ran once, and succeeded
    per_worker = [deployment.log(f"worker-{n}").count('"analysis finished"') for n in (1, 2)]
    assert sum(per_worker) >= 60 and all(per_worker), per_worker  # both took a share
    _wait_outbox_empty(deployment)
    mine = set(ids)
    succeeded = Counter(i for i in _succeeded_ids(_events(deployment)) if i in mine)
    assert succeeded == dict.fromkeys(ids, 1)  # one event each


def test_two_schedulers_fire_every_tick_exactly_once(deployment: Deployment, channel: grpc.Channel) -> None:
    stub = deployment.stub(channel)
    dataset_id = create_dataset(stub)
    schedules = [
        stub.CreateSchedule(
            pb.CreateScheduleRequest(
                schedule=apb.Schedule(
                    dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_SUMMARY, interval_seconds=1, enabled=True
                )
            ),
            timeout=10,
        ).schedule
        for _ in range(4)
    ]

    def ticks_of(schedule_id: str) -> int:
        statement = "SELECT count(*) FROM analysis_result WHERE schedule_id = %s"
        return int(deployment.query(statement, (schedule_id,))[0][0])

    eventually(
        lambda: all(ticks_of(s.id) >= 3 for s in schedules), 60, "every schedule to fire three times", interval=0.3
    )
    for schedule in schedules:
        mask = pb.UpdateScheduleRequest().update_mask
        mask.paths.append("enabled")
        stub.UpdateSchedule(
            pb.UpdateScheduleRequest(schedule=apb.Schedule(id=schedule.id, enabled=False), update_mask=mask),
            timeout=10,
        )
    for schedule in schedules:
        ticks = [
            row[0]
            for row in deployment.query(
                "SELECT scheduled_time FROM analysis_result WHERE schedule_id = %s ORDER BY 1", (schedule.id,)
            )
        ]
        assert len(ticks) >= 3
        # Consecutive ticks exactly one interval apart: none doubled, none skipped.
        assert {b - a for a, b in zip(ticks, ticks[1:], strict=False)} == {dt.timedelta(seconds=1)}
        first = schedule.next_run_time.ToDatetime(dt.UTC)
        assert ticks[0] == first
    fired = sum(deployment.log(f"scheduler-{n}").count('"fired schedules"') for n in (1, 2))
    assert fired > 0
    stored = stub.GetSchedule(pb.GetScheduleRequest(id=schedules[0].id), timeout=10).schedule
    assert not stored.enabled and not stored.HasField("next_run_time") and stored.last_result_id


def test_nats_killed_mid_stream_loses_and_duplicates_no_event(
    deployment: Deployment, channel: grpc.Channel
) -> None:
    stub = deployment.stub(channel)
    dataset_id = create_dataset(stub)
    first = _run(stub, dataset_id, 30)
    deployment.kill("nats")
    # While NATS is down the API still takes work: it goes to the outbox.
    second = _run(stub, dataset_id, 20)
    # Let the relays try each of the new rows twice: with NATS down nothing may leave the outbox.
    eventually(lambda: _pending_outbox(deployment, min_attempts=2) >= 20, 60, "two failed relay rounds", interval=0.3)
    assert _pending_outbox(deployment) >= 20
    deployment.start_nats()  # same store: JetStream keeps what it had
    ids = first + second
    wait_all_finished(deployment, ids, timeout=120)
    _wait_outbox_empty(deployment)
    mine = set(ids)
    succeeded = Counter(i for i in _succeeded_ids(_events(deployment)) if i in mine)
    assert succeeded == dict.fromkeys(ids, 1)  # every result once: none lost, none twice


def test_a_job_whose_worker_dies_is_run_again_by_another(deployment: Deployment, channel: grpc.Channel) -> None:
    stub = deployment.stub(channel)
    big = create_dataset(stub, points=2_000_000)  # long enough to kill the worker mid-run
    result_id = stub.RunAnalysis(
        pb.RunAnalysisRequest(dataset_id=big, kind=apb.ANALYSIS_KIND_REPORT), timeout=10
    ).result.id
    eventually(
        lambda: deployment.query("SELECT status FROM analysis_result WHERE id = %s", (result_id,))[0][0] == 2,
        30,
        "the job to start",
        interval=0.05,
    )
    try:
        deployment.kill("worker-1")
        deployment.kill("worker-2")
        deployment.start_analytics("worker-3", "analytics_svc.jobs.worker")
        wait_all_finished(deployment, [result_id], timeout=120)
        status, attempts = deployment.query(
            "SELECT status, attempts FROM analysis_result WHERE id = %s", (result_id,)
        )[0]
        off = apb.INSIGHT_STATUS_UNSPECIFIED
        assert not deployment.query("SELECT 1 FROM analysis_result WHERE insight_status <> %s", (off,))  # insights off
        # The sweeper handed it back; the new worker finished it.
        assert (status, attempts) == (apb.RESULT_STATUS_SUCCEEDED, 2)
        result = stub.GetResult(pb.GetResultRequest(id=result_id), timeout=10).result
        assert result.output.summary.count == 2_000_000
    finally:
        _restore_workers(deployment, "worker-3")


def _jobs_in_flight(d: Deployment) -> int:
    """Job messages JetStream still holds for the workers (queued or unacknowledged)."""

    async def read() -> int:
        nc = await nats.connect(d.nats_url)
        try:
            info = await nc.jetstream().consumer_info(streams.JOBS_STREAM, streams.JOBS_CONSUMER)
            return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        finally:
            await nc.close()

    return d.run(read())


def test_a_dataset_deleted_while_its_analysis_runs_ends_the_job_in_one_line(
    deployment: Deployment, channel: grpc.Channel
) -> None:
    stub = deployment.stub(channel)
    logs_before = {n: len(deployment.log(n)) for n in ("worker-1", "worker-2")}
    big = create_dataset(stub, points=2_000_000)
    request = pb.RunAnalysisRequest(dataset_id=big, kind=apb.ANALYSIS_KIND_REPORT)
    result_id = str(stub.RunAnalysis(request, timeout=10).result.id)
    status_now = "SELECT status FROM analysis_result WHERE id = %s"
    eventually(lambda: deployment.query(status_now, (result_id,))[0][0] == 2, 30, "the job to start", interval=0.05)
    stub.DeleteDataset(pb.DeleteDatasetRequest(id=big), timeout=30)

    def new_log() -> str:
        return "".join(deployment.log(n)[start:] for n, start in logs_before.items())

    def lines_about_it() -> list[str]:
        return [line for line in new_log().splitlines() if result_id in line]

    (line,) = eventually(lines_about_it, 120, lambda: f"a log line about {result_id}:\n{new_log()[-2000:]}")
    assert "its dataset was deleted" in line and '"level": "info"' in line, line
    # The job is over: acknowledged, not retried, and nothing else was logged about it.
    eventually(lambda: _jobs_in_flight(deployment) == 0, 60, "the job message acknowledged")
    assert lines_about_it() == [line]
    assert "Traceback" not in new_log()
    # The workers carry on.
    (next_id,) = _run(stub, create_dataset(stub), 1)
    wait_all_finished(deployment, [next_id])


def test_a_killed_workers_jobs_are_taken_over_by_the_other_after_the_lease(
    deployment: Deployment, channel: grpc.Channel
) -> None:
    """Both workers busy; one is SIGKILLed and not restarted. The jobs it was
    running are run again by the other once their lease (3 s here) has run
    out since the dead worker's last heartbeat, not before."""
    stub = deployment.stub(channel)
    big = create_dataset(stub, points=1_000_000)
    request = pb.RunAnalysisRequest(dataset_id=big, kind=apb.ANALYSIS_KIND_REPORT)
    ids = [str(stub.RunAnalysis(request, timeout=10).result.id) for _ in range(6)]

    def running() -> dict[str, dt.datetime]:
        """Running results and their last heartbeat."""
        statement = "SELECT id::text, heartbeat_time FROM analysis_result WHERE id = ANY(%s::uuid[]) AND status = %s"
        return {str(i): t for i, t in deployment.query(statement, (ids, apb.RESULT_STATUS_RUNNING))}

    eventually(lambda: len(running()) >= 3, 60, "both workers running jobs", interval=0.05)
    try:
        deployment.kill("worker-1")
        at_kill = running()
        # Recovery is bounded by the lease: lease + a sweep (5 s) + the runs themselves, with room for a busy machine.
        wait_all_finished(deployment, ids, timeout=10 * LEASE_SECONDS + 180)
        rows = deployment.query(
            "SELECT id::text, status, attempts, start_time FROM analysis_result WHERE id = ANY(%s::uuid[])", (ids,)
        )
        assert {status for _, status, _, _ in rows} == {3}  # every job succeeded
        taken_over = [(i, start) for i, _, attempts, start in rows if attempts == 2]
        assert taken_over, "none of the killed worker's jobs was run again"
        assert all(attempts <= 2 for _, _, attempts, _ in rows)
        for result_id, started in taken_over:
            # Claimed again only once the dead worker's last heartbeat was a lease old.
            assert started >= at_kill[result_id] + dt.timedelta(seconds=LEASE_SECONDS), result_id
    finally:
        _restore_workers(deployment)



def test_an_llm_outage_neither_fails_nor_delays_an_analysis(deployment: Deployment, channel: grpc.Channel) -> None:
    stub = deployment.stub(channel)
    dataset_id = create_dataset(stub)
    try:
        deployment.kill("worker-1")
        deployment.kill("worker-2")
        # The only worker now reaches an LLM service that is down.
        deployment.start_analytics(
            "worker-llm-down",
            "analytics_svc.jobs.worker",
            LLM_ADDR=f"127.0.0.1:{free_port()}",
            ANALYTICS_INSIGHT_TIMEOUT_SECONDS="1",
            ANALYTICS_INSIGHT_MAX_ATTEMPTS="2",
            ANALYTICS_INSIGHT_RETRY_SECONDS="0.5",
        )
        (result_id,) = _run(stub, dataset_id, 1)
        wait_all_finished(deployment, [result_id], timeout=30)
        result = stub.GetResult(pb.GetResultRequest(id=result_id), timeout=10).result
        assert result.status == apb.RESULT_STATUS_SUCCEEDED
        assert result.output.summary.count == 200
        assert result.insight.status in (apb.INSIGHT_STATUS_PENDING, apb.INSIGHT_STATUS_UNAVAILABLE)
        # The events went out after the first failed attempt, without an insight.
        _wait_outbox_empty(deployment, timeout=20)
        (event,) = [e for e in _events(deployment) if e.result_succeeded.result_id == result_id]
        assert event.result_succeeded.insight == ""

        def given_up() -> apb.Result | None:
            latest = stub.GetResult(pb.GetResultRequest(id=result_id), timeout=10).result
            return latest if latest.insight.status == apb.INSIGHT_STATUS_UNAVAILABLE else None

        result = eventually(given_up, 30, "the insight to be given up on", interval=0.3)
        assert result.insight.attempts == 2
        assert "UNAVAILABLE" in result.insight.error
    finally:
        _restore_workers(deployment, "worker-llm-down")
