"""One dataset's page: its numbers; for analysts and admins, editing and
deleting it, uploading a CSV (with progress and a per-line report),
generating sample data, running an analysis now, and its schedules (create,
edit, enable, run now, delete). Viewers see the numbers and the schedules."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import reflex as rx
from reflex.event import EventSpec

from mesh.analytics.v1 import analysis_pb2, dataset_pb2
from mesh_runtime.errors import MeshError
from mesh_web import service_clients
from mesh_web.auth_state import LOGIN_ROUTE, AuthState, SignedOut, last_path_segment
from mesh_web.components.layout import page_layout
from mesh_web.components.service_banner import service_banner
from mesh_web.components.states import choice, error_lines, loading_line
from mesh_web.display import (
    MAX_CSV_BYTES,
    MISSING,
    create_dataset_errors,
    dataset_update_fields,
    format_count,
    format_timestamp,
    import_report,
    missing_item_text,
    service_error_text,
    upload_percent,
)
from mesh_web.result_display import (
    RUNNABLE_KINDS,
    ScheduleRow,
    kind_value,
    schedule_from_form,
    schedule_parameters,
    schedule_row,
    schedule_update_fields,
)
from sample_data.series import KINDS, generate

ROUTE = "/datasets/[dataset_id]"
UPLOAD_ID = "csv-upload"
SAMPLE_KINDS = tuple(kind.name for kind in KINDS)
"""The sample series shapes on offer (mesh sample-data's): cpu-load, orders-per-minute, …"""
SAMPLE_INTERVAL_SECONDS = 60.0
APPEND_BATCH = 100_000
"""AppendPoints' limit on points per call."""

T = TypeVar("T")


class DatasetState(AuthState):
    """The dataset shown, its schedules, and the state of every form on the page."""

    ds_id: str = ""
    ds_name: str = ""
    ds_description: str = ""
    ds_unit: str = ""
    ds_points: str = MISSING
    ds_first: str = MISSING
    ds_last: str = MISSING
    ds_created: str = MISSING
    loaded: bool = False
    error: str = ""
    notice: str = ""

    saving: bool = False
    edit_errors: list[str] = []
    edit_key: int = 0

    uploading: bool = False
    upload_progress_percent: int = 0
    import_summary: str = ""
    rejected_lines: list[str] = []
    upload_error: str = ""

    generating: bool = False
    sample_summary: str = ""

    running: bool = False
    run_result_id: str = ""
    run_error: str = ""

    schedules: list[ScheduleRow] = []
    schedule_errors: list[str] = []
    schedule_saving: bool = False
    editing_schedule_id: str = ""
    schedule_form_kind: str = "report"
    schedule_form_trigger_kind: str = "interval"
    schedule_form_value: str = "3600"
    schedule_form_time_zone: str = ""
    schedule_form_enabled: bool = True
    schedule_form_key: int = 0

    _dataset: bytes = b""
    _pending_csv: bytes = b""
    _pending_csv_name: str = ""

    @rx.var
    def upload_status(self) -> str:
        """'Uploading… 40%' while the browser sends the file, then 'Importing…'."""
        if self.upload_progress_percent < 100:
            return f"Uploading… {self.upload_progress_percent}%"
        return "Importing…"

    @rx.var
    def has_rejected_lines(self) -> bool:
        """Whether the last import rejected any line."""
        return bool(self.rejected_lines)

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
        self.ds_points = format_count(dataset.point_count)
        self.ds_first = format_timestamp(dataset.first_point_time if dataset.HasField("first_point_time") else None)
        self.ds_last = format_timestamp(dataset.last_point_time if dataset.HasField("last_point_time") else None)
        self.ds_created = format_timestamp(dataset.create_time if dataset.HasField("create_time") else None)

    async def _signed(self, call: Callable[[service_clients.CallMetadata], Awaitable[T]]) -> T:
        return await self._call_signed_in(call)

    @rx.event(background=True)
    async def load(self) -> EventSpec | None:
        """Fetch the dataset of the URL and its schedules."""
        async with self:
            dataset_id = last_path_segment(self.router.url.path)
            if dataset_id != self.ds_id:
                self._reset_page()
        try:
            # Schedules land separately from datasets: their failure must not hide the dataset.
            dataset, schedules = await self._call_all_signed_in(
                lambda md: service_clients.get_dataset(dataset_id, metadata=md),
                lambda md: service_clients.list_schedules(dataset_id, metadata=md),
            )
        except SignedOut:
            return rx.redirect(LOGIN_ROUTE)
        if isinstance(dataset, MeshError):
            async with self:
                self.error = missing_item_text("dataset", "analytics", dataset)
                self.loaded = True
            return None
        async with self:
            self._show(dataset)
            if isinstance(schedules, MeshError):
                self.error = service_error_text("analytics", schedules)
            else:
                self.schedules = [schedule_row(s) for s in schedules]
                self.error = ""
            self.loaded = True
        return None

    def _reset_page(self) -> None:
        """Forget what an earlier dataset's page showed."""
        for name in (
            "ds_id ds_name ds_description ds_unit error notice import_summary upload_error "
            "sample_summary run_result_id run_error editing_schedule_id"
        ).split():
            setattr(self, name, "")
        for name in ("ds_points", "ds_first", "ds_last", "ds_created"):
            setattr(self, name, MISSING)
        self.loaded = False
        self.schedules, self.rejected_lines, self.edit_errors, self.schedule_errors = [], [], [], []
        self.upload_progress_percent = 0

    async def _reload_schedules(self) -> EventSpec | None:
        async with self:
            dataset_id = self.ds_id
        try:
            schedules = await self._signed(lambda md: service_clients.list_schedules(dataset_id, metadata=md))
        except SignedOut:
            return rx.redirect(LOGIN_ROUTE)
        except MeshError as error:
            async with self:
                self.schedule_errors = [service_error_text("analytics", error)]
            return None
        async with self:
            self.schedules = [schedule_row(s) for s in schedules]
        return None

    # --- edit and delete --------------------------------------------------------

    @rx.event(background=True)
    async def save(self, form_data: dict[str, Any]) -> EventSpec | None:
        """Save the edited name, description and unit (only what changed)."""
        name = str(form_data.get("name", "")).strip()
        description = str(form_data.get("description", "")).strip()
        unit = str(form_data.get("unit", "")).strip()
        async with self:
            if self.saving:
                return None
            current = self._current()
            fields = dataset_update_fields(current, name, description, unit)
            if not fields:
                self.edit_errors, self.notice = [], "Nothing changed"
                return None
            self.saving, self.edit_errors, self.notice = True, [], ""
        update = dataset_pb2.Dataset(id=current.id, name=name, description=description, unit=unit)
        try:
            dataset = await self._signed(lambda md: service_clients.update_dataset(update, fields, metadata=md))
        except SignedOut:
            return rx.redirect(LOGIN_ROUTE)
        except MeshError as error:
            async with self:
                self.saving, self.edit_errors = False, create_dataset_errors(error, name)
            return None
        async with self:
            self._show(dataset)
            self.saving, self.notice = False, "Saved"
            self.edit_key += 1
        return None

    @rx.event(background=True)
    async def delete(self) -> EventSpec | None:
        """Delete the dataset and its points, then go back to the datasets."""
        async with self:
            dataset_id = self.ds_id
        try:
            await self._signed(lambda md: service_clients.delete_dataset(dataset_id, metadata=md))
        except SignedOut:
            return rx.redirect(LOGIN_ROUTE)
        except MeshError as error:
            async with self:
                self.edit_errors = [service_error_text("analytics", error)]
            return None
        return rx.redirect("/datasets")

    # --- CSV upload ---------------------------------------------------------------

    @rx.event
    async def upload_csv(self, files: list[rx.UploadFile]) -> EventSpec | None:
        """Take the uploaded CSV file (the browser has sent it to the web server)
        and import it into the dataset in the background."""
        if not files:
            return None
        upload = files[0]
        data = await upload.read()
        self.rejected_lines, self.import_summary, self.upload_error = [], "", ""
        if not data:
            self.upload_error = f"{upload.name}: the file is empty"
            return None
        if len(data) > MAX_CSV_BYTES:
            self.upload_error = f"{upload.name}: larger than the 20 MiB a CSV import takes — split it"
            return None
        self._pending_csv, self._pending_csv_name = data, upload.name or "upload.csv"
        self.uploading, self.upload_progress_percent = True, 100
        return DatasetState.import_pending_csv

    @rx.event
    def upload_progress(self, progress: dict[str, Any]) -> None:
        """Show how much of the file the browser has sent."""
        self.uploading = True
        self.upload_progress_percent = upload_percent(progress)

    @rx.event(background=True)
    async def import_pending_csv(self) -> EventSpec | None:
        """Send the uploaded CSV to ImportCsv and report what was stored and rejected."""
        async with self:
            data, name, dataset_id = self._pending_csv, self._pending_csv_name, self.ds_id
            self._pending_csv = b""
        try:
            response = await self._signed(lambda md: service_clients.import_csv(dataset_id, data, metadata=md))
        except SignedOut:
            return rx.redirect(LOGIN_ROUTE)
        except MeshError as error:
            async with self:
                self.uploading = False
                self.upload_error = f"{name}: " + create_dataset_errors(error, self.ds_name)[0]
            return None
        report = import_report(name, response)
        async with self:
            self.uploading = False
            self.import_summary, self.rejected_lines = report.summary, report.rejected_lines
            if response.HasField("dataset"):
                self._show(response.dataset)
        return None

    # --- sample data ------------------------------------------------------------------

    @rx.event(background=True)
    async def generate_sample(self, form_data: dict[str, Any]) -> EventSpec | None:
        """Append generated points (mesh sample-data's series: trend, cycles,
        noise, injected anomalies) ending now, one a minute."""
        shape = str(form_data.get("shape", SAMPLE_KINDS[0]))
        kind = next((k for k in KINDS if k.name == shape), KINDS[0])
        try:
            points = int(str(form_data.get("points", "2000")).strip())
        except ValueError:
            points = 0
        async with self:
            if self.generating:
                return None
            if not 10 <= points <= 1_000_000:
                self.sample_summary = "points: enter a number from 10 to 1,000,000"
                return None
            self.generating, self.sample_summary = True, ""
            dataset_id = self.ds_id
        end = dt.datetime.now(dt.UTC)
        series = await asyncio.to_thread(generate, kind, points, end, SAMPLE_INTERVAL_SECONDS, points)
        stamps, values = series.timestamps_us.tolist(), series.values.tolist()
        accepted = 0
        try:
            for start in range(0, len(stamps), APPEND_BATCH):
                chunk = slice(start, start + APPEND_BATCH)
                response = await self._signed(
                    lambda md, c=chunk: service_clients.append_points(  # type: ignore[misc]
                        dataset_id, stamps[c], values[c], metadata=md
                    )
                )
                accepted += response.accepted_count
        except SignedOut:
            return rx.redirect(LOGIN_ROUTE)
        except MeshError as error:
            async with self:
                self.generating = False
                self.sample_summary = service_error_text("analytics", error)
            return None
        async with self:
            self.generating = False
            self.sample_summary = (
                f"{format_count(accepted)} {kind.name} points added, "
                f"with {len(series.anomaly_indices)} injected anomalies"
            )
            if response.HasField("dataset"):
                self._show(response.dataset)
        return None

    # --- run now -------------------------------------------------------------------

    @rx.event(background=True)
    async def run_analysis(self, form_data: dict[str, Any]) -> EventSpec | None:
        """Queue an analysis of the dataset now; its result links to its page."""
        kind = kind_value(str(form_data.get("kind", "report")))
        return await self._run(kind)

    @rx.event(background=True)
    async def run_schedule_now(self, schedule_id: str) -> EventSpec | None:
        """Run a schedule's analysis (its kind and parameters) now, outside its timetable."""
        async with self:
            row = next((s for s in self.schedules if s.id == schedule_id), None)
        if row is None:
            return None
        return await self._run(kind_value(row.kind), schedule_parameters(row))

    async def _run(self, kind: int, parameters: analysis_pb2.AnalysisParameters | None = None) -> EventSpec | None:
        async with self:
            if self.running:
                return None
            self.running, self.run_error, self.run_result_id = True, "", ""
            dataset_id = self.ds_id
        try:
            result = await self._signed(
                lambda md: service_clients.run_analysis(dataset_id, kind, parameters, metadata=md)
            )
        except SignedOut:
            return rx.redirect(LOGIN_ROUTE)
        except MeshError as error:
            async with self:
                self.running, self.run_error = False, service_error_text("analytics", error)
            return None
        async with self:
            self.running, self.run_result_id = False, result.id
        return None

    # --- schedules -------------------------------------------------------------------

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
        self.schedule_errors = []
        self.schedule_form_key += 1

    @rx.event(background=True)
    async def save_schedule(self, form_data: dict[str, Any]) -> EventSpec | None:
        """Create a schedule, or save the one being edited."""
        async with self:
            if self.schedule_saving:
                return None
            dataset_id, editing = self.ds_id, self.editing_schedule_id
            try:
                schedule = schedule_from_form(dataset_id, form_data)
            except ValueError as problem:
                self.schedule_errors = [str(problem)]
                return None
            self.schedule_saving, self.schedule_errors = True, []
        try:
            if editing:
                schedule.id = editing
                fields = schedule_update_fields(schedule)
                schedule.ClearField("dataset_id")
                await self._signed(lambda md: service_clients.update_schedule(schedule, fields, metadata=md))
            else:
                await self._signed(lambda md: service_clients.create_schedule(schedule, metadata=md))
        except SignedOut:
            return rx.redirect(LOGIN_ROUTE)
        except MeshError as error:
            async with self:
                self.schedule_saving = False
                self.schedule_errors = create_dataset_errors(error, "")
            return None
        async with self:
            self.schedule_saving = False
        redirect = await self._reload_schedules()
        async with self:
            self._clear_schedule_form()
        return redirect

    @rx.event(background=True)
    async def set_schedule_enabled(self, schedule_id: str, enabled: bool) -> EventSpec | None:
        """Enable or disable a schedule."""
        update = analysis_pb2.Schedule(id=schedule_id, enabled=enabled)
        try:
            await self._signed(lambda md: service_clients.update_schedule(update, ["enabled"], metadata=md))
        except SignedOut:
            return rx.redirect(LOGIN_ROUTE)
        except MeshError as error:
            async with self:
                self.schedule_errors = [service_error_text("analytics", error)]
            return None
        return await self._reload_schedules()

    @rx.event(background=True)
    async def delete_schedule(self, schedule_id: str) -> EventSpec | None:
        """Delete a schedule."""
        try:
            await self._signed(lambda md: service_clients.delete_schedule(schedule_id, metadata=md))
        except SignedOut:
            return rx.redirect(LOGIN_ROUTE)
        except MeshError as error:
            async with self:
                self.schedule_errors = [service_error_text("analytics", error)]
            return None
        return await self._reload_schedules()


# --- the page ---------------------------------------------------------------------------


def _fact(label: str, value: rx.Var[str] | str, test_id: str) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", color_scheme="gray"),
        rx.text(value, weight="medium", data_testid=test_id),
        spacing="0",
    )


def _facts() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(DatasetState.ds_description, color_scheme="gray", data_testid="dataset-description"),
            rx.hstack(
                _fact("Points", DatasetState.ds_points, "dataset-points"),
                _fact("Unit", DatasetState.ds_unit, "dataset-unit"),
                _fact("First point", DatasetState.ds_first, "dataset-first"),
                _fact("Last point", DatasetState.ds_last, "dataset-last"),
                _fact("Created", DatasetState.ds_created, "dataset-created"),
                spacing="6",
                flex_wrap="wrap",
            ),
            rx.link("Results of this dataset →", href="/results?dataset=" + DatasetState.ds_id, size="2"),
            spacing="3",
        ),
        width="100%",
    )


def _edit_card() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Edit", size="3"),
                rx.hstack(
                    rx.input(
                        name="name",
                        default_value=DatasetState.ds_name,
                        aria_label="Name",
                        flex="2",
                        data_testid="edit-dataset-name",
                    ),
                    rx.input(
                        name="description",
                        default_value=DatasetState.ds_description,
                        aria_label="Description",
                        placeholder="Description",
                        flex="3",
                        data_testid="edit-dataset-description",
                    ),
                    rx.input(
                        name="unit",
                        default_value=DatasetState.ds_unit,
                        aria_label="Unit",
                        placeholder="Unit",
                        flex="1",
                        data_testid="edit-dataset-unit",
                    ),
                    rx.button("Save", type="submit", loading=DatasetState.saving, data_testid="edit-dataset-submit"),
                    rx.alert_dialog.root(
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
                            rx.alert_dialog.title("Delete ", DatasetState.ds_name, "?"),
                            rx.alert_dialog.description(
                                "The dataset, its points, schedules and results are removed. This cannot be undone."
                            ),
                            rx.hstack(
                                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                                rx.alert_dialog.action(
                                    rx.button(
                                        "Delete",
                                        color_scheme="red",
                                        on_click=DatasetState.delete,
                                        data_testid="confirm-delete-dataset",
                                    )
                                ),
                                spacing="3",
                                justify="end",
                            ),
                        ),
                    ),
                    spacing="2",
                    width="100%",
                    flex_wrap="wrap",
                ),
                rx.cond(
                    DatasetState.notice != "",
                    rx.text(DatasetState.notice, size="2", color_scheme="green", data_testid="edit-dataset-notice"),
                ),
                error_lines(DatasetState.edit_errors, "edit-dataset-error"),
                spacing="3",
                width="100%",
            ),
            on_submit=DatasetState.save,
            reset_on_submit=False,
            key=DatasetState.edit_key,
            width="100%",
        ),
        width="100%",
    )


def _upload_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Upload a CSV", size="3"),
            rx.text(
                "Rows of timestamp,value (header optional); ISO-8601 or epoch-second timestamps, UTC when no "
                "offset is given. Bad lines are reported and the rest is stored.",
                size="2",
                color_scheme="gray",
            ),
            rx.upload.root(
                rx.vstack(
                    rx.button(rx.icon("upload", size=16), "Choose a CSV file", type="button", variant="soft"),
                    rx.text("or drop it here", size="1", color_scheme="gray"),
                    align="center",
                    spacing="1",
                ),
                id=UPLOAD_ID,
                accept={"text/csv": [".csv"], "text/plain": [".txt"]},
                max_files=1,
                multiple=False,
                on_drop=DatasetState.upload_csv(  # type: ignore[operator]
                    rx.upload_files(
                        upload_id=UPLOAD_ID,
                        on_upload_progress=DatasetState.upload_progress,  # type: ignore[arg-type]
                    )
                ),
                border="1px dashed var(--gray-a7)",
                border_radius="var(--radius-3)",
                padding="1rem",
                width="100%",
                data_testid="csv-upload",
            ),
            rx.cond(
                DatasetState.uploading,
                rx.vstack(
                    rx.progress(value=DatasetState.upload_progress_percent, max=100, width="100%"),
                    rx.text(DatasetState.upload_status, size="2"),
                    width="100%",
                    data_testid="upload-progress",
                ),
            ),
            rx.cond(
                DatasetState.upload_error != "",
                rx.callout(
                    DatasetState.upload_error,
                    icon="triangle_alert",
                    color_scheme="red",
                    width="100%",
                    data_testid="upload-error",
                ),
            ),
            rx.cond(
                DatasetState.import_summary != "",
                rx.vstack(
                    rx.text(DatasetState.import_summary, weight="medium", data_testid="import-summary"),
                    rx.cond(
                        DatasetState.has_rejected_lines,
                        rx.vstack(
                            rx.foreach(
                                DatasetState.rejected_lines,
                                lambda line: rx.code(line, color_scheme="red", data_testid="rejected-line"),
                            ),
                            spacing="1",
                            data_testid="rejected-lines",
                        ),
                    ),
                    spacing="2",
                    width="100%",
                    data_testid="import-report",
                ),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def _sample_and_run_card() -> rx.Component:
    return rx.hstack(
        rx.card(
            rx.form(
                rx.vstack(
                    rx.heading("Generate sample data", size="3"),
                    rx.hstack(
                        choice(list(SAMPLE_KINDS), "shape", SAMPLE_KINDS[0], "sample-shape"),
                        rx.input(
                            name="points",
                            default_value="2000",
                            type="number",
                            width="8rem",
                            aria_label="Points",
                            data_testid="sample-points",
                        ),
                        rx.button(
                            "Generate", type="submit", loading=DatasetState.generating, data_testid="generate-sample"
                        ),
                        spacing="2",
                        align="center",
                    ),
                    rx.text(DatasetState.sample_summary, size="2", data_testid="sample-summary"),
                    spacing="3",
                ),
                on_submit=DatasetState.generate_sample,
                reset_on_submit=False,
            ),
            flex="1",
        ),
        rx.card(
            rx.form(
                rx.vstack(
                    rx.heading("Run an analysis now", size="3"),
                    rx.hstack(
                        choice(list(RUNNABLE_KINDS), "kind", "report", "run-kind"),
                        rx.button(
                            rx.icon("play", size=16),
                            "Run",
                            type="submit",
                            loading=DatasetState.running,
                            data_testid="run-analysis",
                        ),
                        spacing="2",
                        align="center",
                    ),
                    rx.cond(
                        DatasetState.run_result_id != "",
                        rx.link(
                            "Queued — open the result →",
                            href="/results/" + DatasetState.run_result_id,
                            data_testid="run-result-link",
                        ),
                    ),
                    rx.cond(
                        DatasetState.run_error != "",
                        rx.text(DatasetState.run_error, color_scheme="red", size="2", data_testid="run-error"),
                    ),
                    spacing="3",
                ),
                on_submit=DatasetState.run_analysis,
                reset_on_submit=False,
            ),
            flex="1",
        ),
        spacing="4",
        width="100%",
        flex_wrap="wrap",
    )


def _schedule_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.text(
                rx.cond(DatasetState.editing_schedule_id != "", "Edit schedule", "New schedule"),
                weight="medium",
                data_testid="schedule-form-title",
            ),
            rx.hstack(
                choice(list(RUNNABLE_KINDS), "kind", DatasetState.schedule_form_kind, "schedule-kind"),
                choice(
                    ["interval", "cron"], "trigger_kind", DatasetState.schedule_form_trigger_kind, "schedule-trigger"
                ),
                rx.input(
                    name="trigger_value",
                    default_value=DatasetState.schedule_form_value,
                    placeholder="seconds, or */15 * * * *",
                    aria_label="Every (seconds) or cron",
                    width="12rem",
                    data_testid="schedule-value",
                ),
                rx.input(
                    name="time_zone",
                    default_value=DatasetState.schedule_form_time_zone,
                    placeholder="time zone (cron), e.g. Europe/Paris",
                    aria_label="Time zone",
                    width="16rem",
                    data_testid="schedule-time-zone",
                ),
                rx.checkbox(
                    "enabled",
                    name="enabled",
                    default_checked=DatasetState.schedule_form_enabled,
                    data_testid="schedule-enabled",
                ),
                rx.button(
                    rx.cond(DatasetState.editing_schedule_id != "", "Save", "Create"),
                    type="submit",
                    loading=DatasetState.schedule_saving,
                    data_testid="schedule-submit",
                ),
                rx.cond(
                    DatasetState.editing_schedule_id != "",
                    rx.button(
                        "Cancel", type="button", variant="soft", color_scheme="gray", on_click=DatasetState.new_schedule
                    ),
                ),
                spacing="2",
                align="center",
                flex_wrap="wrap",
            ),
            error_lines(DatasetState.schedule_errors, "schedule-error"),
            spacing="2",
            width="100%",
        ),
        on_submit=DatasetState.save_schedule,
        reset_on_submit=False,
        key=DatasetState.schedule_form_key,
        width="100%",
        data_testid="schedule-form",
    )


def _schedules_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Schedules", size="3"),
            rx.cond(
                DatasetState.has_schedules,
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
                    rx.table.body(
                        rx.foreach(
                            DatasetState.schedules,
                            lambda row: rx.table.row(
                                rx.table.cell(row.kind),
                                rx.table.cell(row.trigger),
                                rx.table.cell(
                                    rx.switch(
                                        checked=row.enabled,
                                        disabled=~DatasetState.can_edit,
                                        on_change=lambda value: DatasetState.set_schedule_enabled(row.id, value),  # type: ignore[misc, operator]
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
                                    rx.cond(
                                        DatasetState.can_edit,
                                        rx.hstack(
                                            rx.button(
                                                "Run now",
                                                size="1",
                                                variant="soft",
                                                on_click=DatasetState.run_schedule_now(row.id),  # type: ignore[misc, operator]
                                                data_testid="schedule-run-now",
                                            ),
                                            rx.button(
                                                "Edit",
                                                size="1",
                                                variant="soft",
                                                on_click=DatasetState.edit_schedule(row.id),  # type: ignore[misc, operator]
                                                data_testid="schedule-edit",
                                            ),
                                            rx.button(
                                                "Delete",
                                                size="1",
                                                variant="soft",
                                                color_scheme="red",
                                                on_click=DatasetState.delete_schedule(row.id),  # type: ignore[misc, operator]
                                                data_testid="schedule-delete",
                                            ),
                                            spacing="1",
                                        ),
                                    )
                                ),
                                data_testid="schedule-row",
                            ),
                        )
                    ),
                    variant="surface",
                    width="100%",
                ),
                rx.text("No schedules yet.", size="2", color_scheme="gray", data_testid="schedules-empty"),
            ),
            rx.cond(DatasetState.can_edit, _schedule_form()),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def dataset_page() -> rx.Component:
    """A dataset's page."""
    return page_layout(
        rx.hstack(
            rx.link("← Datasets", href="/datasets", size="2"),
            rx.heading(
                rx.cond(DatasetState.ds_name != "", DatasetState.ds_name, "Dataset"),
                size="7",
                data_testid="dataset-title",
            ),
            align="baseline",
            spacing="4",
        ),
        service_banner(DatasetState.error),
        rx.cond(
            DatasetState.ds_id != "",
            rx.vstack(
                _facts(),
                rx.cond(
                    DatasetState.can_edit,
                    rx.vstack(_edit_card(), _upload_card(), _sample_and_run_card(), spacing="4", width="100%"),
                ),
                _schedules_card(),
                spacing="4",
                width="100%",
            ),
            rx.cond(~DatasetState.loaded, loading_line("Loading the dataset…", "dataset-loading")),
        ),
    )
