"""The point-reading RPCs of AnalyticsService (QueryPoints, BatchQueryPoints,
ExportPoints): thin adapters between protos, the query rules (``query``) and
the point store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import numpy as np
from google.api import httpbody_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from analytics_svc.conversions import buckets_to_proto
from analytics_svc.datasets import store as datasets
from analytics_svc.points import export, query
from analytics_svc.points import store as points
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import points_pb2 as ppb
from mesh_runtime.database import BlockingRunner
from mesh_runtime.interceptors import send_headers
from mesh_runtime.pagination import decode_page_token, encode_page_token
from mesh_runtime.wire import datetime_to_us, timestamp_to_us


def _micros(message: Any, field: str) -> int | None:
    """A Timestamp field of a request in epoch microseconds, None when unset."""
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return timestamp_to_us(stamp)


def _bounds(request: Any) -> tuple[int, int]:
    """A raw read's range: the request's start_time and end_time, all time where unset."""
    start_us, end_us = _micros(request, "start_time"), _micros(request, "end_time")
    return (
        query.ALL_TIME[0] if start_us is None else start_us,
        query.ALL_TIME[1] if end_us is None else end_us,
    )


def _span(row: datasets.DatasetRow) -> tuple[int | None, int | None]:
    first, last = row.first_point_time, row.last_point_time
    return (datetime_to_us(first) if first else None, datetime_to_us(last) if last else None)


def read_buckets(
    dataset_ids: Sequence[str], start_us: int | None, end_us: int | None, step_us: int, origin_us: int
) -> list[points.Buckets]:
    """Each dataset's buckets on one grid over one range (the data's ends where
    the request gave none); NotFound for an unknown dataset, INVALID_ARGUMENT
    past MAX_BUCKETS over all datasets."""
    rows = [datasets.get_dataset(dataset_id) for dataset_id in dataset_ids]
    window = query.range_to_read(start_us, end_us, [_span(row) for row in rows])
    if window is None:
        return [_no_buckets() for _ in rows]
    query.check_bucket_count(window, step_us, origin_us, len(rows))
    return [points.query_buckets(str(row.id), window.start_us, window.end_us, step_us, origin_us) for row in rows]


def _no_buckets() -> points.Buckets:
    empty = np.empty(0)
    return points.Buckets(
        start_us=empty.astype(np.int64),
        count=empty.astype(np.int64),
        min=empty,
        max=empty,
        sum=empty,
        first=empty,
        last=empty,
    )


def _page_key(after: list[Any]) -> int:
    (start_us,) = after
    if not isinstance(start_us, int) or isinstance(start_us, bool):
        raise TypeError("a timestamp expected")
    return start_us


class PointQueriesApi:
    """QueryPoints, BatchQueryPoints, ExportPoints (a part of AnalyticsServicer)."""

    runner: BlockingRunner

    async def QueryPoints(
        self, request: pb.QueryPointsRequest, context: grpc.aio.ServicerContext
    ) -> pb.QueryPointsResponse:
        start_us, end_us = _micros(request, "start_time"), _micros(request, "end_time")
        if request.HasField("step"):
            step = query.step_us(request.step.seconds, request.step.nanos)
            origin = _micros(request, "origin") or 0
            if start_us is not None and end_us is not None:  # refused before looking anything up
                query.check_bucket_count(query.TimeRange(start_us, end_us), step, origin)
            (buckets,) = await self.runner.run(read_buckets, [request.dataset_id], start_us, end_us, step, origin)
            return pb.QueryPointsResponse(buckets=buckets_to_proto(buckets, request.aggregations))

        first, end = _bounds(request)
        # A token resumes the same request: same dataset and range (the page size may change).
        fingerprint = f"points:{request.dataset_id}:{first}:{end}"
        after = decode_page_token(request.page_token, fingerprint, _page_key)
        limit = request.page_size or query.DEFAULT_PAGE_POINTS
        timestamps, values = await self.runner.run(
            points.query_raw, request.dataset_id, first if after is None else after, end, limit + 1
        )
        next_token = ""
        if len(timestamps) > limit:
            timestamps, values = timestamps[:limit], values[:limit]
            next_token = encode_page_token([int(timestamps[-1]) + 1], fingerprint)
        return pb.QueryPointsResponse(
            points=ppb.PointSeries(timestamps_us=timestamps.tolist(), values=values.tolist()),
            next_page_token=next_token,
        )

    async def BatchQueryPoints(
        self, request: pb.BatchQueryPointsRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchQueryPointsResponse:
        start_us, end_us = _micros(request, "start_time"), _micros(request, "end_time")
        step = query.step_us(request.step.seconds, request.step.nanos)
        origin = _micros(request, "origin") or 0
        ids = list(request.dataset_ids)
        if start_us is not None and end_us is not None:
            query.check_bucket_count(query.TimeRange(start_us, end_us), step, origin, len(ids))
        found = await self.runner.run(read_buckets, ids, start_us, end_us, step, origin)
        return pb.BatchQueryPointsResponse(
            datasets=[
                ppb.DatasetBuckets(dataset_id=dataset_id, buckets=buckets_to_proto(buckets, request.aggregations))
                for dataset_id, buckets in zip(ids, found, strict=True)
            ]
        )

    async def ExportPoints(
        self, request: pb.ExportPointsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        # An unknown dataset fails the call before anything is sent: a plain 404 over REST.
        row = await self.runner.run(datasets.get_dataset, request.dataset_id)
        # Every page from one snapshot: a write during the export is in none of them.
        reader = await self.runner.run(points.SnapshotReader, request.dataset_id)
        try:
            await send_headers(context, [("content-disposition", export.attachment_name(row.name))])
            yield httpbody_pb2.HttpBody(content_type=export.CONTENT_TYPE, data=export.HEADER)
            start, end = _bounds(request)
            while True:
                timestamps, values = await self.runner.run(reader.page, start, end, export.CHUNK_POINTS)
                if len(timestamps):
                    data = await self.runner.run(export.csv_rows, timestamps, values)
                    yield httpbody_pb2.HttpBody(content_type=export.CONTENT_TYPE, data=data)
                if len(timestamps) < export.CHUNK_POINTS:
                    return
                start = int(timestamps[-1]) + 1
        finally:
            reader.close()  # closing a socket: no wait worth a thread, and safe in a cancelled stream
