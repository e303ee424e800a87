"""Schedules through gRPC and REST: create, read, list, update, delete, refuse bad input,
and a schedule firing on the shared stack (two schedulers, two workers)."""

from __future__ import annotations

import datetime as dt
import uuid

import grpc
import httpx
import psycopg2
import pytest

from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from tests.analytics_svc.test_results import make_dataset
from tests.conftest import RunningStack
from tests.eventually import eventually


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
        # Folders of the tz database, not zones: these answered INTERNAL (IsADirectoryError).
        (apb.Schedule(kind=apb.ANALYSIS_KIND_SUMMARY, cron="* * * * *", time_zone="Europe"), "schedule.time_zone"),
        (
            apb.Schedule(kind=apb.ANALYSIS_KIND_SUMMARY, cron="* * * * *", time_zone="America/Argentina"),
            "schedule.time_zone",
        ),
        (
            apb.Schedule(kind=apb.ANALYSIS_KIND_CORRELATION, interval_seconds=60),
            "schedule.parameters.correlate_with_dataset_id",
        ),
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

    def succeeded() -> list[apb.Result]:
        results = stub.ListResults(pb.ListResultsRequest(dataset_id=dataset_id), timeout=10).results
        done = [r for r in results if r.status == apb.RESULT_STATUS_SUCCEEDED]
        return done if len(done) >= 2 else []

    done = eventually(succeeded, 30, "the schedule to fire twice", interval=0.3)
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


def _cron_schedule(stub: pb_grpc.AnalyticsServiceStub, dataset_id: str, enabled: bool = False) -> apb.Schedule:
    return stub.CreateSchedule(
        pb.CreateScheduleRequest(
            schedule=apb.Schedule(
                dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_SUMMARY, cron="0 6 * * *", enabled=enabled
            )
        ),
        timeout=10,
    ).schedule


@pytest.mark.parametrize(
    ("paths", "body", "field"),
    [
        # Found by probing the stack: this stored interval 0, and once enabled
        # the scheduler looped on a division by zero and no schedule fired.
        ("interval_seconds", {}, "schedule.interval_seconds"),
        ("interval_seconds", {"intervalSeconds": "-5"}, "schedule.interval_seconds"),
        ("cron", {}, "schedule.cron"),
        ("kind", {}, "schedule.kind"),
        ("time_zone", {"timeZone": "Europe"}, "schedule.time_zone"),
        ("time_zone", {"timeZone": "US"}, "schedule.time_zone"),
        ("time_zone", {"timeZone": "Etc"}, "schedule.time_zone"),
        ("parameters", {"parameters": {"histogramBins": -1}}, "schedule.parameters"),
    ],
)
def test_an_update_is_held_to_the_rules_of_create(
    stub: pb_grpc.AnalyticsServiceStub, rest: httpx.Client, paths: str, body: dict[str, object], field: str
) -> None:
    schedule = _cron_schedule(stub, make_dataset(stub, [1.0]))
    patched = rest.patch(f"/v1/schedules/{schedule.id}", params={"updateMask": paths}, json=body)
    assert patched.status_code == 400, patched.text
    fields = [v["field"] for d in patched.json()["details"] for v in d.get("fieldViolations", [])]
    assert any(f.startswith(field) for f in fields), patched.json()
    assert stub.GetSchedule(pb.GetScheduleRequest(id=schedule.id), timeout=10).schedule == schedule


def test_the_minimum_interval_holds_on_create_and_update() -> None:
    from analytics_svc.config import AnalyticsSettings
    from analytics_svc.schedules import timing
    from mesh_runtime.config import load_settings
    from mesh_runtime.errors import InvalidArgument

    minimum = load_settings(AnalyticsSettings, {"AUTH_SIGNING_KEY_FILE": "k"}).min_schedule_interval_seconds
    assert minimum == 60
    assert timing.validate(timing.Trigger(interval_seconds=60), min_interval_seconds=minimum).interval_seconds == 60
    with pytest.raises(InvalidArgument) as caught:
        timing.validate(timing.Trigger(interval_seconds=59), min_interval_seconds=minimum)
    assert caught.value.violations[0].field == "schedule.interval_seconds"
    assert "between 60 and" in caught.value.violations[0].description


def test_a_schedule_that_cannot_fire_is_disabled_and_the_others_fire(
    stub: pb_grpc.AnalyticsServiceStub, mesh: RunningStack
) -> None:
    dataset_id = make_dataset(stub, [1.0, 2.0])
    broken, folder = _cron_schedule(stub, dataset_id), _cron_schedule(stub, dataset_id)
    # What the update used to store (interval 0) and a zone name that is a folder,
    # written as an older version would have, and due now.
    with psycopg2.connect(mesh.database_url("analytics")) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE analysis_schedule SET cron = NULL, interval_seconds = 0, enabled = true,"
            " next_run_time = now() - interval '1 second' WHERE id = %s",
            (broken.id,),
        )
        cur.execute(
            "UPDATE analysis_schedule SET time_zone = 'Europe', enabled = true,"
            " next_run_time = now() - interval '1 second' WHERE id = %s",
            (folder.id,),
        )
    healthy = stub.CreateSchedule(
        pb.CreateScheduleRequest(
            schedule=apb.Schedule(
                dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_SUMMARY, interval_seconds=1, enabled=True
            )
        ),
        timeout=10,
    ).schedule

    def settled() -> dict[str, apb.Schedule] | None:
        got = {
            s.id: s for s in stub.ListSchedules(pb.ListSchedulesRequest(dataset_id=dataset_id), timeout=10).schedules
        }
        fired = [
            r
            for r in stub.ListResults(pb.ListResultsRequest(dataset_id=dataset_id), timeout=10).results
            if r.schedule_id == healthy.id
        ]
        return got if len(fired) >= 2 and got[broken.id].error and got[folder.id].error else None

    got = eventually(settled, 30, "the healthy schedule to fire twice and the broken ones to be marked", interval=0.3)
    assert not got[broken.id].enabled and "interval_seconds" in got[broken.id].error
    assert not got[folder.id].enabled and "time zone" in got[folder.id].error
    assert got[healthy.id].enabled and got[healthy.id].error == ""
    # Fixing it clears the error.
    request = _mask("interval_seconds", "enabled")
    request.schedule.id = broken.id
    request.schedule.interval_seconds = 3600
    request.schedule.enabled = True
    fixed = stub.UpdateSchedule(request, timeout=10).schedule
    assert fixed.enabled and fixed.error == "" and fixed.HasField("next_run_time")
    stub.DeleteSchedule(pb.DeleteScheduleRequest(id=healthy.id), timeout=10)
