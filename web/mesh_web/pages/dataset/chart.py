"""The chart of a dataset's raw series: buckets of min, max and mean from
QueryPoints (the service reduces; the web process never holds raw points),
range presets relative to the dataset's last point, drag-to-zoom (a range
selected with the mouse, at a step from the chart's width; double-click or
Reset goes back), zoom and pan buttons for the keyboard, each asking
QueryPoints again, and a CSV download of the range shown (ExportPoints,
made with the user's session, handed to the browser as a file)."""

from __future__ import annotations

import asyncio
import bisect
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import reflex as rx

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import points_pb2
from mesh_runtime.errors import MeshError
from mesh_runtime.wire import timestamp_to_us, us_to_duration, us_to_timestamp
from mesh_web.auth_state import redirect_when_signed_out
from mesh_web.components.zoom_chart import time_axis, time_tooltip, zoom_chart, zoom_pan_buttons
from mesh_web.display import service_error_text
from mesh_web.pages.dataset.state import DatasetState
from mesh_web.service_clients import export_points, rpc

CHART_BUCKETS = 500
"""Buckets across the chart until its width is known: one per 2 px of a 1,000 px wide chart."""
PIXELS_PER_BUCKET = 2
"""A bucket per 2 px of the chart's width, once a drag has told the width."""
MIN_BUCKETS, MAX_BUCKETS = 50, 2000
MIN_SPAN_US = 1_000_000
"""The narrowest range zoom goes to: one second."""
EXPORT_LIMIT_BYTES = 20 * 1024 * 1024
"""The largest CSV the page hands to the browser; a longer range is for the REST export."""

HOUR_US = 3_600_000_000
PRESETS: dict[str, int | None] = {"hour": HOUR_US, "day": 24 * HOUR_US, "week": 7 * 24 * HOUR_US, "all": None}
"""Range presets: their span back from the last point (None: the whole series)."""
PRESET_LABELS = {"hour": "Last hour", "day": "Last day", "week": "Last week", "all": "All"}


def chart_step_us(start_us: int, end_us: int, buckets: int = CHART_BUCKETS) -> int:
    """The step (whole microseconds) that cuts [start, end) into at most ``buckets`` buckets."""
    return max(1, math.ceil((end_us - start_us) / buckets))


def buckets_for_width(width_px: float) -> int:
    """Buckets for a chart ``width_px`` wide: one per PIXELS_PER_BUCKET, within
    [MIN_BUCKETS, MAX_BUCKETS]; CHART_BUCKETS when the width is unknown (0)."""
    if not math.isfinite(width_px) or width_px <= 0:
        return CHART_BUCKETS
    return max(MIN_BUCKETS, min(MAX_BUCKETS, int(width_px) // PIXELS_PER_BUCKET))


def dragged(start_ms: float, end_ms: float, step_us: int, first_us: int, last_us: int) -> tuple[int, int] | None:
    """The range of a drag across bucket starts ``start_ms`` to ``end_ms`` (epoch
    ms, as the chart's axis has them): from the first bucket's start to the
    last one's end, at least MIN_SPAN_US wide and within the data; None for
    what is no range (not numbers, or reversed)."""
    if not (math.isfinite(start_ms) and math.isfinite(end_ms)) or end_ms < start_ms:
        return None
    start_us, end_us = int(start_ms * 1000), int(end_ms * 1000) + max(1, step_us)
    if end_us - start_us < MIN_SPAN_US:
        middle = (start_us + end_us) // 2
        start_us, end_us = middle - MIN_SPAN_US // 2, middle - MIN_SPAN_US // 2 + MIN_SPAN_US
    return _within(start_us, end_us, first_us, last_us)


def preset_range(preset: str, first_us: int, last_us: int) -> tuple[int, int]:
    """The half-open range of a preset: back from just after the last point,
    never before the first (the whole series for "all")."""
    end = last_us + 1
    span = PRESETS.get(preset)
    start = first_us if span is None else max(first_us, end - span)
    return start, end


def zoomed(start_us: int, end_us: int, factor: float, first_us: int, last_us: int) -> tuple[int, int]:
    """The range ``factor`` times as wide around the same middle, kept within
    the data and at least MIN_SPAN_US wide."""
    middle = (start_us + end_us) // 2
    span = max(MIN_SPAN_US, int((end_us - start_us) * factor))
    return _within(middle - span // 2, middle - span // 2 + span, first_us, last_us)


def panned(start_us: int, end_us: int, fraction: float, first_us: int, last_us: int) -> tuple[int, int]:
    """The range moved by ``fraction`` of its width (negative: back in time), kept within the data."""
    shift = int((end_us - start_us) * fraction)
    return _within(start_us + shift, end_us + shift, first_us, last_us)


def _within(start_us: int, end_us: int, first_us: int, last_us: int) -> tuple[int, int]:
    span = end_us - start_us
    lowest, highest = first_us, last_us + 1
    if span >= highest - lowest:
        return lowest, highest
    if start_us < lowest:
        return lowest, lowest + span
    if end_us > highest:
        return highest - span, highest
    return start_us, end_us


def _time_text(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _label(micros: int, span_us: int) -> str:
    moment = datetime.fromtimestamp(micros / 1_000_000, tz=UTC)
    if span_us <= 2 * HOUR_US:
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%m-%d %H:%M" if span_us <= 60 * 24 * HOUR_US else "%Y-%m-%d")


def duration_text(micros: int) -> str:
    """'3 min', '1.5 s', '2 h', '250 µs': a step as people read it."""
    for unit, size in (("d", 86_400_000_000), ("h", HOUR_US), ("min", 60_000_000), ("s", 1_000_000), ("ms", 1_000)):
        if micros >= size:
            return f"{micros / size:.3g} {unit}"
    return f"{micros} µs"


def bucket_rows(
    buckets: points_pb2.PointBuckets,
    start_us: int,
    end_us: int,
    step_us: int,
    anomalies: Sequence[tuple[int, float]] = (),
) -> list[dict[str, Any]]:
    """The chart's rows: each bucket's start as its label and under 't' in
    epoch milliseconds (the time axis), its min, max and mean, and under
    'anomaly' the value of an anomaly in it (the farthest from the mean when
    it holds several), else None."""
    marks: dict[int, float] = {}
    for stamp, value in anomalies:
        if start_us <= stamp < end_us:
            bucket = start_us + (stamp - start_us) // step_us * step_us
            marks.setdefault(bucket, value)
            marks[bucket] = max(marks[bucket], value, key=lambda v: abs(v - _mean_at(buckets, bucket)))
    return [
        {
            "time": _label(start, end_us - start_us),
            "t": start // 1000,
            "min": low,
            "max": high,
            "mean": mean,
            "anomaly": marks.get(start),
        }
        for start, low, high, mean in zip(buckets.start_times_us, buckets.min, buckets.max, buckets.mean, strict=False)
    ]


def _mean_at(buckets: points_pb2.PointBuckets, start_us: int) -> float:
    at = bisect.bisect_left(buckets.start_times_us, start_us)
    found = at < len(buckets.start_times_us) and buckets.start_times_us[at] == start_us
    return buckets.mean[at] if found and at < len(buckets.mean) else 0.0


def csv_file_name(dataset_name: str, start_us: int, end_us: int) -> str:
    """'room-temperature_20261101T0000-20261102T0000.csv': the dataset and the range."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", dataset_name).strip("-.") or "points"

    def stamp(micros: int) -> str:
        return datetime.fromtimestamp(micros / 1_000_000, tz=UTC).strftime("%Y%m%dT%H%M%S")

    return f"{stem}_{stamp(start_us)}-{stamp(end_us)}.csv"


class ChartState(DatasetState):
    """The range shown, its buckets, and the CSV download."""

    chart_rows: list[dict[str, Any]] = []
    chart_preset: str = "day"
    chart_bucket_count: int = 0
    chart_step: str = ""
    chart_start: str = ""
    chart_end: str = ""
    chart_loading: bool = False
    chart_error: str = ""
    exporting: bool = False
    export_error: str = ""

    chart_anomalies: int = 0
    chart_zoomed: bool = False
    _anomalies: list[tuple[int, float]] = []
    _start_us: int = 0
    _end_us: int = 0
    _step_us: int = 0
    _shown_buckets: bytes = b""
    _buckets: int = CHART_BUCKETS
    _home_preset: str = "day"

    def _forget_shown(self) -> None:
        self.chart_rows, self.chart_bucket_count = [], 0
        self.chart_step = self.chart_start = self.chart_end = self.chart_error = self.export_error = ""
        self.chart_preset = self._home_preset = "day"
        self._start_us = self._end_us = self._step_us = self.chart_anomalies = 0
        self._shown_buckets = b""
        self.chart_zoomed = False
        self._anomalies = []

    @rx.var
    def chart_caption(self) -> str:
        """'480 buckets of 3 min · 2026-11-01 00:00:00 – 2026-11-02 00:00:00 UTC'."""
        if not self.chart_start:
            return ""
        noun = "bucket" if self.chart_bucket_count == 1 else "buckets"
        text = (
            f"{self.chart_bucket_count} {noun} of {self.chart_step} (min, max, mean)"
            f" · {self.chart_start} – {self.chart_end} UTC"
        )
        if self.chart_anomalies:
            noun = "anomaly" if self.chart_anomalies == 1 else "anomalies"
            text += f" · {self.chart_anomalies} {noun} of the latest result (red dots)"
        return text

    def _bounds(self) -> tuple[int, int] | None:
        """The dataset's first and last point, None when it has none."""
        dataset = self._current()
        if not dataset.HasField("first_point_time") or not dataset.HasField("last_point_time"):
            return None
        return timestamp_to_us(dataset.first_point_time), timestamp_to_us(dataset.last_point_time)

    @rx.event(background=True)
    @redirect_when_signed_out
    async def open_chart(self) -> None:
        """Show the chart with the current preset when the card appears, and
        mark the anomalies of the dataset's latest result that found any. The
        two are asked at once: the chart does not wait for the marks (two
        calls) before its own call, and the marks join it when they come."""
        async with self:
            preset, dataset_id = self.chart_preset, self.ds_id
        await asyncio.gather(self._show_preset(preset), self._mark_anomalies(dataset_id))

    async def _mark_anomalies(self, dataset_id: str) -> None:
        try:
            found = await self._latest_anomalies(dataset_id)
        except MeshError as error:
            async with self:
                self.chart_error = "No anomaly marks: " + service_error_text("analytics", error)
            return
        async with self:
            if dataset_id != self.ds_id:
                return
            self._anomalies, self.chart_anomalies = found, len(found)
            if self._shown_buckets and found:
                buckets = points_pb2.PointBuckets.FromString(self._shown_buckets)
                self.chart_rows = bucket_rows(buckets, self._start_us, self._end_us, self._step_us, found)

    async def _latest_anomalies(self, dataset_id: str) -> list[tuple[int, float]]:
        """The anomalies of the dataset's latest result that found any: ListResults
        names it (lists carry no anomaly list), GetResult has them."""
        request = pb.ListResultsRequest(
            dataset_id=dataset_id, has_anomalies=True, order_by="create_time desc", page_size=1
        )
        listed = await self._call_signed_in(rpc("analytics", "ListResults", request))
        if not listed.results:
            return []
        got = await self._call_signed_in(rpc("analytics", "GetResult", pb.GetResultRequest(id=listed.results[0].id)))
        return [(anomaly.timestamp_us, anomaly.value) for anomaly in got.result.output.anomalies.anomalies]

    @rx.event(background=True)
    @redirect_when_signed_out
    async def choose_preset(self, preset: str) -> None:
        """Show the range of a preset (last hour, day, week, or all)."""
        if preset in PRESETS:
            await self._show_preset(preset)

    async def _show_preset(self, preset: str) -> None:
        async with self:
            bounds = self._bounds()
            self.chart_preset = self._home_preset = preset
            self.chart_zoomed = False
            if bounds is None:
                self.chart_rows, self.chart_bucket_count, self.chart_start = [], 0, ""
                return
        await self._query(*preset_range(preset, *bounds))

    @rx.event(background=True)
    @redirect_when_signed_out
    async def zoom_to(self, start_ms: float, end_ms: float, width_px: float) -> None:
        """Show the range dragged across on the chart (bucket starts in epoch
        ms), cut into buckets for the chart's width in pixels."""
        async with self:
            bounds = self._bounds()
            step = self._step_us
            if width_px:
                self._buckets = buckets_for_width(float(width_px))
        try:
            picked = None if bounds is None else dragged(float(start_ms), float(end_ms), step, *bounds)
        except (TypeError, ValueError):
            picked = None
        if picked is not None:
            await self._query(*picked, preset="")

    @rx.event(background=True)
    @redirect_when_signed_out
    async def reset_zoom(self) -> None:
        """Back to the range of the last preset chosen (double-click, or Reset)."""
        async with self:
            preset = self._home_preset or "day"
        await self._show_preset(preset)

    @rx.event(background=True)
    @redirect_when_signed_out
    async def zoom(self, factor: float) -> None:
        """Zoom in (factor under 1) or out around the middle of the range."""
        async with self:
            bounds = self._bounds()
            start, end = self._start_us, self._end_us
        if bounds is not None and end > start:
            await self._query(*zoomed(start, end, float(factor), *bounds), preset="")

    @rx.event(background=True)
    @redirect_when_signed_out
    async def pan(self, fraction: float) -> None:
        """Move the range back (negative) or forward in time by a fraction of its width."""
        async with self:
            bounds = self._bounds()
            start, end = self._start_us, self._end_us
        if bounds is not None and end > start:
            await self._query(*panned(start, end, float(fraction), *bounds), preset="")

    async def _query(self, start_us: int, end_us: int, preset: str | None = None) -> None:
        async with self:
            self.chart_loading, self.chart_error = True, ""
            if preset is not None:
                self.chart_preset = preset
            dataset_id, buckets = self.ds_id, self._buckets
        step = chart_step_us(start_us, end_us, buckets)
        request = pb.QueryPointsRequest(
            dataset_id=dataset_id,
            start_time=us_to_timestamp(start_us),
            end_time=us_to_timestamp(end_us),
            step=us_to_duration(step),
            origin=us_to_timestamp(start_us),
            aggregations=[points_pb2.AGGREGATION_MIN, points_pb2.AGGREGATION_MAX, points_pb2.AGGREGATION_MEAN],
        )
        try:
            response = await self._call_signed_in(rpc("analytics", "QueryPoints", request))
        except MeshError as error:
            async with self:
                self.chart_loading, self.chart_error = False, service_error_text("analytics", error)
            return
        async with self:
            if dataset_id != self.ds_id:
                return
            self._start_us, self._end_us, self._step_us = start_us, end_us, step
            self._shown_buckets = response.buckets.SerializeToString()
            self.chart_zoomed = self.chart_preset == ""
            self.chart_rows = bucket_rows(response.buckets, start_us, end_us, step, self._anomalies)
            self.chart_bucket_count = len(response.buckets.start_times_us)
            self.chart_step = duration_text(step)
            self.chart_start, self.chart_end = _time_text(start_us), _time_text(end_us)
            self.chart_loading = False

    @rx.event(background=True)
    @redirect_when_signed_out
    async def download_csv(self) -> Any:
        """The points of the range shown as a CSV file (ExportPoints), downloaded by the browser."""
        async with self:
            if self.exporting or self._end_us <= self._start_us:
                return None
            self.exporting, self.export_error = True, ""
            dataset_id, name, start, end = self.ds_id, self.ds_name, self._start_us, self._end_us
        request = pb.ExportPointsRequest(
            dataset_id=dataset_id, start_time=us_to_timestamp(start), end_time=us_to_timestamp(end)
        )
        pieces: list[bytes] = []
        size = 0
        try:
            async for piece in self._stream_signed_in(lambda metadata: export_points(request, metadata=metadata)):
                pieces.append(piece)
                size += len(piece)
                if size > EXPORT_LIMIT_BYTES:
                    async with self:
                        self.exporting = False
                        self.export_error = (
                            f"The range shown is over {EXPORT_LIMIT_BYTES // (1024 * 1024)} MiB of CSV: zoom in,"
                            " or download it from the REST API (GET /v1/datasets/ID/points:export)."
                        )
                    return None
        except MeshError as error:
            async with self:
                self.exporting, self.export_error = False, service_error_text("analytics", error)
            return None
        async with self:
            self.exporting = False
        return rx.download(data=b"".join(pieces), filename=csv_file_name(name, start, end))


def _preset_button(preset: str) -> rx.Component:
    return rx.button(
        PRESET_LABELS[preset],
        size="1",
        variant=rx.cond(ChartState.chart_preset == preset, "solid", "soft"),
        on_click=ChartState.choose_preset(preset),  # type: ignore[misc]
        data_testid=f"chart-preset-{preset}",
    )


def chart_card() -> rx.Component:
    """The Series card: presets, zoom and pan, the chart, and the CSV download."""
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Series", size="4"),
                rx.text(ChartState.chart_caption, size="2", color_scheme="gray", data_testid="chart-caption"),
                align="baseline",
                spacing="3",
                flex_wrap="wrap",
            ),
            rx.hstack(
                *(_preset_button(preset) for preset in PRESETS),
                rx.separator(orientation="vertical", size="1"),
                *zoom_pan_buttons(ChartState.zoom, ChartState.pan, "chart"),
                rx.button(
                    rx.icon("rotate-ccw", size=14),
                    "Reset",
                    size="1",
                    variant="soft",
                    disabled=~ChartState.chart_zoomed,
                    on_click=ChartState.reset_zoom,
                    title="Back to the range of the preset (also: double-click the chart)",
                    data_testid="chart-reset",
                ),
                rx.spacer(),
                rx.button(
                    rx.icon("download", size=14),
                    "CSV of this range",
                    size="1",
                    variant="outline",
                    loading=ChartState.exporting,
                    disabled=ChartState.chart_start == "",
                    on_click=ChartState.download_csv,
                    data_testid="chart-download",
                ),
                spacing="2",
                align="center",
                width="100%",
            ),
            rx.cond(
                ChartState.chart_error != "",
                rx.text(ChartState.chart_error, color_scheme="red", size="2", data_testid="chart-error"),
            ),
            rx.cond(
                ChartState.export_error != "",
                rx.text(ChartState.export_error, color_scheme="red", size="2", data_testid="chart-export-error"),
            ),
            rx.cond(
                ChartState.chart_start == "",
                rx.text("No points yet.", size="2", color_scheme="gray", data_testid="chart-empty"),
                rx.box(
                    zoom_chart(
                        rx.recharts.cartesian_grid(stroke_dasharray="3 3", stroke="var(--gray-a5)"),
                        time_axis(),
                        rx.recharts.y_axis(width=70, domain=["auto", "auto"]),
                        rx.recharts.line(
                            data_key="max",
                            name="max",
                            stroke="var(--accent-6)",
                            dot=False,
                            type_="linear",
                            is_animation_active=False,
                            stroke_width=1,
                        ),
                        rx.recharts.line(
                            data_key="mean",
                            name="mean",
                            stroke="var(--accent-9)",
                            dot=False,
                            type_="linear",
                            is_animation_active=False,
                            stroke_width=1.5,
                            class_name="chart-mean-line",
                        ),
                        rx.recharts.line(
                            data_key="min",
                            name="min",
                            stroke="var(--accent-6)",
                            dot=False,
                            type_="linear",
                            is_animation_active=False,
                            stroke_width=1,
                        ),
                        # The anomalies: dots only (no line), on the buckets that hold one.
                        rx.recharts.line(
                            data_key="anomaly",
                            name="anomaly",
                            stroke="none",
                            legend_type="circle",
                            type_="linear",
                            dot={
                                "r": 4,
                                "fill": "var(--red-9)",
                                "stroke": "var(--red-11)",
                                "className": "chart-anomaly",
                            },
                            is_animation_active=False,
                        ),
                        rx.recharts.legend(),
                        time_tooltip(),
                        name="series",
                        on_zoom=ChartState.zoom_to,
                        data=ChartState.chart_rows,
                        height=320,
                    ),
                    on_double_click=ChartState.reset_zoom,
                    width="100%",
                    title="Drag across the chart to zoom into a range; double-click to go back",
                    data_testid="chart-plot",
                ),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
        on_mount=ChartState.open_chart,
        data_testid="dataset-chart",
        data_buckets=ChartState.chart_bucket_count,
        data_range_start=ChartState.chart_start,
        data_range_end=ChartState.chart_end,
        data_loading=ChartState.chart_loading,
        data_zoomed=ChartState.chart_zoomed,
    )
