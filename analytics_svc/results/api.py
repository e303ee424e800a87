"""RunAnalysis and the result RPCs of AnalyticsService: adapters between protos, the jobs that
compute results, the result store and its read caches.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import grpc
from google.protobuf import json_format

from analytics_svc.analyses import checks, chunked
from analytics_svc.conversions import result_events, result_to_proto
from analytics_svc.datasets import store as dataset_store
from analytics_svc.jobs import insights, messages
from analytics_svc.results import store as result_store
from analytics_svc.results.watch import ResultHub
from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh_runtime.auth import current_principal
from mesh_runtime.database import BlockingRunner
from mesh_runtime.errors import InvalidArgument, MeshError, from_rpc_error
from mesh_runtime.interceptors import send_headers
from mesh_runtime.pagination import PageRequest, encode_page_token, time_and_id, time_and_id_key

ASK_TIMEOUT_SECONDS = 120.0


def _canonical_id(value: str) -> str | None:
    """A UUID as PostgreSQL prints it ("" stays ""); None if it is not one."""
    if not value:
        return ""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _event_offset(after: list[object]) -> int:
    """The number of events served before a ListResultEvents page token (parse of decode_page_token)."""
    (offset,) = after
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ValueError("an event offset expected")
    return offset


class ResultsApi:
    """RunAnalysis, GetResult, ListResultEvents, ListResults, WatchResults, AskAboutResult
    (a part of AnalyticsServicer)."""

    runner: BlockingRunner
    hub: ResultHub
    llm_channel: grpc.aio.Channel | None
    chart_budget: chunked.Budget

    async def RunAnalysis(
        self, request: pb.RunAnalysisRequest, context: grpc.aio.ServicerContext
    ) -> pb.RunAnalysisResponse:
        checks.check_kind(request.kind, request.parameters, "")
        requested_by = current_principal().name

        def queue() -> result_store.ResultRow:
            dataset = dataset_store.get_dataset(request.dataset_id)
            if request.parameters.correlate_with_dataset_id:
                dataset_store.get_dataset(request.parameters.correlate_with_dataset_id)
            checks.check_dataset_periods(request.kind, request.parameters, list(dataset.seasonal_periods_s or []))
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

    async def ListResultEvents(
        self, request: pb.ListResultEventsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListResultEventsResponse:
        query = f"result-events:{_canonical_id(request.result_id)}"
        page = PageRequest.of(request.page_token, request.page_size, query, _event_offset)
        events = result_events(await self.runner.run(result_store.read_result, request.result_id))
        offset = min(page.after or 0, len(events))
        end = offset + page.limit
        return pb.ListResultEventsResponse(
            events=events[offset:end],
            next_page_token=encode_page_token([end], query) if end < len(events) else "",
            total_size=len(events),
            first_rank=offset + 1,
        )

    async def _series(self, result: apb.Result, points: int) -> apb.ResultSeries:
        start_us = result.window_start.seconds * 1_000_000 + result.window_start.nanos // 1000
        end_us = result.window_end.seconds * 1_000_000 + result.window_end.nanos // 1000 + 1
        return await self.runner.run(
            chunked.chart_series, result.kind, result.parameters, result.output, result.dataset_id,
            start_us, end_us, points, self.chart_budget,
        )  # fmt: skip

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
        page = PageRequest.of(request.page_token, request.page_size, query, time_and_id_key)
        rows = await self.runner.run(result_store.list_results, where, order_by, page.fetch, page.after)
        rows, token = page.cut(rows, lambda r: time_and_id(result_store.sort_time(r, order_by), r.id))
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
                update = await updates.get()
                if isinstance(update, MeshError):
                    raise update  # fell behind, or the change feed was lost: list and watch again
                yield pb.WatchResultsResponse(result=result_to_proto(update, with_anomalies=False))

    async def AskAboutResult(
        self, request: pb.AskAboutResultRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.AskAboutResultResponse]:
        row = await self.runner.run(result_store.get_result, request.result_id)
        result = result_to_proto(row)
        if result.status != apb.RESULT_STATUS_SUCCEEDED:
            raise InvalidArgument.for_field("result_id", "the result has no numbers yet; ask once it has succeeded")
        if self.llm_channel is None:
            raise InvalidArgument.for_field("result_id", "no LLM service is configured (LLM_ADDR)")
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
