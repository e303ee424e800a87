"""What a dataset's page shows: the dataset of the URL and its schedules.
Each feature of the page (edit, upload, sample data, run, schedules) is a
substate of ``DatasetState`` in a module of its own, beside its component."""

from __future__ import annotations

import reflex as rx

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import dataset_pb2
from mesh_runtime.errors import MeshError
from mesh_web.anomaly_display import periods_field, periods_text
from mesh_web.auth_state import AuthState, last_path_segment, redirect_when_signed_out
from mesh_web.display import MISSING, format_count, format_timestamp, missing_item_text, service_error_text
from mesh_web.result_display import ScheduleRow, schedule_row
from mesh_web.service_clients import rpc

ROUTE = "/datasets/[dataset_id]"


class DatasetState(AuthState):
    """The dataset shown and its schedules."""

    ds_id: str = ""
    ds_name: str = ""
    ds_description: str = ""
    ds_unit: str = ""
    ds_periods: str = ""
    ds_periods_seconds: str = ""
    ds_points: str = MISSING
    ds_first: str = MISSING
    ds_last: str = MISSING
    ds_created: str = MISSING
    loaded: bool = False
    error: str = ""

    schedules: list[ScheduleRow] = []

    _dataset: bytes = b""

    @rx.var
    def has_schedules(self) -> bool:
        """Whether the dataset has any schedule."""
        return bool(self.schedules)

    def _current(self) -> dataset_pb2.Dataset:
        return dataset_pb2.Dataset.FromString(self._dataset)

    def _show(self, dataset: dataset_pb2.Dataset) -> None:
        self._dataset = dataset.SerializeToString()
        self.ds_id = dataset.id
        self.ds_name = dataset.name
        self.ds_description = dataset.description
        self.ds_unit = dataset.unit
        self.ds_periods = periods_text(dataset.seasonal_periods_seconds)
        self.ds_periods_seconds = periods_field(dataset.seasonal_periods_seconds)
        self.ds_points = format_count(dataset.point_count)
        self.ds_first = format_timestamp(dataset.first_point_time if dataset.HasField("first_point_time") else None)
        self.ds_last = format_timestamp(dataset.last_point_time if dataset.HasField("last_point_time") else None)
        self.ds_created = format_timestamp(dataset.create_time if dataset.HasField("create_time") else None)

    @rx.event(background=True)
    @redirect_when_signed_out
    async def load(self) -> None:
        """Fetch the dataset of the URL and its schedules."""
        async with self:
            dataset_id = last_path_segment(self.router.url.path)
            if dataset_id != self.ds_id:
                self._reset_page()
        # Schedules land separately from datasets: their failure must not hide the dataset.
        dataset, schedules = await self._call_all_signed_in(
            rpc("analytics", "GetDataset", pb.GetDatasetRequest(id=dataset_id)),
            rpc("analytics", "ListSchedules", pb.ListSchedulesRequest(dataset_id=dataset_id, page_size=1000)),
        )
        if isinstance(dataset, MeshError):
            async with self:
                self.error = missing_item_text("dataset", "analytics", dataset)
                self.loaded = True
            return
        async with self:
            self._show(dataset.dataset)
            if isinstance(schedules, MeshError):
                self.error = service_error_text("analytics", schedules)
            else:
                self.schedules = [schedule_row(s) for s in schedules.schedules]
                self.error = ""
            self.loaded = True

    def _reset_page(self) -> None:
        """Forget what an earlier dataset's page showed, in every feature too."""
        for name in ("ds_id", "ds_name", "ds_description", "ds_unit", "ds_periods", "ds_periods_seconds", "error"):
            setattr(self, name, "")
        for name in ("ds_points", "ds_first", "ds_last", "ds_created"):
            setattr(self, name, MISSING)
        self.loaded = False
        self.schedules = []
        for feature in self.substates.values():
            feature._forget_shown()

    def _forget_shown(self) -> None:
        """A feature's own part of _reset_page: forget the reports it showed."""
