"""Uploading a CSV into a dataset, with the upload's progress and a report of
what was stored and which lines were rejected (analysts and admins)."""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex.event import EventSpec

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.auth.v1.access_pb2 import ROLE_ANALYST
from mesh_runtime.errors import MeshError
from mesh_web.auth_state import redirect_when_signed_out, requires_role
from mesh_web.display import MAX_CSV_BYTES, create_dataset_errors, import_report, upload_percent
from mesh_web.pages.dataset.state import DatasetState
from mesh_web.service_clients import import_csv_timeout, rpc

UPLOAD_ID = "csv-upload"


class CsvUploadState(DatasetState):
    """The upload's progress and the last import's report."""

    uploading: bool = False
    upload_progress_percent: int = 0
    import_summary: str = ""
    rejected_lines: list[str] = []
    upload_error: str = ""

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

    def _forget_shown(self) -> None:
        self.import_summary, self.upload_error, self.rejected_lines = "", "", []
        self.upload_progress_percent = 0

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
        return CsvUploadState.import_pending_csv

    @rx.event
    def upload_progress(self, progress: dict[str, Any]) -> None:
        """Show how much of the file the browser has sent."""
        self.uploading = True
        self.upload_progress_percent = upload_percent(progress)

    @rx.event(background=True)
    @redirect_when_signed_out
    @requires_role(ROLE_ANALYST)
    async def import_pending_csv(self) -> None:
        """Send the uploaded CSV to ImportCsv and report what was stored and rejected."""
        async with self:
            data, name, dataset_id = self._pending_csv, self._pending_csv_name, self.ds_id
            self._pending_csv = b""
        request = pb.ImportCsvRequest(dataset_id=dataset_id, csv=data)
        try:
            response = await self._call_signed_in(
                rpc("analytics", "ImportCsv", request, timeout=import_csv_timeout(data))
            )
        except MeshError as error:
            async with self:
                self.uploading = False
                self.upload_error = f"{name}: " + create_dataset_errors(error, self.ds_name)[0]
            return
        report = import_report(name, response)
        async with self:
            self.uploading = False
            self.import_summary, self.rejected_lines = report.summary, report.rejected_lines
            if response.HasField("dataset"):
                self._show(response.dataset)


def upload_card() -> rx.Component:
    """The Upload a CSV card: a drop zone, the upload's progress, and the import's report."""
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
                on_drop=CsvUploadState.upload_csv(  # type: ignore[operator]
                    rx.upload_files(
                        upload_id=UPLOAD_ID,
                        on_upload_progress=CsvUploadState.upload_progress,  # type: ignore[arg-type]
                    )
                ),
                border="1px dashed var(--gray-a7)",
                border_radius="var(--radius-3)",
                padding="1rem",
                width="100%",
                data_testid="csv-upload",
            ),
            rx.cond(
                CsvUploadState.uploading,
                rx.vstack(
                    rx.progress(value=CsvUploadState.upload_progress_percent, max=100, width="100%"),
                    rx.text(CsvUploadState.upload_status, size="2"),
                    width="100%",
                    data_testid="upload-progress",
                ),
            ),
            rx.cond(
                CsvUploadState.upload_error != "",
                rx.callout(
                    CsvUploadState.upload_error,
                    icon="triangle_alert",
                    color_scheme="red",
                    width="100%",
                    data_testid="upload-error",
                ),
            ),
            rx.cond(
                CsvUploadState.import_summary != "",
                rx.vstack(
                    rx.text(CsvUploadState.import_summary, weight="medium", data_testid="import-summary"),
                    rx.cond(
                        CsvUploadState.has_rejected_lines,
                        rx.vstack(
                            rx.foreach(
                                CsvUploadState.rejected_lines,
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
