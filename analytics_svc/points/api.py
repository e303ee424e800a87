"""The point-writing RPCs of AnalyticsService (AppendPoints, IngestPoints, ImportCsv,
UploadCsv, DeletePoints): thin adapters between protos, screening (``ingest``)
and the point store. Reading points back is ``query_api``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

import grpc
from google.rpc import error_details_pb2

from analytics_svc.conversions import dataset_to_proto, rejections_to_proto
from analytics_svc.datasets import store as dataset_store
from analytics_svc.metrics import count_points
from analytics_svc.points import ingest
from analytics_svc.points import store as point_store
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh_runtime.database import BlockingRunner
from mesh_runtime.errors import ERROR_DOMAIN, FieldViolation, InvalidArgument, MeshError
from mesh_runtime.wire import timestamp_to_us

# ImportCsv and UploadCsv answer alike.
CsvReply = TypeVar("CsvReply", pb.ImportCsvResponse, pb.UploadCsvResponse)

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


class PointsApi:
    """AppendPoints, IngestPoints, ImportCsv, UploadCsv, DeletePoints (a part of AnalyticsServicer)."""

    runner: BlockingRunner

    async def AppendPoints(
        self, request: pb.AppendPointsRequest, context: grpc.aio.ServicerContext
    ) -> pb.AppendPointsResponse:
        screened = ingest.screen(request.timestamps_us, request.values)
        row = await self.runner.run(
            point_store.append_points, request.dataset_id, screened.timestamps_us, screened.values
        )
        count_points("append", len(screened.timestamps_us), len(screened.rejections))
        return pb.AppendPointsResponse(
            accepted_count=len(screened.timestamps_us),
            rejected_count=len(screened.rejections),
            rejected_points=rejections_to_proto(screened.rejections),
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
                count_points("stream", len(screened.timestamps_us), len(screened.rejections))
                batches += 1
                rejections += screened.rejections[: max(0, ingest.MAX_REPORTED_REJECTIONS - len(rejections))]
        except MeshError as exc:
            # Each batch committed as it came: say what of the stream is stored.
            _say_what_is_stored(exc, batches, accepted, seen - accepted)
            raise
        return pb.IngestPointsResponse(
            accepted_count=accepted,
            rejected_count=seen - accepted,
            rejected_points=rejections_to_proto(rejections),
            batch_count=batches,
        )

    async def ImportCsv(
        self, request: pb.ImportCsvRequest, context: grpc.aio.ServicerContext
    ) -> pb.ImportCsvResponse:
        return await self._import_csv(request.dataset_id, request.csv, pb.ImportCsvResponse)

    async def UploadCsv(
        self, request: pb.UploadCsvRequest, context: grpc.aio.ServicerContext
    ) -> pb.UploadCsvResponse:
        return await self._import_csv(request.dataset_id, request.csv.data, pb.UploadCsvResponse)

    async def _import_csv(self, dataset_id: str, data: bytes, reply: type[CsvReply]) -> CsvReply:
        try:
            # Off the event loop, and off the database threads other calls wait for.
            parsed = await asyncio.to_thread(ingest.parse_csv, data)
        except ValueError as exc:
            raise InvalidArgument(str(exc), violations=[FieldViolation("csv", str(exc))]) from None
        row = await self.runner.run(point_store.append_points, dataset_id, parsed.timestamps_us, parsed.values)
        count_points("csv", len(parsed.timestamps_us), len(parsed.bad_lines))
        return reply(
            accepted_count=len(parsed.timestamps_us),
            rejected_count=len(parsed.bad_lines),
            rejected_lines=[
                pb.RejectedCsvLine(line=line, reason=reason)
                for line, reason in parsed.bad_lines[: ingest.MAX_REPORTED_REJECTIONS]
            ],
            dataset=dataset_to_proto(row),
            header=parsed.header,
        )

    async def DeletePoints(
        self, request: pb.DeletePointsRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeletePointsResponse:
        start_us, end_us = timestamp_to_us(request.start_time), timestamp_to_us(request.end_time)
        deleted = await self.runner.run(point_store.delete_points, request.dataset_id, start_us, end_us)
        row = await self.runner.run(dataset_store.get_dataset, request.dataset_id)
        return pb.DeletePointsResponse(deleted_count=deleted, dataset=dataset_to_proto(row))
