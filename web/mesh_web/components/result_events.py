"""A result's anomaly events, ranked largest first, a page at a time: every
event the result keeps (ListResultEvents), with Previous and Next.

Its own state loads the first page when the card mounts (once the result has
events), so the result page includes it with one line."""

from __future__ import annotations

import reflex as rx

from mesh.analytics.v1 import analytics_service_pb2
from mesh_runtime.errors import MeshError
from mesh_web.anomaly_display import events_caption
from mesh_web.auth_state import AuthState, last_path_segment, redirect_when_signed_out
from mesh_web.display import format_count
from mesh_web.result_display import anomaly_rows
from mesh_web.service_clients import rpc

EVENTS_PER_PAGE = 20


class ResultEventsState(AuthState):
    """One page of the result's events and how to reach the others."""

    event_rows: list[dict[str, str]] = []
    events_caption: str = ""
    events_error: str = ""
    events_loading: bool = False
    next_token: str = ""
    # Tokens of the pages before the one shown ("" is the first page's).
    earlier_tokens: list[str] = []
    current_token: str = ""

    @rx.var
    def has_next(self) -> bool:
        """Whether a page follows the one shown."""
        return self.next_token != ""

    @rx.var
    def has_previous(self) -> bool:
        """Whether a page comes before the one shown."""
        return bool(self.earlier_tokens)

    async def _load(self, token: str) -> None:
        async with self:
            result_id = last_path_segment(self.router.url.path)
            self.events_loading, self.events_error = True, ""
        try:
            page: analytics_service_pb2.ListResultEventsResponse = await self._call_signed_in(
                rpc(
                    "analytics",
                    "ListResultEvents",
                    analytics_service_pb2.ListResultEventsRequest(
                        result_id=result_id, page_size=EVENTS_PER_PAGE, page_token=token
                    ),
                )
            )
        except MeshError as error:
            async with self:
                self.events_loading = False
                self.events_error = f"The events could not be loaded: {error.message}"
            return
        rows = anomaly_rows(page.events, limit=len(page.events))
        for rank, row in enumerate(rows, start=int(page.first_rank)):
            row["rank"] = format_count(rank)
        async with self:
            self.event_rows = rows
            self.events_caption = events_caption(int(page.first_rank), len(rows), int(page.total_size))
            self.current_token, self.next_token = token, page.next_page_token
            self.events_loading = False

    @rx.event(background=True)
    @redirect_when_signed_out
    async def load_first_events(self) -> None:
        """Show the first page: the largest events."""
        async with self:
            self.earlier_tokens, self.event_rows = [], []
        await self._load("")

    @rx.event(background=True)
    @redirect_when_signed_out
    async def next_events(self) -> None:
        """Show the page after the one shown."""
        async with self:
            if not self.next_token or self.events_loading:
                return
            token = self.next_token
            self.earlier_tokens = [*self.earlier_tokens, self.current_token]
        await self._load(token)

    @rx.event(background=True)
    @redirect_when_signed_out
    async def previous_events(self) -> None:
        """Show the page before the one shown."""
        async with self:
            if not self.earlier_tokens or self.events_loading:
                return
            token = self.earlier_tokens[-1]
            self.earlier_tokens = self.earlier_tokens[:-1]
        await self._load(token)


def _table() -> rx.Component:
    return rx.table.root(
        rx.table.header(
            rx.table.row(
                rx.table.column_header_cell("#", justify="end"),
                rx.table.column_header_cell("Peak time"),
                rx.table.column_header_cell("Value", justify="end"),
                rx.table.column_header_cell("Expected", justify="end"),
                rx.table.column_header_cell("Score", justify="end"),
                rx.table.column_header_cell("Lasted"),
            )
        ),
        rx.table.body(
            rx.foreach(
                ResultEventsState.event_rows,
                lambda a: rx.table.row(
                    rx.table.cell(a["rank"], justify="end"),
                    rx.table.cell(a["time"]),
                    rx.table.cell(a["value"], justify="end"),
                    rx.table.cell(a["expected"], justify="end"),
                    rx.table.cell(a["score"], justify="end"),
                    rx.table.cell(a["lasted"]),
                    data_testid="anomaly-row",
                ),
            )
        ),
        size="1",
        width="100%",
    )


def _card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Anomaly events", size="4"),
                rx.text(ResultEventsState.events_caption, size="2", color_scheme="gray", data_testid="events-caption"),
                align="baseline",
                spacing="3",
                wrap="wrap",
            ),
            rx.cond(
                ResultEventsState.events_error != "",
                rx.text(ResultEventsState.events_error, color_scheme="red", size="2", data_testid="events-error"),
            ),
            _table(),
            rx.hstack(
                rx.button(
                    "Previous",
                    variant="soft",
                    disabled=~ResultEventsState.has_previous,
                    loading=ResultEventsState.events_loading,
                    on_click=ResultEventsState.previous_events,
                    data_testid="events-previous",
                ),
                rx.button(
                    "Next",
                    variant="soft",
                    disabled=~ResultEventsState.has_next,
                    loading=ResultEventsState.events_loading,
                    on_click=ResultEventsState.next_events,
                    data_testid="events-next",
                ),
                spacing="2",
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
        on_mount=ResultEventsState.load_first_events,
        data_testid="result-events",
    )


def result_events(anomaly_count: rx.Var[int], status: rx.Var[str]) -> rx.Component:
    """The events card, shown for a succeeded result with anomaly events."""
    return rx.cond((anomaly_count != 0) & (status == "succeeded"), _card())
