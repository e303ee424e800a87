"""Editing a dataset's name, description, unit and seasonal periods, and deleting it (analysts and admins)."""

from __future__ import annotations

from typing import Any

import reflex as rx
from google.protobuf import field_mask_pb2
from reflex.event import EventSpec

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import dataset_pb2
from mesh.auth.v1.access_pb2 import ROLE_ANALYST
from mesh_runtime.errors import MeshError
from mesh_web.anomaly_display import parse_periods
from mesh_web.auth_state import redirect_when_signed_out, requires_role
from mesh_web.components.states import error_lines
from mesh_web.display import create_dataset_errors, dataset_update_fields, service_error_text
from mesh_web.pages.dataset.state import DatasetState
from mesh_web.service_clients import rpc


class DatasetEditState(DatasetState):
    """The edit form's state and its calls."""

    saving: bool = False
    edit_errors: list[str] = []
    edit_key: int = 0
    notice: str = ""

    def _forget_shown(self) -> None:
        self.notice, self.edit_errors = "", []

    @rx.event(background=True)
    @redirect_when_signed_out
    @requires_role(ROLE_ANALYST)
    async def save(self, form_data: dict[str, Any]) -> None:
        """Save the edited name, description, unit and seasonal periods (only what changed)."""
        name = str(form_data.get("name", "")).strip()
        description = str(form_data.get("description", "")).strip()
        unit = str(form_data.get("unit", "")).strip()
        try:
            periods = parse_periods(str(form_data.get("periods", "")))
        except ValueError as error:
            async with self:
                self.edit_errors, self.notice = [str(error)], ""
            return
        async with self:
            if self.saving:
                return
            current = self._current()
            fields = dataset_update_fields(current, name, description, unit)
            if periods != sorted(current.seasonal_periods_seconds):
                fields.append("seasonal_periods_seconds")
            if not fields:
                self.edit_errors, self.notice = [], "Nothing changed"
                return
            self.saving, self.edit_errors, self.notice = True, [], ""
        update = dataset_pb2.Dataset(
            id=current.id, name=name, description=description, unit=unit, seasonal_periods_seconds=periods
        )
        request = pb.UpdateDatasetRequest(dataset=update, update_mask=field_mask_pb2.FieldMask(paths=fields))
        try:
            response = await self._call_signed_in(rpc("analytics", "UpdateDataset", request))
        except MeshError as error:
            async with self:
                self.saving, self.edit_errors = False, create_dataset_errors(error, name)
            return
        async with self:
            self._show(response.dataset)
            self.saving, self.notice = False, "Saved"
            self.edit_key += 1

    @rx.event(background=True)
    @redirect_when_signed_out
    @requires_role(ROLE_ANALYST)
    async def delete(self) -> EventSpec | None:
        """Delete the dataset and its points, then go back to the datasets."""
        async with self:
            dataset_id = self.ds_id
        try:
            await self._call_signed_in(rpc("analytics", "DeleteDataset", pb.DeleteDatasetRequest(id=dataset_id)))
        except MeshError as error:
            async with self:
                self.edit_errors = [service_error_text("analytics", error)]
            return None
        return rx.redirect("/datasets")


def _delete_button() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(
            rx.button(
                rx.icon("trash_2", size=16),
                "Delete",
                color_scheme="red",
                variant="soft",
                type="button",
                data_testid="delete-dataset",
            ),
        ),
        rx.alert_dialog.content(
            rx.alert_dialog.title("Delete ", DatasetEditState.ds_name, "?"),
            rx.alert_dialog.description(
                "The dataset, its points, schedules and results are removed. This cannot be undone."
            ),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(
                    rx.button(
                        "Delete",
                        color_scheme="red",
                        on_click=DatasetEditState.delete,
                        data_testid="confirm-delete-dataset",
                    )
                ),
                spacing="3",
                justify="end",
            ),
        ),
    )


def edit_card() -> rx.Component:
    """The Edit card: name, description, unit and seasonal periods, Save, and Delete (after a confirmation)."""
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Edit", size="3"),
                rx.hstack(
                    rx.input(
                        name="name",
                        default_value=DatasetEditState.ds_name,
                        aria_label="Name",
                        flex="2",
                        data_testid="edit-dataset-name",
                    ),
                    rx.input(
                        name="description",
                        default_value=DatasetEditState.ds_description,
                        aria_label="Description",
                        placeholder="Description",
                        flex="3",
                        data_testid="edit-dataset-description",
                    ),
                    rx.input(
                        name="unit",
                        default_value=DatasetEditState.ds_unit,
                        aria_label="Unit",
                        placeholder="Unit",
                        flex="1",
                        data_testid="edit-dataset-unit",
                    ),
                    rx.input(
                        name="periods",
                        default_value=DatasetEditState.ds_periods_seconds,
                        aria_label="Seasonal periods (seconds)",
                        placeholder="Seasonal periods, s (e.g. 86400, 604800)",
                        title="Cycles the seasonal anomaly method removes; empty: detected from the data",
                        flex="2",
                        data_testid="edit-dataset-periods",
                    ),
                    rx.button(
                        "Save", type="submit", loading=DatasetEditState.saving, data_testid="edit-dataset-submit"
                    ),
                    _delete_button(),
                    spacing="2",
                    width="100%",
                    flex_wrap="wrap",
                ),
                rx.cond(
                    DatasetEditState.notice != "",
                    rx.text(DatasetEditState.notice, size="2", color_scheme="green", data_testid="edit-dataset-notice"),
                ),
                error_lines(DatasetEditState.edit_errors, "edit-dataset-error"),
                spacing="3",
                width="100%",
            ),
            on_submit=DatasetEditState.save,
            reset_on_submit=False,
            key=DatasetEditState.edit_key,
            width="100%",
        ),
        width="100%",
    )
