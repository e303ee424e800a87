"""Schedules through gRPC and REST: create, read, list, update, delete, refuse bad input,
and a schedule firing on the shared stack (two schedulers, two workers)."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import grpc
import httpx
import pytest

from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from tests.analytics_svc.test_results import make_dataset


@pytest.fixture
def stub(analytics_channel: grpc.Channel) -> pb_grpc.AnalyticsServiceStub:
    return pb_grpc.AnalyticsServiceStub(analytics_channel)


def _mask(*paths: str) -> pb.UpdateScheduleRequest:
    request = pb.UpdateScheduleRequest()
    request.update_mask.paths.extend(paths)
    return request


def test_schedule_lifecycle(stub: pb_grpc.AnalyticsServiceStub) -> None:
    dataset_id = make_dataset(stub, [1.0, 2.0, 3.0])
    before = dt.datetime.now(dt.UTC)
    created = stub.CreateSchedule(
        pb.CreateScheduleRequest(
            schedule=apb.Schedule(
                dataset_id=dataset_id,
                kind=apb.ANALYSIS_KIND_ANOMALIES,
                parameters=apb.AnalysisParameters(anomaly_threshold=4, lookback_seconds=86400),
                cron="0 6 * * MON-FRI",
                time_zone="Europe/Paris",
                enabled=True,
            )
        ),
        timeout=10,
    ).schedule
    assert created.dataset_name.startswith("res-")
    next_run = created.next_run_time.ToDatetime(dt.UTC)
    assert next_run > before and next_run.weekday() < 5
    assert next_run.astimezone(dt.timezone(dt.timedelta(hours=1))).hour in (6, 7)  # 06:00 Paris, CET or CEST
    assert stub.GetSchedule(pb.GetScheduleRequest(id=created.id), timeout=10).schedule == created

    request = _mask("interval_seconds", "enabled")
    request.schedule.id = created.id
    request.schedule.interval_seconds = 3600
    request.schedule.enabled = False
    updated = stub.UpdateSchedule(request, timeout=10).schedule
    assert updated.interval_seconds == 3600 and updated.WhichOneof("trigger") == "interval_seconds"
    assert not updated.enabled and not updated.HasField("next_run_time")
    assert updated.parameters.anomaly_threshold == 4  # not in the mask: unchanged

    request = _mask("enabled")
    request.schedule.id = created.id
    request.schedule.enabled = True
    enabled = stub.UpdateSchedule(request, timeout=10).schedule
    gap = enabled.next_run_time.ToDatetime(dt.UTC) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=59) < gap <= dt.timedelta(hours=1)

    listed = stub.ListSchedules(pb.ListSchedulesRequest(dataset_id=dataset_id), timeout=10).schedules
    assert [s.id for s in listed] == [created.id]
    stub.DeleteSchedule(pb.DeleteScheduleRequest(id=created.id), timeout=10)
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetSchedule(pb.GetScheduleRequest(id=created.id), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        (apb.Schedule(kind=apb.ANALYSIS_KIND_SUMMARY, interval_seconds=60), "schedule.dataset_id"),
        (apb.Schedule(interval_seconds=60), "schedule.kind"),
        (apb.Schedule(kind=apb.ANALYSIS_KIND_SUMMARY), "schedule.trigger"),
        (apb.Schedule(kind=apb.ANALYSIS_KIND_SUMMARY, cron="not a cron"), "schedule.cron"),
        (
            apb.Schedule(kind=apb.ANALYSIS_KIND_SUMMARY, cron="* * * * *", time_zone="Nowhere/Town"),
            "schedule.time_zone",
        ),
        (apb.Schedule(kind=apb.ANALYSIS_KIND_SUMMARY, interval_seconds=0), "schedule.interval_seconds"),
        (apb.Schedule(kind=apb.ANALYSIS_KIND_CORRELATION, interval_seconds=60),
         "schedule.parameters.correlate_with_dataset_id"),
    ],
)
def test_bad_schedules_are_refused_with_the_field(
    stub: pb_grpc.AnalyticsServiceStub, schedule: apb.Schedule, field: str
) -> None:
    if field != "schedule.dataset_id":
        schedule.dataset_id = make_dataset(stub, [])
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateSchedule(pb.CreateScheduleRequest(schedule=schedule), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (caught.value.details() or ""), caught.value.details()


def test_unknown_dataset_or_schedule_is_not_found(stub: pb_grpc.AnalyticsServiceStub) -> None:
    missing = str(uuid.uuid4())
    for call in (
        lambda: stub.CreateSchedule(
            pb.CreateScheduleRequest(
                schedule=apb.Schedule(dataset_id=missing, kind=apb.ANALYSIS_KIND_SUMMARY, interval_seconds=60)
            ),
            timeout=10,
        ),
        lambda: stub.DeleteSchedule(pb.DeleteScheduleRequest(id=missing), timeout=10),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_schedule_fires_and_its_results_are_listed(stub: pb_grpc.AnalyticsServiceStub, rest: httpx.Client) -> None:
    dataset_id = make_dataset(stub, [float(i) for i in range(50)])
    created = rest.post(
        "/v1/schedules",
        json={"datasetId": dataset_id, "kind": "ANALYSIS_KIND_SUMMARY", "intervalSeconds": "1", "enabled": True},
    )
    assert created.status_code == 200, created.text
    schedule_id = created.json()["schedule"]["id"]
    deadline = time.monotonic() + 30
    while True:
        results = stub.ListResults(pb.ListResultsRequest(dataset_id=dataset_id), timeout=10).results
        done = [r for r in results if r.status == apb.RESULT_STATUS_SUCCEEDED]
        if len(done) >= 2:
            break
        assert time.monotonic() < deadline, "the schedule did not fire twice"
        time.sleep(0.3)
    assert {r.schedule_id for r in done} == {schedule_id}
    assert all(r.requested_by == "scheduler" and r.HasField("scheduled_time") for r in done)
    assert done[0].output.summary.count == 50
    # Read once so the finished result is cached, then delete its schedule.
    assert stub.GetResult(pb.GetResultRequest(id=done[0].id), timeout=10).result.schedule_id == schedule_id
    patched = rest.patch(f"/v1/schedules/{schedule_id}", params={"updateMask": "enabled"}, json={"enabled": False})
    assert patched.status_code == 200, patched.text
    assert patched.json()["schedule"]["enabled"] is False
    assert rest.delete(f"/v1/schedules/{schedule_id}").status_code == 200
    # Its results stay, no longer tied to a schedule (the cached copy too).
    kept = stub.ListResults(pb.ListResultsRequest(dataset_id=dataset_id), timeout=10).results
    assert len(kept) >= 2 and all(r.schedule_id == "" for r in kept)
    assert stub.GetResult(pb.GetResultRequest(id=done[0].id), timeout=10).result.schedule_id == ""
