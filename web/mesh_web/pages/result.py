"""One result's page: the series with its trend line and anomalies marked,
the histogram, the numbers, the LLM's insight, and a box to ask about the
result whose answer streams in as it is written. A result still pending or
running (or whose insight is being written) updates itself."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import reflex as rx

from mesh.analytics.v1 import analysis_pb2, analytics_service_pb2
from mesh_runtime.errors import MeshError
from mesh_web import service_clients
from mesh_web.auth_state import AuthState, SignedOut, last_path_segment, redirect_when_signed_out
from mesh_web.components.computation_line import computation_line, computation_text
from mesh_web.components.expected_band import expected_band_layer, trend_in_words, with_expected_band
from mesh_web.components.forecast_chart import forecast_chart
from mesh_web.components.layout import page_layout
from mesh_web.components.result_events import result_events
from mesh_web.components.service_banner import service_banner
from mesh_web.components.states import loading_line
from mesh_web.components.trace_link import trace_link, trace_url
from mesh_web.display import MISSING, format_timestamp, missing_item_text, service_error_text
from mesh_web.result_display import (
    INSIGHT_LABELS,
    KIND_LABELS,
    STATUS_LABELS,
    Figure,
    histogram_chart,
    result_figures,
    series_caption,
    series_chart,
    window_text,
)
from mesh_web.service_clients import rpc

ROUTE = "/results/[result_id]"
SERIES_POINTS = 600
"""Points of the series chart (the service keeps each bucket's min and max)."""
FOLLOW_WINDOW_SECONDS = 10.0
"""Deadline of one WatchResults stream while following an unfinished result; the
result is fetched again after each, so an update the stream missed still shows."""
FOLLOW_LIFETIME_SECONDS = 10 * 60.0
"""How long the page follows an unfinished result."""


def _finished(result: analysis_pb2.Result) -> bool:
    done = result.status in (analysis_pb2.RESULT_STATUS_SUCCEEDED, analysis_pb2.RESULT_STATUS_FAILED)
    insight_waiting = result.insight.status == analysis_pb2.INSIGHT_STATUS_PENDING
    return done and not insight_waiting


class ResultState(AuthState):
    """The result shown, its charts, and the question being asked about it."""

    shown_id: str = ""
    dataset_name: str = ""
    dataset_link: str = ""
    kind: str = ""
    status: str = ""
    failure: str = ""
    created: str = MISSING
    window: str = ""
    origin: str = ""
    requested_by: str = ""
    trace_href: str = ""
    computation: str = ""
    figures: list[Figure] = []
    series: list[dict[str, Any]] = []
    trend_words: str = ""
    histogram: list[dict[str, Any]] = []
    anomaly_total: int = 0
    anomalies_marked: int = 0
    source_points: int = 0
    insight_status: str = ""
    insight_text: str = ""
    insight_model: str = ""
    insight_error: str = ""
    loaded: bool = False
    error: str = ""

    question: str = ""
    answer: str = ""
    answer_model: str = ""
    asking: bool = False
    ask_error: str = ""

    _follow_generation: int = 0
    _unit: str = ""

    @rx.var
    def series_caption(self) -> str:
        """How many points were analysed and how many are anomalies."""
        return series_caption(self.source_points, self.anomaly_total, self.anomalies_marked)

    @rx.var
    def has_series(self) -> bool:
        """Whether there is a series to chart."""
        return bool(self.series)

    @rx.var
    def has_moving_average(self) -> bool:
        """Whether the series has a moving average to draw."""
        return any(row.get("moving_average") is not None for row in self.series)

    @rx.var
    def has_histogram(self) -> bool:
        """Whether there is a histogram to chart."""
        return bool(self.histogram)

    def _show(self, response: analytics_service_pb2.GetResultResponse) -> None:
        result = response.result
        self.shown_id = result.id
        self.dataset_name = result.dataset_name or result.dataset_id
        self.dataset_link = "/datasets/" + result.dataset_id
        self.kind = KIND_LABELS.get(result.kind, "unknown")
        self.status = STATUS_LABELS.get(result.status, "unknown")
        self.failure = result.error
        self.created = format_timestamp(result.create_time if result.HasField("create_time") else None)
        self.window = window_text(result)
        self.origin = "scheduled" if result.schedule_id else "on demand"
        self.requested_by = result.requested_by
        self.trace_href = trace_url(result.trace_id, service_clients.service_clients().settings.trace_url_template)
        self.figures = result_figures(result, self._unit)
        self.computation = computation_text(result.output.computation)
        anomaly_list = list(result.output.anomalies.anomalies) if result.output.HasField("anomalies") else []
        self.anomaly_total = result.anomaly_count
        self.anomalies_marked = len(anomaly_list)
        self.series = series_chart(response.series, anomaly_list) if response.HasField("series") else []
        self.series = with_expected_band(self.series, response.series.timestamps_us, result.output.anomalies.events)
        self.trend_words = trend_in_words(result.output.trend, self._unit) if result.output.HasField("trend") else ""
        self.source_points = response.series.source_point_count
        self.histogram = histogram_chart(result.output.histogram) if result.output.HasField("histogram") else []
        self.insight_status = INSIGHT_LABELS.get(result.insight.status, "none")
        self.insight_text = result.insight.text
        self.insight_model = " · ".join(p for p in (result.insight.provider, result.insight.model) if p)
        self.insight_error = result.insight.error

    async def _get(self, result_id: str) -> analytics_service_pb2.GetResultResponse:
        response: analytics_service_pb2.GetResultResponse = await self._call_signed_in(
            rpc(
                "analytics",
                "GetResult",
                analytics_service_pb2.GetResultRequest(id=result_id, series_points=SERIES_POINTS),
            )
        )
        return response

    @rx.event(background=True)
    @redirect_when_signed_out
    async def load(self) -> None:
        """Fetch the result of the URL; follow it while it is not finished."""
        async with self:
            result_id = last_path_segment(self.router.url.path)
            if result_id != self.shown_id:
                self._forget()
            self._follow_generation += 1
            generation = self._follow_generation
        try:
            response = await self._get(result_id)
        except MeshError as error:
            async with self:
                self.error, self.loaded = missing_item_text("result", "analytics", error), True
            return
        unit = await self._dataset_unit(response.result.dataset_id)
        async with self:
            self._unit = unit
            self._show(response)
            self.error, self.loaded = "", True
        if not _finished(response.result):
            await self._follow(response.result, generation)

    async def _dataset_unit(self, dataset_id: str) -> str:
        """The unit of the result's dataset, for its numbers; '' when it cannot be had
        (a deleted dataset): the numbers are shown without it."""
        try:
            response = await self._call_signed_in(
                rpc("analytics", "GetDataset", analytics_service_pb2.GetDatasetRequest(id=dataset_id))
            )
        except (MeshError, SignedOut):
            return ""  # Signed out: the result's own call just now will say so next time.
        return str(response.dataset.unit)

    def _forget(self) -> None:
        for name in (
            "shown_id dataset_name dataset_link kind status failure window origin requested_by insight_status "
            "insight_text insight_model insight_error answer answer_model ask_error question trend_words computation"
        ).split():
            setattr(self, name, "")
        self.created = MISSING
        self.figures, self.series, self.histogram = [], [], []
        self.loaded, self.asking = False, False

    async def _follow(self, result: analysis_pb2.Result, generation: int) -> None:
        """Watch the result's dataset and fetch the result again as it changes,
        until it is finished or the user has left the page."""
        stop_at = time.monotonic() + FOLLOW_LIFETIME_SECONDS
        while time.monotonic() < stop_at:
            stream = self._stream_signed_in(
                lambda md: service_clients.watch_results(result.dataset_id, FOLLOW_WINDOW_SECONDS, metadata=md)
            )
            try:
                async with contextlib.aclosing(stream):
                    async for changed in stream:
                        if changed is not None and changed.id == result.id:
                            break
            except MeshError:
                # WatchResults unavailable: fetching again after the window still updates the page.
                pass
            async with self:
                if generation != self._follow_generation or not str(self.router.url.path).startswith("/results/"):
                    return
            try:
                response = await self._get(result.id)
            except MeshError as error:
                async with self:
                    self.error = service_error_text("analytics", error)
                continue
            async with self:
                if generation != self._follow_generation:
                    return
                self._show(response)
                self.error = ""
            if _finished(response.result):
                return

    @rx.event(background=True)
    @redirect_when_signed_out
    async def ask(self, form_data: dict[str, Any]) -> None:
        """Ask the LLM about this result; the answer streams into the page."""
        question = str(form_data.get("question", "")).strip()
        async with self:
            if self.asking:
                return
            if not question:
                self.ask_error = "Type a question first"
                return
            self.question, self.answer, self.answer_model, self.ask_error = question, "", "", ""
            self.asking = True
            result_id = self.shown_id
        try:
            async for piece in self._stream_signed_in(
                lambda md: service_clients.ask_about_result(result_id, question, metadata=md)
            ):
                async with self:
                    self.answer += piece.text
                    if piece.model or piece.provider:
                        self.answer_model = " · ".join(p for p in (piece.provider, piece.model) if p)
        except MeshError as error:
            async with self:
                self.ask_error = service_error_text("analytics", error)
        async with self:
            self.asking = False


# --- the page ---------------------------------------------------------------------------


def _header() -> rx.Component:
    return rx.vstack(
        rx.link("← Results", href="/results", size="2"),
        rx.hstack(
            rx.heading(ResultState.dataset_name, " · ", ResultState.kind, size="7", data_testid="result-title"),
            rx.badge(
                ResultState.status,
                color_scheme=rx.match(
                    ResultState.status, ("succeeded", "green"), ("failed", "red"), ("running", "blue"), "gray"
                ),
                size="2",
                data_testid="result-status",
            ),
            align="center",
            spacing="3",
        ),
        rx.text(
            "Created ",
            ResultState.created,
            " · ",
            ResultState.origin,
            " by ",
            ResultState.requested_by,
            " · window ",
            ResultState.window,
            size="2",
            color_scheme="gray",
        ),
        rx.hstack(
            rx.link("Dataset page →", href=ResultState.dataset_link, size="2"),
            trace_link(ResultState.trace_href),
            spacing="4",
        ),
        computation_line(ResultState.computation),
        rx.cond(
            ResultState.failure != "",
            rx.callout(
                ResultState.failure, icon="circle_x", color_scheme="red", width="100%", data_testid="result-failure"
            ),
        ),
        spacing="2",
        width="100%",
    )


def _series_chart() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Series", size="4"),
                rx.text(ResultState.series_caption, size="2", color_scheme="gray"),
                align="baseline",
                spacing="3",
            ),
            rx.cond(
                ResultState.trend_words != "",
                rx.text("Trend: ", ResultState.trend_words, size="2", data_testid="trend-words"),
            ),
            rx.recharts.composed_chart(
                rx.recharts.cartesian_grid(stroke_dasharray="3 3", stroke="var(--gray-a5)"),
                rx.recharts.x_axis(data_key="time", min_tick_gap=40),
                rx.recharts.y_axis(width=70),
                rx.recharts.line(
                    data_key="value",
                    name="value",
                    stroke="var(--accent-9)",
                    dot=False,
                    is_animation_active=False,
                    stroke_width=1,
                    class_name="series-line",
                ),
                rx.recharts.line(
                    data_key="moving_average",
                    name="moving average",
                    # Only trend results have one.
                    hide=~ResultState.has_moving_average,
                    stroke="var(--amber-9)",
                    dot=False,
                    is_animation_active=False,
                ),
                rx.recharts.line(
                    data_key="trend",
                    name="trend",
                    stroke="var(--grass-10)",
                    stroke_width=2,
                    stroke_dasharray="6 3",
                    dot=False,
                    is_animation_active=False,
                    class_name="trend-line",
                ),
                expected_band_layer(),
                # The anomalies: dots only (no line), on the points where 'anomaly' is set.
                rx.recharts.line(
                    data_key="anomaly",
                    name="anomaly",
                    stroke="none",
                    legend_type="circle",
                    dot={"r": 4, "fill": "var(--red-9)", "stroke": "var(--red-11)", "className": "anomaly-dot"},
                    is_animation_active=False,
                ),
                rx.recharts.legend(),
                rx.recharts.graphing_tooltip(),
                data=ResultState.series,
                height=340,
                width="100%",
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
        data_testid="series-chart",
    )


def _histogram_chart() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Histogram", size="4"),
            rx.recharts.bar_chart(
                rx.recharts.cartesian_grid(stroke_dasharray="3 3", stroke="var(--gray-a5)"),
                rx.recharts.x_axis(data_key="bin", min_tick_gap=20),
                rx.recharts.y_axis(width=60),
                rx.recharts.bar(data_key="count", name="points", fill="var(--accent-9)", is_animation_active=False),
                rx.recharts.graphing_tooltip(),
                data=ResultState.histogram,
                height=260,
                width="100%",
            ),
            spacing="2",
            width="100%",
        ),
        flex="2",
        min_width="24rem",
        data_testid="histogram-chart",
    )


def _figures() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("The numbers", size="4"),
            rx.data_list.root(
                rx.foreach(
                    ResultState.figures,
                    lambda f: rx.data_list.item(
                        rx.data_list.label(f.label),
                        rx.data_list.value(f.value),
                        data_testid="figure",
                    ),
                ),
                size="2",
            ),
            spacing="3",
        ),
        flex="1",
        min_width="16rem",
        data_testid="result-figures",
    )


def _insight() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.icon("sparkles", size=18),
                rx.heading("Insight", size="4"),
                rx.badge(ResultState.insight_status, variant="soft", data_testid="insight-status"),
                rx.text(ResultState.insight_model, size="1", color_scheme="gray"),
                align="center",
                spacing="2",
            ),
            rx.match(
                ResultState.insight_status,
                ("ready", rx.text(ResultState.insight_text, white_space="pre-wrap", data_testid="insight-text")),
                ("being written", loading_line("The insight is being written…", "insight-pending")),
                (
                    "unavailable",
                    rx.callout(
                        "No insight: the language model failed (" + ResultState.insight_error + ")",
                        icon="triangle_alert",
                        color_scheme="orange",
                    ),
                ),
                rx.text("No insight for this result.", color_scheme="gray", size="2"),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
        data_testid="insight",
    )


def _ask() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Ask about this result", size="4"),
            rx.form(
                rx.hstack(
                    rx.input(
                        name="question",
                        placeholder="e.g. Is the trend worrying?",
                        flex="1",
                        aria_label="Question",
                        max_length=2000,
                        data_testid="ask-question",
                    ),
                    rx.button(
                        rx.icon("send", size=16),
                        "Ask",
                        type="submit",
                        loading=ResultState.asking,
                        data_testid="ask-submit",
                    ),
                    width="100%",
                    spacing="2",
                ),
                on_submit=ResultState.ask,
                reset_on_submit=False,
                width="100%",
            ),
            rx.cond(
                (ResultState.answer != "") | ResultState.asking,
                rx.vstack(
                    rx.text(ResultState.question, weight="medium", size="2"),
                    rx.text(ResultState.answer, white_space="pre-wrap", data_testid="ask-answer"),
                    rx.cond(
                        ResultState.asking,
                        rx.spinner(size="1"),
                        rx.text(ResultState.answer_model, size="1", color_scheme="gray"),
                    ),
                    spacing="1",
                    width="100%",
                ),
            ),
            rx.cond(
                ResultState.ask_error != "",
                rx.text(ResultState.ask_error, color_scheme="red", size="2", data_testid="ask-error"),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def result_page() -> rx.Component:
    """A result's page."""
    return page_layout(
        service_banner(ResultState.error),
        rx.cond(
            ResultState.shown_id != "",
            rx.vstack(
                _header(),
                rx.cond(ResultState.has_series, _series_chart()),
                forecast_chart(ResultState.kind, ResultState.status),
                rx.hstack(
                    rx.cond(ResultState.has_histogram, _histogram_chart()),
                    _figures(),
                    spacing="4",
                    width="100%",
                    flex_wrap="wrap",
                    align="start",
                ),
                _insight(),
                _ask(),
                result_events(ResultState.anomaly_total, ResultState.status),
                spacing="4",
                width="100%",
            ),
            rx.cond(~ResultState.loaded, loading_line("Loading the result…", "result-loading")),
        ),
    )
