"""The Compare page: two or more datasets overlaid on one time axis, each as
the line of its bucket means, on a left value axis in the first dataset's
unit and a right one for the second unit when they differ. The datasets are
in the URL (``/compare?ids=ID,ID``), so a comparison can be shared; the
Datasets table opens it for the rows picked. Every view is one
BatchQueryPoints call (the service reduces; no raw point reaches the web
process), with the dataset chart's range presets, drag-to-zoom, zoom and pan."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import reflex as rx

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import dataset_pb2, points_pb2
from mesh_runtime.errors import MeshError
from mesh_runtime.wire import timestamp_to_us, us_to_duration, us_to_timestamp
from mesh_web.auth_state import AuthState, redirect_when_signed_out
from mesh_web.components.layout import page_layout
from mesh_web.components.service_banner import service_banner
from mesh_web.components.states import loading_line
from mesh_web.components.zoom_chart import time_axis, time_tooltip, zoom_chart, zoom_pan_buttons
from mesh_web.display import missing_item_text, service_error_text
from mesh_web.pages.dataset.chart import (
    CHART_BUCKETS,
    PRESET_LABELS,
    PRESETS,
    _time_text,
    buckets_for_width,
    chart_step_us,
    dragged,
    duration_text,
    panned,
    preset_range,
    zoomed,
)
from mesh_web.service_clients import rpc

ROUTE = "/compare"
MAX_DATASETS = 10
"""BatchQueryPoints buckets at most ten datasets at once."""
COLORS = (
    "var(--blue-9)",
    "var(--orange-9)",
    "var(--grass-9)",
    "var(--crimson-9)",
    "var(--violet-9)",
    "var(--cyan-9)",
    "var(--amber-10)",
    "var(--pink-9)",
    "var(--brown-9)",
    "var(--gray-11)",
)


def compare_href(dataset_ids: Sequence[str]) -> str:
    """'/compare?ids=A,B': the shareable address of a comparison."""
    return ROUTE + "?ids=" + ",".join(dataset_ids)


def ids_from_query(text: str) -> list[str]:
    """The dataset ids of ``?ids=``: comma-separated, blanks and repeats dropped, in order."""
    seen: list[str] = []
    for piece in text.split(","):
        piece = piece.strip()
        if piece and piece not in seen:
            seen.append(piece)
    return seen


@dataclasses.dataclass(frozen=True)
class CompareSeries:
    """One dataset's line: the row key holding its means, its name, unit, axis and colour."""

    key: str
    id: str
    name: str
    unit: str
    axis: str
    color: str


def assign_axes(datasets: Sequence[dataset_pb2.Dataset]) -> tuple[list[CompareSeries], list[str]]:
    """Each dataset's line on the left axis (the first dataset's unit) or the
    right one (the second unit met), and the units of the axes. ValueError
    when the datasets have more than two units between them."""
    units: list[str] = []
    series: list[CompareSeries] = []
    for i, dataset in enumerate(datasets):
        if dataset.unit not in units:
            units.append(dataset.unit)
        if len(units) > 2:
            raise ValueError(
                "These datasets have more than two units between them ("
                + ", ".join(u or "no unit" for u in units)
                + "): a chart has two value axes. Compare datasets of at most two units."
            )
        axis = "left" if dataset.unit == units[0] else "right"
        series.append(CompareSeries(f"d{i}", dataset.id, dataset.name, dataset.unit, axis, COLORS[i % len(COLORS)]))
    return series, units


def compare_rows(series: Sequence[CompareSeries], answer: pb.BatchQueryPointsResponse) -> list[dict[str, Any]]:
    """The chart's rows: one per bucket start any dataset has (in time order),
    't' in epoch ms and each dataset's mean under its key (None where it has
    no points)."""
    by_id = {entry.dataset_id: entry.buckets for entry in answer.datasets}
    table: dict[int, dict[str, Any]] = {}
    for line in series:
        buckets = by_id.get(line.id, points_pb2.PointBuckets())
        for start, mean in zip(buckets.start_times_us, buckets.mean, strict=False):
            row = table.setdefault(start, {"t": start // 1000, **{s.key: None for s in series}})
            row[line.key] = mean
    return [table[start] for start in sorted(table)]


def bounds_of(datasets: Sequence[dataset_pb2.Dataset]) -> tuple[int, int] | None:
    """The first point of any of the datasets and the last, None when none has points."""
    with_points = [d for d in datasets if d.HasField("first_point_time") and d.HasField("last_point_time")]
    if not with_points:
        return None
    return (
        min(timestamp_to_us(d.first_point_time) for d in with_points),
        max(timestamp_to_us(d.last_point_time) for d in with_points),
    )


def _padded(values: list[str], fill: str) -> list[str]:
    return values + [fill] * (MAX_DATASETS - len(values))


class CompareState(AuthState):
    """The datasets compared, the range shown and its rows."""

    series: list[CompareSeries] = []
    units: list[str] = []
    rows: list[dict[str, Any]] = []
    preset: str = "day"
    zoomed_in: bool = False
    caption: str = ""
    range_start: str = ""
    range_end: str = ""
    bucket_count: int = 0
    loading: bool = False
    loaded: bool = False
    error: str = ""

    _datasets: list[bytes] = []
    _start_us: int = 0
    _end_us: int = 0
    _step_us: int = 0
    _buckets: int = CHART_BUCKETS
    _home_preset: str = "day"

    @rx.var
    def line_count(self) -> int:
        """How many datasets are compared."""
        return len(self.series)

    @rx.var
    def line_keys(self) -> list[str]:
        """Row keys of the ten lines the chart has room for ('' for an unused one)."""
        return _padded([s.key for s in self.series], "unused")

    @rx.var
    def line_names(self) -> list[str]:
        """Legend names of the lines: the dataset and its unit."""
        return _padded([f"{s.name} ({s.unit})" if s.unit else s.name for s in self.series], "")

    @rx.var
    def line_axes(self) -> list[str]:
        """The value axis of each line."""
        return _padded([s.axis for s in self.series], "left")

    @rx.var
    def line_colors(self) -> list[str]:
        """The colour of each line."""
        return _padded([s.color for s in self.series], "none")

    @rx.var
    def left_unit(self) -> str:
        """The unit of the left value axis."""
        return self.units[0] if self.units else ""

    @rx.var
    def right_unit(self) -> str:
        """The unit of the right value axis ('' when there is one unit)."""
        return self.units[1] if len(self.units) > 1 else ""

    @rx.var
    def two_axes(self) -> bool:
        """Whether the datasets have two units between them."""
        return len(self.units) > 1

    @rx.var
    def share_link(self) -> str:
        """This comparison's address."""
        return compare_href([s.id for s in self.series])

    def _current(self) -> list[dataset_pb2.Dataset]:
        return [dataset_pb2.Dataset.FromString(raw) for raw in self._datasets]

    @rx.event(background=True)
    @redirect_when_signed_out
    async def load(self) -> None:
        """Fetch the datasets of the URL (?ids=A,B) and show the last day of them."""
        async with self:
            ids = ids_from_query(str(self.router.url.query_parameters.get("ids", "")))
            self.series, self.units, self.rows, self.caption, self.bucket_count = [], [], [], "", 0
            self.range_start = self.range_end = ""
            self.loaded, self.error, self.preset, self._home_preset, self.zoomed_in = False, "", "day", "day", False
            self._datasets, self._buckets = [], CHART_BUCKETS
        problem = ""
        if len(ids) < 2:
            problem = "Pick two or more datasets to compare (in the Datasets table), or give them as ?ids=A,B."
        elif len(ids) > MAX_DATASETS:
            problem = f"Compare at most {MAX_DATASETS} datasets at once; the link names {len(ids)}."
        if problem:
            async with self:
                self.error, self.loaded = problem, True
            return
        answers = await self._call_all_signed_in(
            *(rpc("analytics", "GetDataset", pb.GetDatasetRequest(id=dataset_id)) for dataset_id in ids)
        )
        for answer in answers:
            if isinstance(answer, MeshError):
                async with self:
                    self.error, self.loaded = missing_item_text("dataset", "analytics", answer), True
                return
        datasets = [answer.dataset for answer in answers]
        try:
            series, units = assign_axes(datasets)
        except ValueError as too_many:
            async with self:
                self.error, self.loaded = str(too_many), True
            return
        async with self:
            self.series, self.units = series, units
            self._datasets = [d.SerializeToString() for d in datasets]
            self.loaded = True
        await self._show_preset("day")

    @rx.event(background=True)
    @redirect_when_signed_out
    async def choose_preset(self, preset: str) -> None:
        """Show the range of a preset (last hour, day, week, or all), back from the latest point."""
        if preset in PRESETS:
            await self._show_preset(preset)

    async def _show_preset(self, preset: str) -> None:
        async with self:
            bounds = bounds_of(self._current())
            self.preset = self._home_preset = preset
            self.zoomed_in = False
        if bounds is None:
            async with self:
                self.rows, self.caption = [], "None of these datasets has points yet."
            return
        await self._query(*preset_range(preset, *bounds))

    @rx.event(background=True)
    @redirect_when_signed_out
    async def zoom_to(self, start_ms: float, end_ms: float, width_px: float) -> None:
        """Show the range dragged across on the chart, cut for the chart's width."""
        async with self:
            bounds = bounds_of(self._current())
            step = self._step_us
            if width_px:
                self._buckets = buckets_for_width(float(width_px))
        try:
            picked = None if bounds is None else dragged(float(start_ms), float(end_ms), step, *bounds)
        except (TypeError, ValueError):
            picked = None
        if picked is not None:
            await self._query(picked[0], picked[1], zoom=True)

    @rx.event(background=True)
    @redirect_when_signed_out
    async def reset_zoom(self) -> None:
        """Back to the range of the last preset chosen."""
        async with self:
            preset = self._home_preset
        await self._show_preset(preset)

    @rx.event(background=True)
    @redirect_when_signed_out
    async def zoom(self, factor: float) -> None:
        """Zoom in (factor under 1) or out around the middle of the range."""
        async with self:
            bounds, start, end = bounds_of(self._current()), self._start_us, self._end_us
        if bounds is not None and end > start:
            shown = zoomed(start, end, float(factor), *bounds)
            await self._query(shown[0], shown[1], zoom=True)

    @rx.event(background=True)
    @redirect_when_signed_out
    async def pan(self, fraction: float) -> None:
        """Move the range back (negative) or forward in time by a fraction of its width."""
        async with self:
            bounds, start, end = bounds_of(self._current()), self._start_us, self._end_us
        if bounds is not None and end > start:
            shown = panned(start, end, float(fraction), *bounds)
            await self._query(shown[0], shown[1], zoom=True)

    async def _query(self, start_us: int, end_us: int, zoom: bool = False) -> None:
        async with self:
            self.loading = True
            series, buckets = list(self.series), self._buckets
        step = chart_step_us(start_us, end_us, buckets)
        request = pb.BatchQueryPointsRequest(
            dataset_ids=[s.id for s in series],
            start_time=us_to_timestamp(start_us),
            end_time=us_to_timestamp(end_us),
            step=us_to_duration(step),
            origin=us_to_timestamp(start_us),
            aggregations=[points_pb2.AGGREGATION_MEAN],
        )
        try:
            answer = await self._call_signed_in(rpc("analytics", "BatchQueryPoints", request))
        except MeshError as error:
            async with self:
                self.loading, self.error = False, service_error_text("analytics", error)
            return
        async with self:
            if [s.id for s in self.series] != [s.id for s in series]:
                return  # Another comparison was opened meanwhile.
            self.rows = compare_rows(series, answer)
            self._start_us, self._end_us, self._step_us = start_us, end_us, step
            self.range_start, self.range_end = _time_text(start_us), _time_text(end_us)
            self.bucket_count = len(self.rows)
            if zoom:
                self.preset, self.zoomed_in = "", True
            self.caption = (
                f"means of {duration_text(step)} buckets · {self.range_start} – {self.range_end} UTC"
                " · drag across the chart to zoom, double-click to go back"
            )
            self.loading, self.error = False, ""


# --- the page ---------------------------------------------------------------------------


def _preset_button(preset: str) -> rx.Component:
    return rx.button(
        PRESET_LABELS[preset],
        size="1",
        variant=rx.cond(CompareState.preset == preset, "solid", "soft"),
        on_click=CompareState.choose_preset(preset),  # type: ignore[misc]
        data_testid=f"compare-preset-{preset}",
    )


def _line(i: int) -> rx.Component:
    return rx.recharts.line(
        data_key=CompareState.line_keys[i],
        name=CompareState.line_names[i],
        y_axis_id=CompareState.line_axes[i],
        stroke=CompareState.line_colors[i],
        hide=CompareState.line_count <= i,
        legend_type=rx.cond(CompareState.line_count <= i, "none", "line"),
        dot=False,
        type_="linear",
        connect_nulls=False,
        is_animation_active=False,
        stroke_width=1.5,
        class_name=f"compare-line compare-line-{i}",
    )


def _chart() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                *(_preset_button(preset) for preset in PRESETS),
                rx.separator(orientation="vertical", size="1"),
                *zoom_pan_buttons(CompareState.zoom, CompareState.pan, "compare"),
                rx.button(
                    rx.icon("rotate-ccw", size=14),
                    "Reset",
                    size="1",
                    variant="soft",
                    disabled=~CompareState.zoomed_in,
                    on_click=CompareState.reset_zoom,
                    data_testid="compare-reset",
                ),
                rx.spacer(),
                rx.link("Link to this comparison", href=CompareState.share_link, size="2", data_testid="compare-link"),
                spacing="2",
                align="center",
                width="100%",
            ),
            rx.text(CompareState.caption, size="2", color_scheme="gray", data_testid="compare-caption"),
            rx.box(
                zoom_chart(
                    rx.recharts.cartesian_grid(stroke_dasharray="3 3", stroke="var(--gray-a5)"),
                    time_axis(),
                    rx.recharts.y_axis(
                        y_axis_id="left",
                        width=80,
                        domain=["auto", "auto"],
                        label={"value": CompareState.left_unit, "angle": -90, "position": "insideLeft"},
                        class_name="compare-axis-left",
                    ),
                    rx.recharts.y_axis(
                        y_axis_id="right",
                        orientation="right",
                        width=80,
                        domain=["auto", "auto"],
                        hide=~CompareState.two_axes,
                        label={"value": CompareState.right_unit, "angle": 90, "position": "insideRight"},
                        class_name="compare-axis-right",
                    ),
                    *(_line(i) for i in range(MAX_DATASETS)),
                    rx.recharts.legend(),
                    time_tooltip(),
                    name="compare",
                    on_zoom=CompareState.zoom_to,
                    axis_id="left",
                    data=CompareState.rows,
                    height=380,
                ),
                on_double_click=CompareState.reset_zoom,
                width="100%",
                title="Drag across the chart to zoom into a range; double-click to go back",
                data_testid="compare-plot",
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
        data_testid="compare-chart",
        data_buckets=CompareState.bucket_count,
        data_range_start=CompareState.range_start,
        data_range_end=CompareState.range_end,
        data_loading=CompareState.loading,
        data_zoomed=CompareState.zoomed_in,
        data_units=CompareState.units.join(","),  # type: ignore[attr-defined]
    )


def compare_page() -> rx.Component:
    """The Compare page."""
    return page_layout(
        rx.hstack(
            rx.link("← Datasets", href="/datasets", size="2"),
            rx.heading("Compare", size="7"),
            rx.foreach(
                CompareState.series,
                lambda s: rx.link(
                    rx.badge(
                        rx.box(width="0.6em", height="0.6em", border_radius="50%", background=s.color),
                        s.name,
                        variant="soft",
                        color_scheme="gray",
                    ),
                    href="/datasets/" + s.id,
                    data_testid="compare-dataset",
                ),
            ),
            align="center",
            spacing="3",
            flex_wrap="wrap",
        ),
        service_banner(CompareState.error),
        rx.cond(
            CompareState.line_count > 0,
            _chart(),
            rx.cond(~CompareState.loaded, loading_line("Loading the datasets…", "compare-loading")),
        ),
    )
