"""AnalyticsService servicer: thin adapters between protos and the store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.rpc import error_details_pb2

from analytics_svc.datasets import store as dataset_store
from analytics_svc.points import ingest
from analytics_svc.points import store as point_store
from analytics_svc.results_api import DEFAULT_MIN_SCHEDULE_INTERVAL_SECONDS, ResultsServicer
from analytics_svc.watch import ResultHub
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from mesh_runtime.database import BlockingRunner
from mesh_runtime.errors import ERROR_DOMAIN, FieldViolation, InvalidArgument, MeshError
from mesh_runtime.pagination import decode_page_token, encode_page_token, page_size
from mesh_runtime.wire import timestamp_or_none as _timestamp

_LIST_QUERY = "datasets"


def _page_key(after: list[Any]) -> str:
    (name,) = after
    if not isinstance(name, str):
        raise TypeError("dataset name expected")
    return name


def dataset_to_proto(row: dataset_store.DatasetRow) -> dataset_pb2.Dataset:
    """The wire form of a stored dataset."""
    return dataset_pb2.Dataset(
        id=str(row.id),
        name=row.name,
        description=row.description,
        unit=row.unit,
        labels=row.labels,
        point_count=row.point_count,
        first_point_time=_timestamp(row.first_point_time),
        last_point_time=_timestamp(row.last_point_time),
        create_time=_timestamp(row.create_time),
        update_time=_timestamp(row.update_time),
    )


def _rejected_points(rejections: list[ingest.Rejection]) -> list[pb.RejectedPoint]:
    return [
        pb.RejectedPoint(index=r.index, timestamp_us=r.timestamp_us, reason=r.reason)
        for r in rejections[: ingest.MAX_REPORTED_REJECTIONS]
    ]


INGEST_STOPPED = "INGEST_STOPPED"
"""ErrorInfo reason of an IngestPoints stream that failed part-way."""


def _say_what_is_stored(exc: MeshError, batches: int, stored: int, rejected: int) -> None:
    """Add to ``exc`` (the failure of batch number ``batches``, from 0), in its
    message and in an ErrorInfo, what the batches before it stored."""
    if batches:
        kept = f"the {batches} batch(es) before it are stored ({stored} points stored, {rejected} rejected)"
    else:
        kept = "nothing of the stream was stored"
    exc.message = f"{exc.message} [IngestPoints batch {batches} failed; {kept}]"
    exc.details.append(
        error_details_pb2.ErrorInfo(
            reason=INGEST_STOPPED,
            domain=ERROR_DOMAIN,
            metadata={
                "storedBatches": str(batches),
                "storedPoints": str(stored),
                "rejectedPoints": str(rejected),
                "failedBatch": str(batches),
            },
        )
    )


def _name_required() -> InvalidArgument:
    return InvalidArgument(
        "dataset.name is required", violations=[FieldViolation("dataset.name", "value is required")]
    )


class AnalyticsServicer(ResultsServicer, pb_grpc.AnalyticsServiceServicer):
    """Serves datasets, schedules and results from the analytics store."""

    def __init__(
        self,
        runner: BlockingRunner,
        hub: ResultHub,
        llm_channel: grpc.aio.Channel | None,
        min_schedule_interval_seconds: int = DEFAULT_MIN_SCHEDULE_INTERVAL_SECONDS,
    ) -> None:
        self.runner = runner
        self.hub = hub
        self.llm_channel = llm_channel
        self.min_schedule_interval_seconds = min_schedule_interval_seconds

    async def CreateDataset(
        self, request: pb.CreateDatasetRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateDatasetResponse:
        d = request.dataset
        if not d.name:
            raise _name_required()
        new = dataset_store.NewDataset(d.name, d.description, d.unit, dict(d.labels))
        row = await self.runner.run(dataset_store.create_dataset, new)
        return pb.CreateDatasetResponse(dataset=dataset_to_proto(row))

    async def GetDataset(
        self, request: pb.GetDatasetRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetDatasetResponse:
        row = await self.runner.run(dataset_store.get_dataset, request.id)
        return pb.GetDatasetResponse(dataset=dataset_to_proto(row))

    async def ListDatasets(
        self, request: pb.ListDatasetsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDatasetsResponse:
        after = decode_page_token(request.page_token, _LIST_QUERY, _page_key)
        limit = page_size(request.page_size)
        rows, total = await self.runner.run(dataset_store.list_datasets, limit + 1, after)
        next_token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            next_token = encode_page_token([rows[-1].name], _LIST_QUERY)
        return pb.ListDatasetsResponse(
            datasets=[dataset_to_proto(r) for r in rows],
            next_page_token=next_token,
            total_size=total,
        )

    async def UpdateDataset(
        self, request: pb.UpdateDatasetRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateDatasetResponse:
        d = request.dataset
        paths = set(request.update_mask.paths)
        if "name" in paths and not d.name:
            raise _name_required()
        new_values: dict[str, Any] = {
            "name": d.name, "description": d.description, "unit": d.unit, "labels": dict(d.labels)
        }
        changes = {name: new_values[name] for name in paths}
        row = await self.runner.run(dataset_store.update_dataset, d.id, changes)
        return pb.UpdateDatasetResponse(dataset=dataset_to_proto(row))

    async def DeleteDataset(
        self, request: pb.DeleteDatasetRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteDatasetResponse:
        await self.runner.run(dataset_store.delete_dataset, request.id)
        self.hub.dataset_changed(request.id)  # here at once; other replicas on the notification
        return pb.DeleteDatasetResponse()

    async def AppendPoints(
        self, request: pb.AppendPointsRequest, context: grpc.aio.ServicerContext
    ) -> pb.AppendPointsResponse:
        screened = ingest.screen(request.timestamps_us, request.values)
        row = await self.runner.run(
            point_store.append_points, request.dataset_id, screened.timestamps_us, screened.values
        )
        return pb.AppendPointsResponse(
            accepted_count=len(screened.timestamps_us),
            rejected_count=len(screened.rejections),
            rejected_points=_rejected_points(screened.rejections),
            dataset=dataset_to_proto(row),
        )

    async def IngestPoints(
        self, request_iterator: AsyncIterator[pb.IngestPointsRequest], context: grpc.aio.ServicerContext
    ) -> pb.IngestPointsResponse:
        accepted = batches = seen = 0
        rejections: list[ingest.Rejection] = []
        try:
            async for batch in request_iterator:
                screened = ingest.screen(batch.timestamps_us, batch.values, first_index=seen)
                await self.runner.run(
                    point_store.append_points, batch.dataset_id, screened.timestamps_us, screened.values
                )
                seen += len(batch.timestamps_us)
                accepted += len(screened.timestamps_us)
                batches += 1
                rejections += screened.rejections[: max(0, ingest.MAX_REPORTED_REJECTIONS - len(rejections))]
        except MeshError as exc:
            # Each batch committed as it came: say what of the stream is stored.
            _say_what_is_stored(exc, batches, accepted, seen - accepted)
            raise
        return pb.IngestPointsResponse(
            accepted_count=accepted,
            rejected_count=seen - accepted,
            rejected_points=_rejected_points(rejections),
            batch_count=batches,
        )

    async def ImportCsv(
        self, request: pb.ImportCsvRequest, context: grpc.aio.ServicerContext
    ) -> pb.ImportCsvResponse:
        try:
            # Off the event loop, and off the database threads other calls wait for.
            parsed = await asyncio.to_thread(ingest.parse_csv, request.csv)
        except ValueError as exc:
            raise InvalidArgument(str(exc), violations=[FieldViolation("csv", str(exc))]) from None
        row = await self.runner.run(point_store.append_points, request.dataset_id, parsed.timestamps_us, parsed.values)
        return pb.ImportCsvResponse(
            accepted_count=len(parsed.timestamps_us),
            rejected_count=len(parsed.bad_lines),
            rejected_lines=[
                pb.RejectedCsvLine(line=line, reason=reason)
                for line, reason in parsed.bad_lines[: ingest.MAX_REPORTED_REJECTIONS]
            ],
            dataset=dataset_to_proto(row),
            header=parsed.header,
        )
