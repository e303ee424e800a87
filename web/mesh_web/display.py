"""How service data and failures are shown: pure functions from protos and
errors to the text the pages display. No Reflex and no network here, so the
rules are unit-tested on their own (tests/web/test_web_state.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime

import grpc
from google.protobuf import timestamp_pb2

from mesh.analytics.v1 import analytics_service_pb2, dataset_pb2
from mesh_runtime.errors import MeshError

MISSING = "—"
"""Shown in a cell whose value is not set (a unitless dataset, an unset time)."""

EMPTY_DATASETS_TEXT = "No datasets yet — create one with grpcurl or the API"

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
    rows = [*shown, *new_rows] if appending else new_rows
    # total_size is a count taken by the server; never claim fewer than we show.
    return DatasetsTable(rows, max(response.total_size, len(rows)), response.next_page_token)


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
