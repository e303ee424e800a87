"""The Dashboard: how much there is, recent results counted by outcome and
the anomaly timeline (anomaly_timeline.py), the last day of the datasets
written to last (sparklines.py), the latest results, recent anomalies and the health of
every service in the mesh."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import reflex as rx

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.notify.v1 import notify_service_pb2 as notify_pb
from mesh_runtime.errors import MeshError
from mesh_web import service_clients
from mesh_web.auth_state import AuthState, SignedOut, redirect_when_signed_out
from mesh_web.components.layout import page_layout
from mesh_web.components.service_banner import service_banner
from mesh_web.components.states import empty_callout, loading_line, page_header, stat_card
from mesh_web.display import MISSING, HealthRow, format_count, health_row, service_error_text
from mesh_web.pages.anomaly_timeline import outcomes_card, timeline_card
from mesh_web.pages.sparklines import sparklines_card
from mesh_web.result_display import ResultRow, result_row
from mesh_web.service_clients import rpc

ROUTE = "/"

HEALTH_CHECKS: tuple[tuple[str, Callable[[], Awaitable[str]]], ...] = (
    ("analytics", lambda: service_clients.grpc_health("analytics")),
    ("llm", lambda: service_clients.grpc_health("llm")),
    ("notify", lambda: service_clients.grpc_health("notify")),
    ("gateway (Envoy)", service_clients.gateway_health),
)
"""Each service on the dashboard and how its health is asked."""

LATEST = 8
"""Results shown in each dashboard list."""


async def _health(service: str, check: Callable[[], Awaitable[str]]) -> HealthRow:
    try:
        return health_row(service, await check())
    except MeshError as error:
        return health_row(service, error)


class DashboardState(AuthState):
    """The dashboard's counts, lists and health lines."""

    dataset_count: str = MISSING
    schedule_count: str = MISSING
    subscription_count: str = MISSING
    latest: list[ResultRow] = []
    anomalous: list[ResultRow] = []
    health: list[HealthRow] = []
    errors: list[str] = []
    loading: bool = False
    loaded: bool = False
    _load_id: int = 0

    @rx.var
    def banner(self) -> str:
        """Every failed call, one per service, on one line."""
        return " · ".join(self.errors)

    @rx.event(background=True)
    @redirect_when_signed_out
    async def load(self) -> None:
        """Fetch counts, the latest results and anomalies, and every service's health, at once."""
        async with self:
            self._load_id += 1
            load_id = self._load_id
            self.loading = True
        try:
            (datasets, schedules, subscriptions, latest, anomalous), health = await asyncio.gather(
                self._call_all_signed_in(
                    rpc("analytics", "ListDatasets", pb.ListDatasetsRequest(page_size=1)),
                    rpc("analytics", "ListSchedules", pb.ListSchedulesRequest(page_size=1000)),
                    rpc("notify", "ListSubscriptions", notify_pb.ListSubscriptionsRequest(page_size=1000)),
                    rpc("analytics", "ListResults", pb.ListResultsRequest(page_size=LATEST)),
                    rpc("analytics", "ListResults", pb.ListResultsRequest(page_size=LATEST, has_anomalies=True)),
                ),
                asyncio.gather(*(_health(name, check) for name, check in HEALTH_CHECKS)),
            )
        except SignedOut:
            async with self:
                self.loading = False
            raise
        errors: dict[str, str] = {}

        def counted(value: Any, service: str, count: Callable[[Any], int]) -> str:
            if isinstance(value, MeshError):
                errors.setdefault(service, service_error_text(service, value))
                return MISSING
            return format_count(count(value))

        async with self:
            if load_id != self._load_id:
                return  # A newer load (Refresh) answers instead.
            self.dataset_count = counted(datasets, "analytics", lambda r: r.total_size)
            self.schedule_count = counted(schedules, "analytics", lambda r: len(r.schedules))
            self.subscription_count = counted(subscriptions, "notify", lambda r: len(r.subscriptions))
            self.latest = [] if isinstance(latest, MeshError) else [result_row(r) for r in latest.results]
            self.anomalous = [] if isinstance(anomalous, MeshError) else [result_row(r) for r in anomalous.results]
            for value in (latest, anomalous):
                if isinstance(value, MeshError):
                    errors.setdefault("analytics", service_error_text("analytics", value))
            self.health = list(health)
            self.errors = list(errors.values())
            self.loading = False
            self.loaded = True


def _health_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Health of the mesh", size="4"),
            rx.foreach(
                DashboardState.health,
                lambda row: rx.hstack(
                    rx.text(row.service, weight="medium", min_width="9rem"),
                    rx.badge(
                        row.status,
                        color_scheme=rx.match(row.status, ("serving", "green"), ("not serving", "orange"), "red"),
                        data_testid="health-status",
                    ),
                    rx.text(row.detail, size="1", color_scheme="gray"),
                    align="center",
                    spacing="3",
                    data_testid="health-row",
                    data_service=row.service,
                ),
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
        data_testid="health",
    )


def _result_list(title: str, rows: rx.Var[list[ResultRow]] | list[ResultRow], empty: str, test_id: str) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(title, size="4"),
            rx.cond(
                rows.length() > 0,  # type: ignore[union-attr]
                rx.vstack(
                    rx.foreach(
                        rows,
                        lambda row: rx.link(
                            rx.hstack(
                                rx.text(row.dataset_name, weight="medium"),
                                rx.badge(row.kind, variant="soft"),
                                rx.badge(row.status, variant="outline"),
                                rx.cond(
                                    row.has_anomalies,
                                    rx.badge(row.anomaly_label, color_scheme="red", data_testid="anomaly-label"),
                                ),
                                rx.spacer(),
                                rx.text(row.created, size="1", color_scheme="gray"),
                                align="center",
                                width="100%",
                            ),
                            href="/results/" + row.id,
                            underline="none",
                            width="100%",
                            data_testid=f"{test_id}-row",
                        ),
                    ),
                    spacing="2",
                    width="100%",
                ),
                rx.text(empty, color_scheme="gray", size="2"),
            ),
            spacing="3",
            width="100%",
        ),
        flex="1",
        min_width="20rem",
        data_testid=test_id,
    )


def dashboard_page() -> rx.Component:
    """The Dashboard page."""
    return page_layout(
        page_header(
            "Dashboard",
            rx.button(
                rx.icon("refresh_cw", size=16),
                "Refresh",
                on_click=DashboardState.load,
                loading=DashboardState.loading,
                variant="soft",
                data_testid="refresh-dashboard",
            ),
        ),
        service_banner(DashboardState.banner),
        rx.cond(
            DashboardState.loaded,
            rx.vstack(
                rx.hstack(
                    stat_card("Datasets", DashboardState.dataset_count, "count-datasets", "/datasets"),
                    stat_card("Schedules", DashboardState.schedule_count, "count-schedules", "/datasets"),
                    stat_card(
                        "Subscriptions", DashboardState.subscription_count, "count-subscriptions", "/notifications"
                    ),
                    spacing="4",
                    width="100%",
                    flex_wrap="wrap",
                ),
                outcomes_card(),
                sparklines_card(),
                timeline_card(),
                rx.hstack(
                    _result_list(
                        "Latest results",
                        DashboardState.latest,
                        "No results yet — run an analysis from a dataset's page.",
                        "latest-results",
                    ),
                    _result_list(
                        "Recent anomalies",
                        DashboardState.anomalous,
                        "No anomalies found so far.",
                        "recent-anomalies",
                    ),
                    spacing="4",
                    width="100%",
                    flex_wrap="wrap",
                    align="start",
                ),
                _health_card(),
                spacing="4",
                width="100%",
            ),
            loading_line("Loading the dashboard…", "dashboard-loading"),
        ),
        rx.cond(
            DashboardState.loaded & (DashboardState.dataset_count == "0"),
            empty_callout(
                "Start by creating a dataset on the Datasets page, then upload a CSV or generate sample data.",
                "dashboard-empty",
            ),
        ),
    )
