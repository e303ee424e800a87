"""The Results page: every analysis result in a table with filters (dataset,
kind, status, created range, anomalies), sorting and page-token pagination.
While the page is open, WatchResults streams new and changed results into
the table without a reload."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import reflex as rx
from reflex.event import EventSpec

from mesh.analytics.v1 import analysis_pb2, analytics_service_pb2
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh_runtime.errors import MeshError
from mesh_web import service_clients
from mesh_web.auth_state import AuthState, redirect_when_signed_out
from mesh_web.components.layout import page_layout
from mesh_web.components.service_banner import service_banner
from mesh_web.components.states import choice, empty_callout, loading_line, page_header
from mesh_web.display import service_error_text
from mesh_web.result_display import (
    ANY,
    KIND_LABELS,
    ORDERS,
    STATUS_LABELS,
    ResultFilters,
    ResultRow,
    list_results_request,
    result_row,
    rows_after_update,
)
from mesh_web.service_clients import rpc

ROUTE = "/results"
PAGE_SIZE = 25
WATCH_WINDOW_SECONDS = 60.0
"""Deadline of one WatchResults stream; the page opens the next one as it ends."""
WATCH_LIFETIME_SECONDS = 30 * 60.0
"""How long one visit of the page keeps watching; reopening the page watches again."""
WATCH_RETRY_SECONDS = 5.0
"""Wait before watching again after the stream failed (analytics down)."""
ALL_DATASETS = "all"


class ResultsState(AuthState):
    """The results table, its filters and pages, and the live watch."""

    rows: list[ResultRow] = []
    loading: bool = False
    loaded: bool = False
    error: str = ""
    filter_error: str = ""

    f_dataset: str = ALL_DATASETS
    f_kind: str = ANY
    f_status: str = ANY
    f_anomalies: str = ANY
    f_after: str = ""
    f_before: str = ""
    f_order: str = "newest"
    filters_key: int = 0
    dataset_options: list[list[str]] = []

    page_number: int = 1
    next_page_token: str = ""
    _page_tokens: list[str] = []
    """The token of each page before the current one (the first page's is '')."""
    _current_token: str = ""
    _request: bytes = b""

    live: bool = False
    live_error: str = ""
    _watch_generation: int = 0

    @rx.var
    def has_rows(self) -> bool:
        """Whether the table has anything to show."""
        return bool(self.rows)

    @rx.var
    def is_empty(self) -> bool:
        """Whether analytics answered and no result matches."""
        return self.loaded and not self.rows and not self.error

    @rx.var
    def page_label(self) -> str:
        """The page's number, as text."""
        return str(self.page_number)

    @rx.var
    def has_previous(self) -> bool:
        """Whether there is a page before this one."""
        return self.page_number > 1

    def _filters(self) -> ResultFilters:
        return ResultFilters(
            dataset_id="" if self.f_dataset == ALL_DATASETS else self.f_dataset,
            kind=self.f_kind,
            status=self.f_status,
            anomalies=self.f_anomalies,
            created_after=self.f_after,
            created_before=self.f_before,
            order=self.f_order,
        )

    @rx.event(background=True)
    @redirect_when_signed_out
    async def open_page(self) -> list[EventSpec]:
        """On load: take the filters the URL names (?dataset=ID, ?status=failed,
        ?kind=trend, ?anomalies=with: the dashboard's counts link so), fetch the
        first page and the dataset names, and start watching."""
        async with self:
            query = self.router.url.query_parameters
            if any(str(query.get(name, "")).strip() for name in ("dataset", "status", "kind", "anomalies")):
                # A link names the whole filter: what an earlier visit chose does not add to it.
                self.f_dataset, self.f_kind, self.f_status, self.f_anomalies = ALL_DATASETS, ANY, ANY, ANY
                self.f_after = self.f_before = ""
            dataset = str(query.get("dataset", "")).strip()
            if dataset:
                self.f_dataset = dataset
            for name, field, allowed in (
                ("status", "f_status", STATUS_LABELS.values()),
                ("kind", "f_kind", KIND_LABELS.values()),
                ("anomalies", "f_anomalies", ("with", "without")),
            ):
                value = str(query.get(name, "")).strip()
                if value in allowed:
                    setattr(self, field, value)
            self.filters_key += 1
            self._watch_generation += 1
        await self._options()
        return [ResultsState.first_page, ResultsState.watch]

    async def _options(self) -> None:
        try:
            response = await self._call_signed_in(
                rpc("analytics", "ListDatasets", pb.ListDatasetsRequest(page_size=1000))
            )
        except MeshError:
            return  # The table's own call reports analytics being down.
        async with self:
            self.dataset_options = [[d.id, d.name] for d in response.datasets]

    @rx.event(background=True)
    @redirect_when_signed_out
    async def apply_filters(self, form_data: dict[str, Any]) -> None:
        """Filter and sort the table as the filter form says, from the first page."""
        async with self:
            self.f_dataset = str(form_data.get("dataset", ALL_DATASETS)) or ALL_DATASETS
            self.f_kind = str(form_data.get("kind", ANY)) or ANY
            self.f_status = str(form_data.get("status", ANY)) or ANY
            self.f_anomalies = str(form_data.get("anomalies", ANY)) or ANY
            self.f_after = str(form_data.get("created_after", "")).strip()
            self.f_before = str(form_data.get("created_before", "")).strip()
            self.f_order = str(form_data.get("order", "newest")) or "newest"
        await self._fetch(token="", previous=[])

    @rx.event(background=True)
    @redirect_when_signed_out
    async def toggle_created_order(self) -> None:
        """Sort by creation time the other way (the Created column's header)."""
        async with self:
            self.f_order = "oldest" if self.f_order == "newest" else "newest"
            self.filters_key += 1
        await self._fetch(token="", previous=[])

    @rx.event(background=True)
    @redirect_when_signed_out
    async def first_page(self) -> None:
        """Fetch the first page with the current filters."""
        await self._fetch(token="", previous=[])

    @rx.event(background=True)
    @redirect_when_signed_out
    async def next_page(self) -> None:
        """Fetch the page after this one."""
        async with self:
            token, previous = self.next_page_token, [*self._page_tokens, self._current_token]
        if token:
            await self._fetch(token=token, previous=previous)

    @rx.event(background=True)
    @redirect_when_signed_out
    async def previous_page(self) -> None:
        """Fetch the page before this one."""
        async with self:
            if not self._page_tokens:
                return
            previous = list(self._page_tokens)
        token = previous.pop()
        await self._fetch(token=token, previous=previous)

    async def _fetch(self, token: str, previous: list[str]) -> None:
        async with self:
            try:
                request = list_results_request(self._filters(), PAGE_SIZE, token)
            except ValueError as problem:
                self.filter_error = str(problem)
                return
            self.filter_error, self.loading = "", True
        try:
            response = await self._call_signed_in(rpc("analytics", "ListResults", request))
        except MeshError as error:
            async with self:
                self.loading, self.loaded = False, True
                self.error = service_error_text("analytics", error)
            return
        async with self:
            self.rows = [result_row(r) for r in response.results]
            self.next_page_token = response.next_page_token
            self._page_tokens, self._current_token = previous, token
            self.page_number = len(previous) + 1
            request.page_token = ""
            self._request = request.SerializeToString()
            self.loading, self.loaded, self.error = False, True, ""

    def _on_this_page(self) -> bool:
        return str(self.router.url.path).rstrip("/") == ROUTE

    def _apply(self, result: analysis_pb2.Result) -> None:
        """Merge one watched result into the table (new ones only onto the first page)."""
        request = analytics_service_pb2.ListResultsRequest.FromString(self._request)
        if self.page_number > 1 and all(row.id != result.id for row in self.rows):
            return
        rows = rows_after_update(self.rows, result, request)
        self.rows = rows[: max(PAGE_SIZE, len(self.rows))]

    @rx.event(background=True)
    @redirect_when_signed_out
    async def watch(self) -> None:
        """Stream new and changed results into the table while the page is open.

        Each stream lasts WATCH_WINDOW_SECONDS; after the first, and after a
        failure, the shown page is listed again once the next stream is
        established, so a change made between two streams is not missed."""
        async with self:
            generation = self._watch_generation
        stop_at = time.monotonic() + WATCH_LIFETIME_SECONDS
        catch_up = False
        while time.monotonic() < stop_at:
            async with self:
                if generation != self._watch_generation or not self._on_this_page():
                    if generation == self._watch_generation:
                        self.live = False
                    return
            try:
                async for result in self._stream_signed_in(
                    lambda md: service_clients.watch_results("", WATCH_WINDOW_SECONDS, metadata=md)
                ):
                    if result is None:  # The watch is established.
                        async with self:
                            if generation != self._watch_generation:
                                return
                            self.live, self.live_error = True, ""
                            token, previous = self._current_token, list(self._page_tokens)
                        if catch_up:
                            await self._fetch(token=token, previous=previous)
                        continue
                    async with self:
                        if generation != self._watch_generation:
                            return
                        self._apply(result)
            except MeshError as error:
                async with self:
                    if generation != self._watch_generation:
                        return
                    self.live = False
                    self.live_error = service_error_text("analytics", error) + " — live updates paused, retrying"
                await asyncio.sleep(WATCH_RETRY_SECONDS)
            catch_up = True
        async with self:
            if generation == self._watch_generation:
                self.live = False


# --- the page ---------------------------------------------------------------------------


def _select(name: str, items: list[str], value: rx.Var[str] | str, label: str) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", color_scheme="gray"),
        choice(items, name, value, f"filter-{name}"),
        spacing="1",
    )


def _filters() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.vstack(
                rx.text("Dataset", size="1", color_scheme="gray"),
                rx.select.root(
                    rx.select.trigger(placeholder="All datasets", min_width="12rem", data_testid="filter-dataset"),
                    rx.select.content(
                        rx.select.item("All datasets", value=ALL_DATASETS),
                        rx.foreach(ResultsState.dataset_options, lambda o: rx.select.item(o[1], value=o[0])),
                    ),
                    name="dataset",
                    default_value=ResultsState.f_dataset,
                ),
                spacing="1",
            ),
            _select("kind", [ANY, *KIND_LABELS.values()], ResultsState.f_kind, "Kind"),
            _select("status", [ANY, *STATUS_LABELS.values()], ResultsState.f_status, "Status"),
            _select("anomalies", [ANY, "with", "without"], ResultsState.f_anomalies, "Anomalies"),
            rx.vstack(
                rx.text("Created from", size="1", color_scheme="gray"),
                rx.input(
                    type="date",
                    name="created_after",
                    default_value=ResultsState.f_after,
                    data_testid="filter-created-after",
                ),
                spacing="1",
            ),
            rx.vstack(
                rx.text("until", size="1", color_scheme="gray"),
                rx.input(
                    type="date",
                    name="created_before",
                    default_value=ResultsState.f_before,
                    data_testid="filter-created-before",
                ),
                spacing="1",
            ),
            _select("order", list(ORDERS), ResultsState.f_order, "Sort"),
            rx.button(rx.icon("filter", size=16), "Apply", type="submit", data_testid="apply-filters"),
            align="end",
            spacing="3",
            flex_wrap="wrap",
            width="100%",
        ),
        on_submit=ResultsState.apply_filters,
        reset_on_submit=False,
        key=ResultsState.filters_key,
        width="100%",
        data_testid="results-filters",
    )


def _status_badge(status: rx.Var[str]) -> rx.Component:
    return rx.badge(
        status,
        color_scheme=rx.match(
            status, ("succeeded", "green"), ("failed", "red"), ("running", "blue"), ("pending", "gray"), "gray"
        ),
        data_testid="result-status",
    )


def _table() -> rx.Component:
    return rx.table.root(
        rx.table.header(
            rx.table.row(
                rx.table.column_header_cell("Dataset"),
                rx.table.column_header_cell("Kind"),
                rx.table.column_header_cell("Status"),
                rx.table.column_header_cell("Anomalies", justify="end"),
                rx.table.column_header_cell("Insight"),
                rx.table.column_header_cell("Origin"),
                rx.table.column_header_cell(
                    rx.link(
                        "Created ",
                        rx.cond(
                            ResultsState.f_order == "oldest", "↑", rx.cond(ResultsState.f_order == "newest", "↓", "")
                        ),
                        on_click=ResultsState.toggle_created_order,
                        cursor="pointer",
                        data_testid="sort-created",
                    )
                ),
                rx.table.column_header_cell("Took"),
            ),
        ),
        rx.table.body(
            rx.foreach(
                ResultsState.rows,
                lambda row: rx.table.row(
                    rx.table.row_header_cell(
                        rx.link(
                            row.dataset_name, href="/results/" + row.id, weight="medium", data_testid="result-link"
                        ),
                    ),
                    rx.table.cell(row.kind),
                    rx.table.cell(_status_badge(row.status)),
                    rx.table.cell(
                        rx.cond(
                            row.has_anomalies,
                            rx.text(row.anomalies, color_scheme="red", weight="bold"),
                            rx.text(row.anomalies),
                        ),
                        justify="end",
                    ),
                    rx.table.cell(row.insight),
                    rx.table.cell(row.origin),
                    rx.table.cell(row.created, white_space="nowrap"),
                    rx.table.cell(row.duration, white_space="nowrap"),
                    data_testid="result-row",
                    data_result_id=row.id,
                    data_status=row.status,
                ),
            ),
        ),
        variant="surface",
        width="100%",
        data_testid="results-table",
    )


def _live_badge() -> rx.Component:
    return rx.cond(
        ResultsState.live,
        rx.badge(rx.icon("radio", size=12), "live", color_scheme="green", data_testid="results-live"),
        rx.badge("not live", color_scheme="gray", data_testid="results-not-live"),
    )


def results_page() -> rx.Component:
    """The Results page."""
    return page_layout(
        page_header(
            "Results",
            _live_badge(),
            rx.button(
                rx.icon("refresh_cw", size=16),
                "Refresh",
                on_click=ResultsState.first_page,
                loading=ResultsState.loading,
                variant="soft",
                data_testid="refresh-results",
            ),
        ),
        _filters(),
        rx.cond(
            ResultsState.filter_error != "",
            rx.callout(
                ResultsState.filter_error,
                icon="triangle_alert",
                color_scheme="orange",
                width="100%",
                data_testid="filter-error",
            ),
        ),
        service_banner(ResultsState.error),
        rx.cond(
            ResultsState.live_error != "",
            rx.callout(
                ResultsState.live_error, icon="wifi_off", color_scheme="orange", width="100%", data_testid="live-error"
            ),
        ),
        rx.cond(
            ResultsState.has_rows,
            rx.vstack(
                _table(),
                rx.hstack(
                    rx.button(
                        "← Previous",
                        on_click=ResultsState.previous_page,
                        disabled=~ResultsState.has_previous,
                        variant="outline",
                        data_testid="previous-page",
                    ),
                    rx.text("Page ", ResultsState.page_label, size="2", data_testid="page-number"),
                    rx.button(
                        "Next →",
                        on_click=ResultsState.next_page,
                        disabled=ResultsState.next_page_token == "",
                        variant="outline",
                        data_testid="next-page",
                    ),
                    align="center",
                    spacing="3",
                ),
                spacing="3",
                width="100%",
            ),
            rx.cond(
                ResultsState.is_empty,
                empty_callout(
                    "No results match — run an analysis from a dataset's page, or widen the filters. "
                    "New results appear here as they are made.",
                    "results-empty",
                ),
                rx.cond(ResultsState.error == "", loading_line("Loading results…", "results-loading")),
            ),
        ),
    )
