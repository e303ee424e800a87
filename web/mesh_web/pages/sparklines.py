"""The dashboard's sparklines: the last day (back from now) of the ten
datasets written to most recently, each as one small line of half-hour
means, all from one BatchQueryPoints call."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import reflex as rx

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import dataset_pb2, points_pb2
from mesh_runtime.errors import MeshError
from mesh_runtime.wire import us_to_duration, us_to_timestamp
from mesh_web.auth_state import AuthState, redirect_when_signed_out
from mesh_web.display import service_error_text
from mesh_web.service_clients import rpc

SPARKLINE_DATASETS = 10
"""Datasets with a sparkline: BatchQueryPoints buckets at most 10 at once."""
LISTED_DATASETS = 1000
"""Datasets looked at to find the ones most recently written to."""
DAY_US = 86_400_000_000
SPARKLINE_STEP_US = 1_800_000_000
"""Half an hour: 48 points a day, plenty for a 160 px line."""


@dataclasses.dataclass(frozen=True)
class SparklineRow:
    """One dataset's sparkline: its half-hour means (None where empty) and how many half hours had points."""

    id: str
    name: str
    points: list[dict[str, float | None]]
    filled: int


def latest_written(datasets: Sequence[dataset_pb2.Dataset], now_s: float | None = None) -> list[tuple[str, str]]:
    """Id and name of the SPARKLINE_DATASETS datasets whose last point is latest
    (those with points), leaving out datasets whose last point lies in the
    future (forecasts, test data at year 9999): they were not written recently."""
    now = time.time() if now_s is None else now_s
    written = [d for d in datasets if d.HasField("last_point_time") and d.last_point_time.seconds <= now]
    written.sort(key=lambda d: (d.last_point_time.seconds, d.last_point_time.nanos), reverse=True)
    return [(d.id, d.name) for d in written[:SPARKLINE_DATASETS]]


def sparkline_rows(
    datasets: list[tuple[str, str]], answer: pb.BatchQueryPointsResponse, start_us: int
) -> list[SparklineRow]:
    """One row per dataset (id, name): its half-hour means as the line's
    points, a None for each empty half hour so gaps show, and how many
    half hours had points."""
    by_id = {entry.dataset_id: entry.buckets for entry in answer.datasets}
    rows: list[SparklineRow] = []
    for dataset_id, name in datasets:
        buckets = by_id.get(dataset_id, points_pb2.PointBuckets())
        means = dict(zip(buckets.start_times_us, buckets.mean, strict=False))
        points = [{"v": means.get(start_us + k * SPARKLINE_STEP_US)} for k in range(DAY_US // SPARKLINE_STEP_US)]
        rows.append(SparklineRow(dataset_id, name, points, len(means)))
    return rows


class SparklinesState(AuthState):
    """The sparklines shown and what went wrong fetching them."""

    sparklines: list[SparklineRow] = []
    sparklines_error: str = ""
    sparklines_loaded: bool = False

    @rx.event(background=True)
    @redirect_when_signed_out
    async def load_sparklines(self) -> None:
        """The last day (back from now) of the first datasets, in one BatchQueryPoints."""
        try:
            listed = await self._call_signed_in(
                rpc("analytics", "ListDatasets", pb.ListDatasetsRequest(page_size=LISTED_DATASETS))
            )
            datasets = latest_written(listed.datasets)
            end_us = (time.time_ns() // 1000) // SPARKLINE_STEP_US * SPARKLINE_STEP_US + SPARKLINE_STEP_US
            start_us = end_us - DAY_US
            answer = pb.BatchQueryPointsResponse()
            if datasets:
                request = pb.BatchQueryPointsRequest(
                    dataset_ids=[dataset_id for dataset_id, _ in datasets],
                    start_time=us_to_timestamp(start_us),
                    end_time=us_to_timestamp(end_us),
                    origin=us_to_timestamp(start_us),
                    step=us_to_duration(SPARKLINE_STEP_US),
                    aggregations=[points_pb2.AGGREGATION_MEAN],
                )
                answer = await self._call_signed_in(rpc("analytics", "BatchQueryPoints", request))
        except MeshError as error:
            async with self:
                self.sparklines_error = service_error_text("analytics", error)
                self.sparklines_loaded = True
            return
        async with self:
            self.sparklines = sparkline_rows(datasets, answer, start_us)
            self.sparklines_error, self.sparklines_loaded = "", True


def _sparkline(row: SparklineRow) -> rx.Component:
    return rx.hstack(
        rx.link(row.name, href="/datasets/" + row.id, size="2", width="12em", truncate=True),
        rx.cond(
            row.filled > 0,
            rx.recharts.line_chart(
                rx.recharts.line(
                    data_key="v",
                    stroke="var(--accent-9)",
                    dot=False,
                    is_animation_active=False,
                    type_="linear",
                    class_name="sparkline-line",
                ),
                rx.recharts.y_axis(hide=True, domain=["auto", "auto"]),
                data=row.points,
                width=200,
                height=32,
            ),
            rx.text("no points in the last day", size="1", color_scheme="gray", data_testid="sparkline-empty"),
        ),
        align="center",
        spacing="3",
        data_testid="sparkline-row",
        data_dataset=row.name,
        data_filled=row.filled,
    )


def sparklines_card() -> rx.Component:
    """The Last day card: a sparkline per dataset (the ten written to last)."""
    return rx.card(
        rx.vstack(
            rx.heading("Last day", size="4"),
            rx.cond(
                SparklinesState.sparklines_error != "",
                rx.text(SparklinesState.sparklines_error, color_scheme="red", size="2", data_testid="sparklines-error"),
            ),
            rx.foreach(SparklinesState.sparklines, _sparkline),
            spacing="2",
            width="100%",
        ),
        width="100%",
        on_mount=SparklinesState.load_sparklines,
        data_testid="sparklines",
    )
