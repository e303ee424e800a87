"""The dataset RPCs of AnalyticsService: thin adapters between protos and the dataset store."""

from __future__ import annotations

from typing import Any

import grpc

from analytics_svc.conversions import dataset_to_proto, retention_us
from analytics_svc.datasets import store as dataset_store
from analytics_svc.results.watch import ResultHub
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh_runtime.database import BlockingRunner
from mesh_runtime.errors import FieldViolation, InvalidArgument
from mesh_runtime.pagination import PageRequest, text_key
from mesh_runtime.update_masks import update_paths

_LIST_QUERY = "datasets"
# The store's name of an update_mask path, where the two differ.
_COLUMNS = {"retention": "retention_us", "seasonal_periods_seconds": "seasonal_periods_s"}
# What UpdateDataset may change (its update_mask's rule says the same).
_UPDATABLE = ("name", "description", "unit", "labels", "retention", "seasonal_periods_seconds")


def _name_required() -> InvalidArgument:
    return InvalidArgument(
        "dataset.name is required", violations=[FieldViolation("dataset.name", "value is required")]
    )


class DatasetsApi:
    """CreateDataset, GetDataset, ListDatasets, UpdateDataset, DeleteDataset (a part of AnalyticsServicer)."""

    runner: BlockingRunner
    hub: ResultHub

    async def CreateDataset(
        self, request: pb.CreateDatasetRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateDatasetResponse:
        d = request.dataset
        if not d.name:
            raise _name_required()
        new = dataset_store.NewDataset(
            d.name, d.description, d.unit, dict(d.labels), retention_us(d), sorted(d.seasonal_periods_seconds)
        )
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
        page = PageRequest.of(request.page_token, request.page_size, _LIST_QUERY, text_key)
        rows, total = await self.runner.run(dataset_store.list_datasets, page.fetch, page.after)
        rows, next_token = page.cut(rows, lambda r: [r.name])
        return pb.ListDatasetsResponse(
            datasets=[dataset_to_proto(r) for r in rows],
            next_page_token=next_token,
            total_size=total,
        )

    async def UpdateDataset(
        self, request: pb.UpdateDatasetRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateDatasetResponse:
        d = request.dataset
        paths = update_paths(d, request.update_mask, _UPDATABLE, "dataset")
        if "name" in paths and not d.name:
            raise _name_required()
        new_values: dict[str, Any] = {
            "name": d.name,
            "description": d.description,
            "unit": d.unit,
            "labels": dict(d.labels),
            "retention": retention_us(d),
            "seasonal_periods_seconds": sorted(d.seasonal_periods_seconds),
        }
        changes = {_COLUMNS.get(path, path): new_values[path] for path in paths}
        row = await self.runner.run(dataset_store.update_dataset, d.id, changes)
        return pb.UpdateDatasetResponse(dataset=dataset_to_proto(row))

    async def DeleteDataset(
        self, request: pb.DeleteDatasetRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteDatasetResponse:
        await self.runner.run(dataset_store.delete_dataset, request.id)
        self.hub.dataset_changed(request.id)  # here at once; other replicas on the notification
        return pb.DeleteDatasetResponse()
