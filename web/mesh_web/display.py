"""How service data and failures are shown: pure functions from protos and
errors to the text the pages display. No Reflex and no network here, so the
rules are unit-tested on their own (tests/web/test_web_state.py)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from datetime import UTC, datetime

import grpc
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2

from mesh.analytics.v1 import analytics_service_pb2, dataset_pb2
from mesh_runtime.errors import InvalidArgument, MeshError

MISSING = "—"
"""Shown in a cell whose value is not set (a unitless dataset, an unset time)."""

EMPTY_DATASETS_TEXT = (
    "No datasets yet — analysts create them with the form above (then upload a CSV or generate "
    "sample data on the dataset's page) or through the API; ./mesh sample-data loads examples"
)

# Codes that mean "the service could not be reached or did not answer", as
# opposed to "it answered with an error".
_UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclasses.dataclass(frozen=True)
class DatasetRow:
    """One row of the datasets table, every cell already formatted as text."""

    id: str
    name: str
    description: str
    unit: str
    point_count: str
    created: str


def format_count(count: int) -> str:
    """A count with thousands separators: 1234567 -> '1,234,567'."""
    return f"{count:,}"


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """'1 anomaly', '2 anomalies', '0 results': a count with its noun, in the right number."""
    noun = singular if count == 1 else (plural or singular + "s")
    return f"{format_count(count)} {noun}"


def format_timestamp(timestamp: timestamp_pb2.Timestamp | None) -> str:
    """A protobuf timestamp as 'YYYY-MM-DD HH:MM UTC', or MISSING when unset.

    Always UTC: the text is rendered on the server, which cannot know the
    viewer's time zone, and a labelled UTC time is never misread.
    """
    if timestamp is None or (timestamp.seconds == 0 and timestamp.nanos == 0):
        return MISSING
    moment = datetime.fromtimestamp(timestamp.seconds, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def dataset_row(dataset: dataset_pb2.Dataset) -> DatasetRow:
    """The table row of one dataset."""
    return DatasetRow(
        id=dataset.id,
        name=dataset.name,
        description=dataset.description,
        unit=dataset.unit or MISSING,
        point_count=format_count(dataset.point_count),
        created=format_timestamp(dataset.create_time if dataset.HasField("create_time") else None),
    )


@dataclasses.dataclass(frozen=True)
class DatasetsTable:
    """What the datasets table shows after a page of ListDatasets arrived."""

    rows: list[DatasetRow]
    total_size: int
    next_page_token: str


def table_after_page(
    shown: Sequence[DatasetRow], response: analytics_service_pb2.ListDatasetsResponse, *, appending: bool
) -> DatasetsTable:
    """The table after ``response``: appended to ``shown`` ("Load more") or
    replacing it (a first load or Refresh)."""
    new_rows = [dataset_row(dataset) for dataset in response.datasets]
    if appending:
        # A row already shown (a dataset just created, pinned by with_row) is not repeated.
        known = {row.id for row in shown}
        rows = [*shown, *(row for row in new_rows if row.id not in known)]
    else:
        rows = new_rows
    # total_size is a count taken by the server; never claim fewer than we show.
    return DatasetsTable(rows, max(response.total_size, len(rows)), response.next_page_token)


def with_row(table: DatasetsTable, row: DatasetRow) -> DatasetsTable:
    """``table`` with ``row`` in it: a dataset just created stays in sight even
    when it sorts past the pages loaded (it is added at their end, and a later
    page that holds it does not repeat it)."""
    if any(shown.id == row.id for shown in table.rows):
        return table
    rows = [*table.rows, row]
    return DatasetsTable(rows, max(table.total_size, len(rows)), table.next_page_token)


def datasets_summary(shown: int, total: int) -> str:
    """The line above the table: how many datasets there are and how many are shown."""
    noun = "dataset" if total == 1 else "datasets"
    if shown >= total:
        return f"{format_count(total)} {noun}"
    return f"Showing {format_count(shown)} of {format_count(total)} {noun}"


def service_error_text(service: str, error: MeshError) -> str:
    """The banner line for a failed call to ``service``: names the service and
    says whether it is down or answered with an error, never a traceback."""
    message = error.message.strip() or error.code.name
    if error.code in _UNREACHABLE:
        return f"{service} service unavailable: {message}"
    return f"{service} service error ({error.code.name}): {message}"


def missing_item_text(item: str, service: str, error: MeshError) -> str:
    """The banner of a page whose item (a dataset, a result) could not be
    fetched: plain words when it does not exist, else the service's error."""
    if error.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
        return f"There is no such {item}: it may have been deleted, or the link is wrong"
    return service_error_text(service, error)


# --- signing in and creating datasets -----------------------------------------

WRONG_CREDENTIALS_TEXT = "Wrong username or password"
MISSING_CREDENTIALS_TEXT = "Enter your username and password"


@dataclasses.dataclass(frozen=True)
class CallProblem:
    """What a page shows after a failed call: a line beside the form the user
    can act on, or the service banner when the service is down or broken."""

    form_error: str = ""
    banner: str = ""


def retry_after_seconds(error: MeshError) -> int | None:
    """Whole seconds to wait before retrying, from the error's RetryInfo (rounded up), if it has one."""
    info = error.detail(error_details_pb2.RetryInfo)
    if not isinstance(info, error_details_pb2.RetryInfo) or not info.HasField("retry_delay"):
        return None
    return max(1, math.ceil(info.retry_delay.ToNanoseconds() / 1e9))


def login_problem(error: MeshError) -> CallProblem:
    """What the login page shows after Login failed."""
    if error.code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT):
        # A username or password outside Login's length rules matches no account either.
        return CallProblem(form_error=WRONG_CREDENTIALS_TEXT)
    if error.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        wait = retry_after_seconds(error)
        when = f"in {wait} s" if wait is not None else "later"
        return CallProblem(form_error=f"Too many attempts — try again {when}")
    return CallProblem(banner=service_error_text("analytics", error))


def field_label(field_path: str) -> str:
    """The form field a violation's path names: 'dataset.name' -> 'name'."""
    return field_path.removeprefix("dataset.")


def create_dataset_errors(error: MeshError, name: str) -> list[str]:
    """The lines shown beside the New dataset form after CreateDataset failed:
    one per invalid field, or one saying what else went wrong."""
    if isinstance(error, InvalidArgument) and error.violations:
        return [f"{field_label(v.field)}: {v.description}" for v in error.violations]
    if error.code == grpc.StatusCode.ALREADY_EXISTS:
        return [f"A dataset named {name!r} already exists — choose another name"]
    if error.code == grpc.StatusCode.PERMISSION_DENIED:
        return [f"Your role may not create datasets: {error.message}"]
    if error.code == grpc.StatusCode.INVALID_ARGUMENT:
        return [error.message]
    return [service_error_text("analytics", error)]


# --- CSV imports ----------------------------------------------------------------

MAX_CSV_BYTES = 20 * 1024 * 1024
"""ImportCsv's limit on one file (20 MiB)."""


@dataclasses.dataclass(frozen=True)
class ImportReport:
    """What an upload stored and which lines it rejected, as the page shows it."""

    summary: str
    rejected_lines: list[str]


def import_report(file_name: str, response: analytics_service_pb2.ImportCsvResponse) -> ImportReport:
    """The report of one CSV import: a summary line and one line per rejected CSV line."""
    accepted, rejected = response.accepted_count, response.rejected_count
    summary = f"{file_name}: {format_count(accepted)} points stored"
    if rejected:
        noun = "line" if rejected == 1 else "lines"
        summary += f", {format_count(rejected)} {noun} rejected"
    lines = [f"line {r.line}: {r.reason}" for r in response.rejected_lines]
    if rejected > len(lines):
        lines.append(f"… and {format_count(rejected - len(lines))} more")
    return ImportReport(summary, lines)


def upload_percent(progress: dict[str, object]) -> int:
    """The whole percentage of an upload from Reflex's progress event ({'progress': 0..1, ...})."""
    raw = progress.get("progress", 0)
    try:
        fraction = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0
    if not math.isfinite(fraction):
        return 0
    return max(0, min(100, round(fraction * 100)))


def dataset_update_fields(current: dataset_pb2.Dataset, name: str, description: str, unit: str) -> list[str]:
    """The update mask of an edited dataset: only the fields that changed."""
    changed = []
    for field, value in (("name", name), ("description", description), ("unit", unit)):
        if getattr(current, field) != value:
            changed.append(field)
    return changed


def filter_rows(rows: Sequence[DatasetRow], search: str) -> list[DatasetRow]:
    """The datasets whose name, description or unit contain ``search`` (any case)."""
    needle = search.strip().lower()
    if not needle:
        return list(rows)
    return [r for r in rows if needle in r.name.lower() or needle in r.description.lower() or needle in r.unit.lower()]


# --- health of the mesh -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HealthRow:
    """One service on the dashboard: its name, 'serving', 'not serving' or 'down', and why."""

    service: str
    status: str
    detail: str


def health_row(service: str, status: str | MeshError) -> HealthRow:
    """The health line of ``service`` from its check's answer or failure."""
    if isinstance(status, MeshError):
        return HealthRow(service, "down", service_error_text(service, status))
    return HealthRow(service, status, "")
