"""Schedules, RunAnalysis and results over gRPC: adapters between protos and stores."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import json_format

from analytics_svc import insights
from analytics_svc.analyses import compute
from analytics_svc.datasets import store as dataset_store
from analytics_svc.jobs import messages
from analytics_svc.points import store as point_store
from analytics_svc.results import store as result_store
from analytics_svc.schedules import store as schedule_store
from analytics_svc.schedules import timing
from analytics_svc.watch import ResultHub
from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh_runtime.auth import current_principal
from mesh_runtime.database import BlockingRunner, utc_now
from mesh_runtime.errors import FieldViolation, InvalidArgument, ResourceExhausted, from_rpc_error
from mesh_runtime.interceptors import send_headers, violations_of
from mesh_runtime.pagination import decode_page_token, encode_page_token, page_size
from mesh_runtime.wire import timestamp_or_none as _timestamp

ASK_TIMEOUT_SECONDS = 120.0
SCHEDULE_FIELDS = ("kind", "parameters", "interval_seconds", "cron", "time_zone", "enabled")


# Shortest interval of an interval schedule, unless ANALYTICS_MIN_SCHEDULE_INTERVAL_SECONDS says otherwise.
DEFAULT_MIN_SCHEDULE_INTERVAL_SECONDS = 60


def _invalid(field: str, description: str) -> InvalidArgument:
    return InvalidArgument(f"{field}: {description}", violations=[FieldViolation(field, description)])


def schedule_to_proto(row: schedule_store.ScheduleRow) -> apb.Schedule:
    """The wire form of a stored schedule."""
    message = apb.Schedule(
        id=str(row.id),
        dataset_id=str(row.dataset_id),
        dataset_name=row.dataset.name,
        kind=apb.AnalysisKind.ValueType(row.kind),
        parameters=messages.parameters_from_json(row.parameters),
        time_zone=row.time_zone,
        enabled=row.enabled,
        next_run_time=_timestamp(row.next_run_time if row.enabled else None),
        last_run_time=_timestamp(row.last_run_time),
        last_result_id=str(row.last_result_id) if row.last_result_id else "",
        create_time=_timestamp(row.create_time),
        update_time=_timestamp(row.update_time),
        error=row.error,
    )
    if row.cron is not None:
        message.cron = row.cron
    elif row.interval_seconds is not None:
        message.interval_seconds = row.interval_seconds
    return message


def result_to_proto(row: result_store.ResultRow | result_store.StoredResult, with_anomalies: bool = True) -> apb.Result:
    """The wire form of a stored result (the anomaly list only when asked)."""
    message = apb.Result(
        id=str(row.id),
        dataset_id=str(row.dataset_id),
        dataset_name=row.dataset_name,
        kind=apb.AnalysisKind.ValueType(row.kind),
        parameters=messages.parameters_from_json(row.parameters),
        status=apb.ResultStatus.ValueType(row.status),
        error=row.error,
        schedule_id=str(row.schedule_id) if row.schedule_id else "",
        scheduled_time=_timestamp(row.scheduled_time),
        create_time=_timestamp(row.create_time),
        start_time=_timestamp(row.start_time),
        end_time=_timestamp(row.end_time),
        window_start=_timestamp(row.window_start),
        window_end=_timestamp(row.window_end),
        anomaly_count=row.anomaly_count,
        requested_by=row.requested_by,
        insight=apb.Insight(
            status=apb.InsightStatus.ValueType(row.insight_status),
            text=row.insight_text,
            provider=row.insight_provider,
            model=row.insight_model,
            error=row.insight_error,
            attempts=row.insight_attempts,
            update_time=_timestamp(row.insight_update_time),
        ),
    )
    output = row.output
    if output:
        message.output.ParseFromString(bytes(output))
        if not with_anomalies:
            del message.output.anomalies.anomalies[:]
    return message


def output_to_stored(output: apb.ResultOutput) -> bytes:
    """A result's numbers as stored (serialized ResultOutput)."""
    return output.SerializeToString()


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


def _check_kind(kind: int, parameters: apb.AnalysisParameters, field_prefix: str) -> None:
    if kind == apb.ANALYSIS_KIND_UNSPECIFIED:
        raise _invalid(f"{field_prefix}kind", "value is required")
    if kind == apb.ANALYSIS_KIND_CORRELATION and not parameters.correlate_with_dataset_id:
        raise _invalid(
            f"{field_prefix}parameters.correlate_with_dataset_id", "a correlation needs the other dataset's id"
        )
    if parameters.HasField("window_start") and parameters.HasField("window_end"):
        if parameters.window_end.ToDatetime() <= parameters.window_start.ToDatetime():
            raise _invalid(f"{field_prefix}parameters.window_end", "must be after window_start")


def _canonical_id(value: str) -> str | None:
    """A UUID as PostgreSQL prints it ("" stays ""); None if it is not one."""
    if not value:
        return ""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _time_and_id_key(after: list[Any]) -> tuple[dt.datetime, uuid.UUID]:
    time, key = after
    return dt.datetime.fromisoformat(time), uuid.UUID(key)


class ResultsServicer:
    """The schedule, analysis and result RPCs of AnalyticsService (a mixin)."""

    runner: BlockingRunner
    hub: ResultHub
    llm_channel: grpc.aio.Channel | None
    min_schedule_interval_seconds: int

    # --- schedules ------------------------------------------------------------------

    async def CreateSchedule(
        self, request: pb.CreateScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateScheduleResponse:
        s = request.schedule
        if not s.dataset_id:
            raise _invalid("schedule.dataset_id", "value is required")
        _check_kind(s.kind, s.parameters, "schedule.")
        trigger = _trigger(s, self.min_schedule_interval_seconds)
        now = utc_now()
        enabled = s.enabled
        row = await self.runner.run(
            schedule_store.create_schedule,
            {
                "dataset_id": s.dataset_id,
                "kind": s.kind,
                "parameters": messages.parameters_to_json(s.parameters),
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
        after = decode_page_token(request.page_token, query, _time_and_id_key)
        limit = page_size(request.page_size)
        rows = await self.runner.run(schedule_store.list_schedules, request.dataset_id or None, limit + 1, after)
        token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            token = encode_page_token([rows[-1].create_time.isoformat(), str(rows[-1].id)], query)
        return pb.ListSchedulesResponse(schedules=[schedule_to_proto(r) for r in rows], next_page_token=token)

    async def UpdateSchedule(
        self, request: pb.UpdateScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateScheduleResponse:
        s = request.schedule
        paths = set(request.update_mask.paths)
        if not s.id:
            raise _invalid("schedule.id", "value is required")
        current = schedule_to_proto(await self.runner.run(schedule_store.get_schedule, s.id))
        merged = apb.Schedule()
        merged.CopyFrom(current)
        for path in paths & {"kind", "time_zone", "enabled"}:
            setattr(merged, path, getattr(s, path))
        if "parameters" in paths:
            merged.parameters.CopyFrom(s.parameters)
        if "interval_seconds" in paths and "cron" in paths:
            raise _invalid("update_mask", "name only one of interval_seconds and cron")
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
        _check_kind(merged.kind, merged.parameters, "schedule.")
        trigger = _trigger(merged, self.min_schedule_interval_seconds)
        changes: dict[str, Any] = {
            "kind": merged.kind,
            "parameters": messages.parameters_to_json(merged.parameters),
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

    # --- analyses and results -------------------------------------------------------

    async def RunAnalysis(
        self, request: pb.RunAnalysisRequest, context: grpc.aio.ServicerContext
    ) -> pb.RunAnalysisResponse:
        _check_kind(request.kind, request.parameters, "")
        requested_by = current_principal().name

        def queue() -> result_store.ResultRow:
            dataset = dataset_store.get_dataset(request.dataset_id)
            if request.parameters.correlate_with_dataset_id:
                dataset_store.get_dataset(request.parameters.correlate_with_dataset_id)
            row = messages.request_analysis(dataset, request.kind, request.parameters, requested_by)
            assert row is not None  # only schedule ticks can collide
            return row

        row = await self.runner.run(queue)
        self.hub.pages.changed(str(row.dataset_id))  # its lists show it now, not on the notification
        return pb.RunAnalysisResponse(result=result_to_proto(row))

    async def GetResult(self, request: pb.GetResultRequest, context: grpc.aio.ServicerContext) -> pb.GetResultResponse:
        result = self.hub.finished.get(request.id) if self.hub.caching else None
        if result is None:
            generation = self.hub.cache_generation()
            result = result_to_proto(await self.runner.run(result_store.read_result, request.id))
            if generation is not None:
                self.hub.finished.put(result, generation)
        response = pb.GetResultResponse(result=result)
        if request.series_points and result.status == apb.RESULT_STATUS_SUCCEEDED:
            response.series.CopyFrom(await self._series(result, request.series_points))
        return response

    async def _series(self, result: apb.Result, points: int) -> apb.ResultSeries:
        start_us = result.window_start.seconds * 1_000_000 + result.window_start.nanos // 1000
        end_us = result.window_end.seconds * 1_000_000 + result.window_end.nanos // 1000 + 1
        timestamps, values = await self.runner.run(point_store.load_points, result.dataset_id, start_us, end_us)
        return await asyncio.to_thread(
            compute.chart_series, result.kind, result.parameters, result.output, timestamps, values, points
        )

    async def ListResults(
        self, request: pb.ListResultsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListResultsResponse:
        # Pages come from the cache while notifications keep it honest (see ResultPages).
        dataset_key = _canonical_id(request.dataset_id)
        if not self.hub.caching or dataset_key is None:
            return await self._list_results(request)
        key = request.SerializeToString(deterministic=True)
        page = self.hub.pages.get(key, dataset_key)
        if page is None:
            stamp = self.hub.pages.stamp(dataset_key)
            page = await self._list_results(request)
            self.hub.pages.put(key, dataset_key, stamp, page)
        return page

    async def _list_results(self, request: pb.ListResultsRequest) -> pb.ListResultsResponse:
        order_by = request.order_by or "create_time desc"
        where = result_store.ResultFilter(
            dataset_id=request.dataset_id or None,
            kind=request.kind,
            status=request.status,
            created_after=request.created_after.ToDatetime(dt.UTC) if request.HasField("created_after") else None,
            created_before=request.created_before.ToDatetime(dt.UTC) if request.HasField("created_before") else None,
            has_anomalies=request.has_anomalies if request.HasField("has_anomalies") else None,
        )
        query = "results:" + json_format.MessageToJson(
            pb.ListResultsRequest(
                dataset_id=request.dataset_id,
                kind=request.kind,
                status=request.status,
                created_after=request.created_after if request.HasField("created_after") else None,
                created_before=request.created_before if request.HasField("created_before") else None,
                has_anomalies=request.has_anomalies if request.HasField("has_anomalies") else None,
                order_by=order_by,
            ),
            sort_keys=True,
        )
        after = decode_page_token(request.page_token, query, _time_and_id_key)
        limit = page_size(request.page_size)
        rows = await self.runner.run(result_store.list_results, where, order_by, limit + 1, after)
        token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            token = encode_page_token([result_store.sort_time(last, order_by).isoformat(), str(last.id)], query)
        return pb.ListResultsResponse(
            results=[result_to_proto(r, with_anomalies=False) for r in rows], next_page_token=token
        )

    async def WatchResults(
        self, request: pb.WatchResultsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchResultsResponse]:
        async with self.hub.subscribe(request.dataset_id or None) as updates:
            # The watch is established: tell the client now, before any change arrives.
            await send_headers(context)
            while True:
                row = await updates.get()
                if row is None:
                    raise ResourceExhausted(
                        "this watch fell too far behind the changes; list the results and watch again",
                        retry_after=1.0,
                    )
                yield pb.WatchResultsResponse(result=result_to_proto(row, with_anomalies=False))

    async def AskAboutResult(
        self, request: pb.AskAboutResultRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.AskAboutResultResponse]:
        row = await self.runner.run(result_store.get_result, request.result_id)
        result = result_to_proto(row)
        if result.status != apb.RESULT_STATUS_SUCCEEDED:
            raise _invalid("result_id", "the result has no numbers yet; ask once it has succeeded")
        if self.llm_channel is None:
            raise _invalid("result_id", "no LLM service is configured (LLM_ADDR)")
        unit = await self.runner.run(lambda: dataset_store.get_dataset(result.dataset_id).unit)
        authorization = dict(context.invocation_metadata() or ()).get("authorization", "")
        call = insights.answer(
            self.llm_channel,
            str(authorization),
            insights.question_request(result, request.question, unit),
            ASK_TIMEOUT_SECONDS,
        )
        try:
            async for chunk in call:
                reply = pb.AskAboutResultResponse(text=chunk.text)
                if chunk.finish_reason:
                    reply.finish_reason = {1: "stop", 2: "length", 3: "content_filter"}.get(
                        chunk.finish_reason, "other"
                    )
                    reply.provider = chunk.provider
                    reply.model = chunk.model
                yield reply
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
