"""The schedule RPCs of AnalyticsService: adapters between protos, timing rules and the schedule store."""

from __future__ import annotations

from typing import Any

import grpc

from analytics_svc import conversions
from analytics_svc.analyses import checks
from analytics_svc.conversions import schedule_to_proto
from analytics_svc.results.watch import ResultHub
from analytics_svc.schedules import store as schedule_store
from analytics_svc.schedules import timing
from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh_runtime.database import BlockingRunner, utc_now
from mesh_runtime.errors import InvalidArgument
from mesh_runtime.interceptors import violations_of
from mesh_runtime.pagination import PageRequest, time_and_id, time_and_id_key
from mesh_runtime.update_masks import update_paths

SCHEDULE_FIELDS = ("kind", "parameters", "interval_seconds", "cron", "time_zone", "enabled")


# Shortest interval of an interval schedule, unless ANALYTICS_MIN_SCHEDULE_INTERVAL_SECONDS says otherwise.
DEFAULT_MIN_SCHEDULE_INTERVAL_SECONDS = 60


def _trigger(schedule: apb.Schedule, min_interval_seconds: int) -> timing.Trigger:
    which = schedule.WhichOneof("trigger")
    return timing.validate(
        timing.Trigger(
            interval_seconds=schedule.interval_seconds if which == "interval_seconds" else None,
            cron=schedule.cron if which == "cron" else None,
            time_zone=schedule.time_zone,
        ),
        "schedule",
        min_interval_seconds,
    )


class SchedulesApi:
    """CreateSchedule, GetSchedule, ListSchedules, UpdateSchedule, DeleteSchedule (a part of AnalyticsServicer)."""

    runner: BlockingRunner
    hub: ResultHub
    min_schedule_interval_seconds: int

    async def CreateSchedule(
        self, request: pb.CreateScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateScheduleResponse:
        s = request.schedule
        if not s.dataset_id:
            raise InvalidArgument.for_field("schedule.dataset_id", "value is required")
        checks.check_kind(s.kind, s.parameters, "schedule.")
        trigger = _trigger(s, self.min_schedule_interval_seconds)
        now = utc_now()
        enabled = s.enabled
        row = await self.runner.run(
            schedule_store.create_schedule,
            {
                "dataset_id": s.dataset_id,
                "kind": s.kind,
                "parameters": conversions.parameters_to_json(s.parameters),
                "interval_seconds": trigger.interval_seconds,
                "cron": trigger.cron,
                "time_zone": trigger.time_zone,
                "enabled": enabled,
                "next_run_time": timing.first_run(trigger, now) if enabled else None,
            },
        )
        return pb.CreateScheduleResponse(schedule=schedule_to_proto(row))

    async def GetSchedule(
        self, request: pb.GetScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetScheduleResponse:
        row = await self.runner.run(schedule_store.get_schedule, request.id)
        return pb.GetScheduleResponse(schedule=schedule_to_proto(row))

    async def ListSchedules(
        self, request: pb.ListSchedulesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSchedulesResponse:
        query = f"schedules:{request.dataset_id}"
        page = PageRequest.of(request.page_token, request.page_size, query, time_and_id_key)
        rows = await self.runner.run(schedule_store.list_schedules, request.dataset_id or None, page.fetch, page.after)
        rows, token = page.cut(rows, lambda r: time_and_id(r.create_time, r.id))
        return pb.ListSchedulesResponse(schedules=[schedule_to_proto(r) for r in rows], next_page_token=token)

    async def UpdateSchedule(
        self, request: pb.UpdateScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateScheduleResponse:
        s = request.schedule
        paths = update_paths(s, request.update_mask, SCHEDULE_FIELDS, "schedule")
        if not s.id:
            raise InvalidArgument.for_field("schedule.id", "value is required")
        current = schedule_to_proto(await self.runner.run(schedule_store.get_schedule, s.id))
        merged = apb.Schedule()
        merged.CopyFrom(current)
        for path in paths & {"kind", "time_zone", "enabled"}:
            setattr(merged, path, getattr(s, path))
        if "parameters" in paths:
            merged.parameters.CopyFrom(s.parameters)
        if "interval_seconds" in paths and "cron" in paths:
            raise InvalidArgument.for_field("update_mask", "name only one of interval_seconds and cron")
        if "interval_seconds" in paths:
            merged.interval_seconds = s.interval_seconds
        if "cron" in paths:
            merged.cron = s.cron
        # The whole schedule as it would be stored, by the rules of create: a
        # field the mask names but the body leaves out is its zero value.
        violations = violations_of(pb.CreateScheduleRequest(schedule=merged))
        if violations:
            summary = "; ".join(f"{v.field}: {v.description}" for v in violations[:5])
            raise InvalidArgument(f"invalid schedule: {summary}", violations=violations)
        checks.check_kind(merged.kind, merged.parameters, "schedule.")
        trigger = _trigger(merged, self.min_schedule_interval_seconds)
        changes: dict[str, Any] = {
            "kind": merged.kind,
            "parameters": conversions.parameters_to_json(merged.parameters),
            "interval_seconds": trigger.interval_seconds,
            "cron": trigger.cron,
            "time_zone": trigger.time_zone,
            "enabled": merged.enabled,
            "error": "",
        }
        retimed = paths & {"interval_seconds", "cron", "time_zone"} or (merged.enabled and not current.enabled)
        if not merged.enabled:
            changes["next_run_time"] = None
        elif retimed:
            changes["next_run_time"] = timing.first_run(trigger, utc_now())
        row = await self.runner.run(schedule_store.update_schedule, s.id, changes)
        return pb.UpdateScheduleResponse(schedule=schedule_to_proto(row))

    async def DeleteSchedule(
        self, request: pb.DeleteScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteScheduleResponse:
        dataset_id = await self.runner.run(schedule_store.delete_schedule, request.id)
        self.hub.dataset_changed(dataset_id)  # here at once; other replicas on the notification
        return pb.DeleteScheduleResponse()
