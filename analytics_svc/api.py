"""AnalyticsService servicer: thin adapters between protos and the store."""

from __future__ import annotations

from typing import Any

import grpc

from analytics_svc import store
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from mesh_runtime.database import BlockingRunner
from mesh_runtime.pagination import decode_page_token, encode_page_token, page_size
from mesh_runtime.wire import timestamp_or_none as _timestamp

_LIST_QUERY = "datasets"


def _page_key(after: list[Any]) -> str:
    (name,) = after
    if not isinstance(name, str):
        raise TypeError("dataset name expected")
    return name


def dataset_to_proto(row: store.DatasetRow) -> dataset_pb2.Dataset:
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


class AnalyticsServicer(pb_grpc.AnalyticsServiceServicer):
    """Serves datasets from the analytics store."""

    def __init__(self, runner: BlockingRunner) -> None:
        self.runner = runner

    async def CreateDataset(
        self, request: pb.CreateDatasetRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateDatasetResponse:
        d = request.dataset
        new = store.NewDataset(d.name, d.description, d.unit, dict(d.labels))
        row = await self.runner.run(store.create_dataset, new)
        return pb.CreateDatasetResponse(dataset=dataset_to_proto(row))

    async def GetDataset(
        self, request: pb.GetDatasetRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetDatasetResponse:
        row = await self.runner.run(store.get_dataset, request.id)
        return pb.GetDatasetResponse(dataset=dataset_to_proto(row))

    async def ListDatasets(
        self, request: pb.ListDatasetsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDatasetsResponse:
        after = decode_page_token(request.page_token, _LIST_QUERY, _page_key)
        limit = page_size(request.page_size)
        rows, total = await self.runner.run(store.list_datasets, limit + 1, after)
        next_token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            next_token = encode_page_token([rows[-1].name], _LIST_QUERY)
        return pb.ListDatasetsResponse(
            datasets=[dataset_to_proto(r) for r in rows],
            next_page_token=next_token,
            total_size=total,
        )
