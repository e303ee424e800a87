"""The dashboard's view of recent results: counts by outcome that link to
the Results page filtered the same way ("3 failed" → /results?status=failed),
and an anomaly timeline across datasets: which dataset had anomalies when,
from the latest result with anomalies of each dataset among the recent ones
(one ListResults call, then one GetResult per dataset for its events)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import reflex as rx

from mesh.analytics.v1 import analysis_pb2
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh_runtime.errors import MeshError
from mesh_web.auth_state import AuthState, redirect_when_signed_out
from mesh_web.components.zoom_chart import TIME_LABEL, TIME_TICKS
from mesh_web.display import counted, service_error_text
from mesh_web.result_display import format_number
from mesh_web.service_clients import rpc

RECENT_RESULTS = 100
"""Results counted (the newest); their count is said beside the numbers."""
TIMELINE_DATASETS = 10
"""Datasets on the anomaly timeline: those whose latest anomalies are newest."""


@dataclasses.dataclass(frozen=True)
class OutcomeCount:
    """One linked count: its text and the Results page filtered to those results."""

    text: str
    href: str
    key: str
    count: int


def outcome_counts(results: Sequence[analysis_pb2.Result]) -> list[OutcomeCount]:
    """How many of ``results`` succeeded, failed, are still running or pending,
    and found anomalies, each linking to the Results page filtered that way."""

    def of_status(*statuses: int) -> int:
        return sum(1 for r in results if r.status in statuses)

    anomalous = sum(1 for r in results if r.anomaly_count > 0)
    return [
        OutcomeCount(
            counted(of_status(analysis_pb2.RESULT_STATUS_SUCCEEDED), "succeeded", "succeeded"),
            "/results?status=succeeded",
            "succeeded",
            of_status(analysis_pb2.RESULT_STATUS_SUCCEEDED),
        ),
        OutcomeCount(
            counted(of_status(analysis_pb2.RESULT_STATUS_FAILED), "failed", "failed"),
            "/results?status=failed",
            "failed",
            of_status(analysis_pb2.RESULT_STATUS_FAILED),
        ),
        OutcomeCount(
            counted(of_status(analysis_pb2.RESULT_STATUS_RUNNING), "running", "running"),
            "/results?status=running",
            "running",
            of_status(analysis_pb2.RESULT_STATUS_RUNNING),
        ),
        OutcomeCount(
            counted(of_status(analysis_pb2.RESULT_STATUS_PENDING), "pending", "pending"),
            "/results?status=pending",
            "pending",
            of_status(analysis_pb2.RESULT_STATUS_PENDING),
        ),
        OutcomeCount(
            counted(anomalous, "with anomalies", "with anomalies"), "/results?anomalies=with", "anomalies", anomalous
        ),
    ]


def latest_with_anomalies(results: Sequence[analysis_pb2.Result]) -> list[analysis_pb2.Result]:
    """The newest result with anomalies of each dataset (``results`` newest
    first), for at most TIMELINE_DATASETS datasets."""
    chosen: dict[str, analysis_pb2.Result] = {}
    for result in results:
        if result.anomaly_count > 0 and result.dataset_id not in chosen:
            chosen[result.dataset_id] = result
    return list(chosen.values())[:TIMELINE_DATASETS]


@dataclasses.dataclass(frozen=True)
class TimelineRow:
    """One dataset's line of the timeline: its anomalies as points (t in epoch
    ms, the lane's number, a size from the score) and its count, linked."""

    dataset: str
    lane: int
    points: list[dict[str, Any]]
    label: str
    href: str
    result_href: str


def timeline_rows(results: Sequence[analysis_pb2.Result]) -> list[TimelineRow]:
    """A lane per result (its dataset), top to bottom, with a point at each anomaly event's peak."""
    rows: list[TimelineRow] = []
    for lane, result in enumerate(results):
        events = list(result.output.anomalies.events)
        name = result.dataset_name or result.dataset_id
        points = [
            {
                "t": event.peak_us // 1000,
                "lane": lane,
                "dataset": name,
                "z": min(12.0, 4.0 + abs(event.score) / 2),
                "score": format_number(event.score),
            }
            for event in events
        ]
        rows.append(
            TimelineRow(
                dataset=name,
                lane=lane,
                points=points,
                label=counted(result.anomaly_count, "anomaly", "anomalies"),
                href=f"/results?dataset={result.dataset_id}&anomalies=with",
                result_href="/results/" + result.id,
            )
        )
    return rows


class TimelineState(AuthState):
    """The linked counts of recent results and the anomaly timeline."""

    outcomes: list[OutcomeCount] = []
    recent_label: str = ""
    timeline: list[TimelineRow] = []
    timeline_error: str = ""
    timeline_loaded: bool = False

    @rx.var
    def lane_count(self) -> int:
        """Lanes on the timeline (one per dataset)."""
        return len(self.timeline)

    @rx.var
    def timeline_height(self) -> int:
        """The chart's height in pixels: a lane of 36 px per dataset and the time axis."""
        return 60 + 36 * max(1, len(self.timeline))

    @rx.event(background=True)
    @redirect_when_signed_out
    async def load_timeline(self) -> None:
        """Count the recent results by outcome and fetch the anomalies of the
        newest result with anomalies of each dataset."""
        try:
            listed = await self._call_signed_in(
                rpc("analytics", "ListResults", pb.ListResultsRequest(page_size=RECENT_RESULTS))
            )
        except MeshError as error:
            async with self:
                self.timeline_error = service_error_text("analytics", error)
                self.timeline_loaded = True
            return
        results = list(listed.results)
        chosen = latest_with_anomalies(results)
        answers = await self._call_all_signed_in(
            *(rpc("analytics", "GetResult", pb.GetResultRequest(id=result.id)) for result in chosen)
        )
        full = [answer.result for answer in answers if not isinstance(answer, MeshError)]
        failed = [answer for answer in answers if isinstance(answer, MeshError)]
        async with self:
            self.outcomes = outcome_counts(results)
            self.recent_label = "Of the last " + counted(len(results), "result")
            self.timeline = timeline_rows(full)
            self.timeline_error = service_error_text("analytics", failed[0]) if failed else ""
            self.timeline_loaded = True


def _outcome(count: OutcomeCount) -> rx.Component:
    return rx.link(
        rx.badge(
            count.text,
            size="2",
            variant=rx.cond(count.count > 0, "soft", "outline"),
            color_scheme=rx.match(
                count.key, ("failed", "red"), ("anomalies", "orange"), ("succeeded", "green"), "gray"
            ),
        ),
        href=count.href,
        underline="none",
        data_testid="outcome-count",
        data_key=count.key,
    )


def outcomes_card() -> rx.Component:
    """The recent results counted by outcome, each count a link to those results."""
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Outcomes", size="4"),
                rx.text(TimelineState.recent_label, size="2", color_scheme="gray", data_testid="recent-label"),
                align="baseline",
                spacing="3",
            ),
            rx.hstack(rx.foreach(TimelineState.outcomes, _outcome), spacing="2", flex_wrap="wrap"),
            spacing="2",
            width="100%",
        ),
        width="100%",
        data_testid="outcomes",
    )


def _lane_label(row: TimelineRow) -> rx.Component:
    return rx.hstack(
        rx.link(row.dataset, href=row.result_href, size="2", weight="medium", truncate=True, max_width="12rem"),
        rx.link(
            rx.badge(row.label, color_scheme="red", variant="soft"),
            href=row.href,
            underline="none",
            data_testid="timeline-count",
        ),
        height="36px",
        align="center",
        spacing="2",
        data_testid="timeline-row",
        data_dataset=row.dataset,
        data_points=row.points.length(),  # type: ignore[attr-defined]
    )


def _lane(row: TimelineRow) -> rx.Component:
    return rx.recharts.scatter(
        data=row.points,
        fill="var(--red-9)",
        name=row.dataset,
        is_animation_active=False,
        class_name="timeline-anomaly",
    )


def timeline_card() -> rx.Component:
    """The anomaly timeline: a lane per dataset, a dot at each anomaly (bigger for a larger score)."""
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Anomaly timeline", size="4"),
                rx.text(
                    "latest result with anomalies per dataset; a dot per anomaly, bigger when it stands out more",
                    size="2",
                    color_scheme="gray",
                ),
                align="baseline",
                spacing="3",
                flex_wrap="wrap",
            ),
            rx.cond(
                TimelineState.timeline_error != "",
                rx.text(TimelineState.timeline_error, color_scheme="red", size="2", data_testid="timeline-error"),
            ),
            rx.cond(
                TimelineState.lane_count > 0,
                rx.hstack(
                    rx.vstack(
                        rx.foreach(TimelineState.timeline, _lane_label),
                        spacing="0",
                        padding_top="10px",
                        min_width="16rem",
                    ),
                    rx.box(
                        rx.recharts.scatter_chart(
                            rx.recharts.cartesian_grid(stroke_dasharray="3 3", stroke="var(--gray-a5)"),
                            rx.recharts.x_axis(
                                data_key="t",
                                type_="number",
                                scale="time",
                                domain=["dataMin", "dataMax"],
                                tick_formatter=TIME_TICKS,
                                min_tick_gap=40,
                                name="time",
                            ),
                            rx.recharts.y_axis(
                                data_key="lane",
                                type_="number",
                                domain=[-0.5, TimelineState.lane_count - 0.5],
                                reversed=True,
                                hide=True,
                                allow_decimals=False,
                            ),
                            rx.recharts.z_axis(data_key="z", range=[30, 200]),
                            rx.foreach(TimelineState.timeline, _lane),
                            rx.recharts.graphing_tooltip(
                                custom_attrs={"labelFormatter": rx.Var(_js_expr=TIME_LABEL)},
                            ),
                            height=TimelineState.timeline_height,
                            width="100%",
                            margin={"top": 10, "right": 20, "bottom": 10, "left": 10},
                        ),
                        flex="1",
                        min_width="20rem",
                    ),
                    width="100%",
                    align="start",
                ),
                rx.cond(
                    TimelineState.timeline_loaded,
                    rx.text("No anomalies in the recent results.", size="2", color_scheme="gray"),
                ),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
        on_mount=TimelineState.load_timeline,
        data_testid="anomaly-timeline",
    )
