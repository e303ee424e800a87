"""A dataset's schedules: the table everyone sees, and for analysts and admins
the form that creates or edits one, and each row's switch and buttons (run
now, edit, delete)."""

from __future__ import annotations

from typing import Any

import reflex as rx
from google.protobuf import field_mask_pb2

from mesh.analytics.v1 import analysis_pb2
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.auth.v1.access_pb2 import ROLE_ANALYST
from mesh_runtime.errors import MeshError
from mesh_web.auth_state import redirect_when_signed_out, requires_role
from mesh_web.components.row_actions import RowAction, row_actions
from mesh_web.components.states import choice, error_lines
from mesh_web.display import create_dataset_errors, service_error_text
from mesh_web.pages.dataset.run import RunAnalysisState
from mesh_web.pages.dataset.state import DatasetState
from mesh_web.result_display import (
    RUNNABLE_KINDS,
    ScheduleRow,
    schedule_from_form,
    schedule_parameters,
    schedule_row,
    schedule_update_fields,
)
from mesh_web.service_clients import rpc


class SchedulesState(DatasetState):
    """The schedule form (new, or filled with the schedule being edited) and the schedules' calls."""

    schedule_errors: list[str] = []
    schedule_saving: bool = False
    editing_schedule_id: str = ""
    schedule_form_kind: str = "report"
    schedule_form_trigger_kind: str = "interval"
    schedule_form_value: str = "3600"
    schedule_form_time_zone: str = ""
    schedule_form_enabled: bool = True
    schedule_form_horizon: str = ""
    schedule_form_key: int = 0

    def _forget_shown(self) -> None:
        self.editing_schedule_id, self.schedule_errors = "", []

    async def _reload_schedules(self) -> None:
        async with self:
            dataset_id = self.ds_id
        request = pb.ListSchedulesRequest(dataset_id=dataset_id, page_size=1000)
        try:
            response = await self._call_signed_in(rpc("analytics", "ListSchedules", request))
        except MeshError as error:
            async with self:
                self.schedule_errors = [service_error_text("analytics", error)]
            return
        async with self:
            self.schedules = [schedule_row(s) for s in response.schedules]

    @rx.event
    def edit_schedule(self, schedule_id: str) -> None:
        """Fill the schedule form with a schedule, to change it."""
        row = next((s for s in self.schedules if s.id == schedule_id), None)
        if row is None:
            return
        self.editing_schedule_id = row.id
        self.schedule_form_kind = row.kind
        self.schedule_form_trigger_kind = row.trigger_kind
        self.schedule_form_value = row.trigger_value
        self.schedule_form_time_zone = row.time_zone
        self.schedule_form_enabled = row.enabled
        horizon = schedule_parameters(row).forecast_horizon
        self.schedule_form_horizon = str(horizon) if horizon else ""
        self.schedule_errors = []
        self.schedule_form_key += 1

    @rx.event
    def new_schedule(self) -> None:
        """Empty the schedule form, to create one."""
        self._clear_schedule_form()

    def _clear_schedule_form(self) -> None:
        self.editing_schedule_id = ""
        self.schedule_form_kind, self.schedule_form_trigger_kind = "report", "interval"
        self.schedule_form_value, self.schedule_form_time_zone, self.schedule_form_enabled = "3600", "", True
        self.schedule_form_horizon = ""
        self.schedule_errors = []
        self.schedule_form_key += 1

    @rx.event(background=True)
    @redirect_when_signed_out
    @requires_role(ROLE_ANALYST)
    async def save_schedule(self, form_data: dict[str, Any]) -> None:
        """Create a schedule, or save the one being edited."""
        async with self:
            if self.schedule_saving:
                return
            dataset_id, editing = self.ds_id, self.editing_schedule_id
            try:
                row = next((s for s in self.schedules if s.id == editing), None) if editing else None
                current = schedule_parameters(row) if row is not None else None
                schedule = schedule_from_form(dataset_id, form_data, current)
            except ValueError as problem:
                self.schedule_errors = [str(problem)]
                return
            self.schedule_saving, self.schedule_errors = True, []
        try:
            if editing:
                schedule.id = editing
                fields = schedule_update_fields(schedule)
                schedule.ClearField("dataset_id")
                mask = field_mask_pb2.FieldMask(paths=fields)
                await self._call_signed_in(
                    rpc("analytics", "UpdateSchedule", pb.UpdateScheduleRequest(schedule=schedule, update_mask=mask))
                )
            else:
                await self._call_signed_in(
                    rpc("analytics", "CreateSchedule", pb.CreateScheduleRequest(schedule=schedule))
                )
        except MeshError as error:
            async with self:
                self.schedule_saving = False
                self.schedule_errors = create_dataset_errors(error, "")
            return
        async with self:
            self.schedule_saving = False
        await self._reload_schedules()
        async with self:
            self._clear_schedule_form()

    @rx.event(background=True)
    @redirect_when_signed_out
    @requires_role(ROLE_ANALYST)
    async def set_schedule_enabled(self, schedule_id: str, enabled: bool) -> None:
        """Enable or disable a schedule."""
        update = analysis_pb2.Schedule(id=schedule_id, enabled=enabled)
        request = pb.UpdateScheduleRequest(schedule=update, update_mask=field_mask_pb2.FieldMask(paths=["enabled"]))
        try:
            await self._call_signed_in(rpc("analytics", "UpdateSchedule", request))
        except MeshError as error:
            async with self:
                self.schedule_errors = [service_error_text("analytics", error)]
            return
        await self._reload_schedules()

    @rx.event(background=True)
    @redirect_when_signed_out
    @requires_role(ROLE_ANALYST)
    async def delete_schedule(self, schedule_id: str) -> None:
        """Delete a schedule."""
        try:
            await self._call_signed_in(rpc("analytics", "DeleteSchedule", pb.DeleteScheduleRequest(id=schedule_id)))
        except MeshError as error:
            async with self:
                self.schedule_errors = [service_error_text("analytics", error)]
            return
        await self._reload_schedules()


def _schedule_form() -> rx.Component:
    editing = SchedulesState.editing_schedule_id != ""
    return rx.form(
        rx.vstack(
            rx.text(
                rx.cond(editing, "Edit schedule", "New schedule"),
                weight="medium",
                data_testid="schedule-form-title",
            ),
            rx.hstack(
                choice(list(RUNNABLE_KINDS), "kind", SchedulesState.schedule_form_kind, "schedule-kind"),
                choice(
                    ["interval", "cron"], "trigger_kind", SchedulesState.schedule_form_trigger_kind, "schedule-trigger"
                ),
                rx.input(
                    name="trigger_value",
                    default_value=SchedulesState.schedule_form_value,
                    placeholder="seconds, or */15 * * * *",
                    aria_label="Every (seconds) or cron",
                    width="12rem",
                    data_testid="schedule-value",
                ),
                rx.input(
                    name="horizon",
                    default_value=SchedulesState.schedule_form_horizon,
                    placeholder="forecast steps",
                    aria_label="Forecast horizon in steps of the series",
                    width="9rem",
                    data_testid="schedule-horizon",
                ),
                rx.input(
                    name="time_zone",
                    default_value=SchedulesState.schedule_form_time_zone,
                    placeholder="time zone (cron), e.g. Europe/Paris",
                    aria_label="Time zone",
                    width="16rem",
                    data_testid="schedule-time-zone",
                ),
                rx.checkbox(
                    "enabled",
                    name="enabled",
                    default_checked=SchedulesState.schedule_form_enabled,
                    data_testid="schedule-enabled",
                ),
                rx.button(
                    rx.cond(editing, "Save", "Create"),
                    type="submit",
                    loading=SchedulesState.schedule_saving,
                    data_testid="schedule-submit",
                ),
                rx.cond(
                    editing,
                    rx.button(
                        "Cancel",
                        type="button",
                        variant="soft",
                        color_scheme="gray",
                        on_click=SchedulesState.new_schedule,
                    ),
                ),
                spacing="2",
                align="center",
                flex_wrap="wrap",
            ),
            error_lines(SchedulesState.schedule_errors, "schedule-error"),
            spacing="2",
            width="100%",
        ),
        on_submit=SchedulesState.save_schedule,
        reset_on_submit=False,
        key=SchedulesState.schedule_form_key,
        width="100%",
        data_testid="schedule-form",
    )


def _schedule_row(row: ScheduleRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.kind),
        rx.table.cell(row.trigger),
        rx.table.cell(
            rx.switch(
                checked=row.enabled,
                disabled=~SchedulesState.can_edit,
                on_change=lambda value: SchedulesState.set_schedule_enabled(row.id, value),  # type: ignore[misc, operator]
                data_testid="schedule-toggle",
            )
        ),
        rx.table.cell(row.next_run, white_space="nowrap"),
        rx.table.cell(
            rx.cond(
                row.last_result_id != "",
                rx.link(row.last_run, href="/results/" + row.last_result_id),
                rx.text(row.last_run),
            ),
            white_space="nowrap",
        ),
        rx.table.cell(
            row_actions(
                SchedulesState.can_edit,
                RowAction("Run now", RunAnalysisState.run_schedule_now(row.id), "schedule-run-now"),  # type: ignore[misc, operator]
                RowAction("Edit", SchedulesState.edit_schedule(row.id), "schedule-edit"),  # type: ignore[misc, operator]
                RowAction("Delete", SchedulesState.delete_schedule(row.id), "schedule-delete", destructive=True),  # type: ignore[misc, operator]
            )
        ),
        data_testid="schedule-row",
    )


def schedules_card() -> rx.Component:
    """The Schedules card: the table, and the form for those who may change schedules."""
    return rx.card(
        rx.vstack(
            rx.heading("Schedules", size="3"),
            rx.cond(
                SchedulesState.has_schedules,
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            rx.table.column_header_cell("Analysis"),
                            rx.table.column_header_cell("When"),
                            rx.table.column_header_cell("Enabled"),
                            rx.table.column_header_cell("Next run"),
                            rx.table.column_header_cell("Last run"),
                            rx.table.column_header_cell(""),
                        )
                    ),
                    rx.table.body(rx.foreach(DatasetState.schedules, _schedule_row)),
                    variant="surface",
                    width="100%",
                ),
                rx.text("No schedules yet.", size="2", color_scheme="gray", data_testid="schedules-empty"),
            ),
            rx.cond(SchedulesState.can_edit, _schedule_form()),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )
