"""The Mailbox page: the e-mail the local SMTP catcher (or mailpit in the
compose stack) captured, newest first, each readable in full."""

from __future__ import annotations

import reflex as rx
from reflex.event import EventSpec

from mesh.auth.v1.access_pb2 import ROLE_ANALYST
from mesh_runtime.errors import MeshError
from mesh_web import service_clients
from mesh_web.auth_state import AuthState, redirect_when_signed_out, requires_role
from mesh_web.components.layout import page_layout
from mesh_web.components.service_banner import service_banner
from mesh_web.components.states import empty_callout, loading_line, page_header
from mesh_web.display import service_error_text
from mesh_web.notify_display import MailRow, mail_body, mail_rows, mailbox_summary

ROUTE = "/mailbox"
SHOWN = 100
"""Messages listed at most."""
SERVICE = "mailbox"
"""How the mail catcher is named in the banner."""


class MailboxState(AuthState):
    """The captured messages and the one opened."""

    messages: list[MailRow] = []
    summary: str = ""
    open_id: str = ""
    open_subject: str = ""
    open_body: str = ""
    loading: bool = False
    loaded: bool = False
    error: str = ""

    @rx.var
    def has_messages(self) -> bool:
        """Whether any message was captured."""
        return bool(self.messages)

    @rx.event(background=True)
    @redirect_when_signed_out
    async def load(self) -> EventSpec | None:
        """Fetch the newest messages (only for a signed-in user)."""
        async with self:
            self.loading = True
        try:
            # The catcher has no sign-in of its own: the page asks for a session first.
            await self._access_token_for_call()
            listing = await service_clients.mailbox_messages(SHOWN)
        except MeshError as error:
            async with self:
                self.error = service_error_text(SERVICE, error)
                self.loading, self.loaded = False, True
            return None
        rows = mail_rows(listing)
        async with self:
            self.messages = rows
            self.summary = mailbox_summary(int(listing.get("messages_count", listing.get("total", len(rows)))), rows)
            self.error, self.loading, self.loaded = "", False, True
        return None

    @rx.event(background=True)
    @redirect_when_signed_out
    async def open_message(self, message_id: str) -> EventSpec | None:
        """Show one message in full."""
        try:
            await self._access_token_for_call()
            message = await service_clients.mailbox_message(message_id)
        except MeshError as error:
            async with self:
                self.error = service_error_text(SERVICE, error)
            return None
        async with self:
            self.open_id = message_id
            self.open_subject = str(message.get("Subject", "")) or "(no subject)"
            self.open_body = mail_body(message)
        return None

    @rx.event
    def close_message(self) -> None:
        """Close the message shown."""
        self.open_id = ""

    @rx.event(background=True)
    @redirect_when_signed_out
    @requires_role(ROLE_ANALYST)
    async def delete_all(self) -> EventSpec | None:
        """Empty the mailbox."""
        try:
            await self._access_token_for_call()
            await service_clients.mailbox_delete_all()
        except MeshError as error:
            async with self:
                self.error = service_error_text(SERVICE, error)
            return None
        async with self:
            self.open_id = ""
        return MailboxState.load


def _list() -> rx.Component:
    return rx.vstack(
        rx.text(MailboxState.summary, size="2", color_scheme="gray", data_testid="mailbox-summary"),
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    rx.table.column_header_cell("Received"),
                    rx.table.column_header_cell("From"),
                    rx.table.column_header_cell("To"),
                    rx.table.column_header_cell("Subject"),
                )
            ),
            rx.table.body(
                rx.foreach(
                    MailboxState.messages,
                    lambda m: rx.table.row(
                        rx.table.cell(m.received, white_space="nowrap"),
                        rx.table.cell(m.sender),
                        rx.table.cell(m.recipients, data_testid="mail-to"),
                        rx.table.cell(
                            rx.vstack(
                                rx.link(
                                    m.subject,
                                    on_click=MailboxState.open_message(m.id),  # type: ignore[misc, operator]
                                    cursor="pointer",
                                    weight="medium",
                                    data_testid="mail-subject",
                                ),
                                rx.text(m.snippet, size="1", color_scheme="gray"),
                                spacing="0",
                            )
                        ),
                        data_testid="mail-row",
                    ),
                )
            ),
            variant="surface",
            width="100%",
            data_testid="mailbox-table",
        ),
        spacing="2",
        width="100%",
    )


def _open_message() -> rx.Component:
    return rx.cond(
        MailboxState.open_id != "",
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.heading(MailboxState.open_subject, size="4"),
                    rx.spacer(),
                    rx.button("Close", size="1", variant="soft", on_click=MailboxState.close_message),
                    width="100%",
                ),
                rx.text(MailboxState.open_body, white_space="pre-wrap", size="2", data_testid="mail-body"),
                spacing="3",
                width="100%",
            ),
            width="100%",
            data_testid="mail-open",
        ),
    )


def mailbox_page() -> rx.Component:
    """The Mailbox page."""
    return page_layout(
        page_header(
            "Mailbox",
            rx.cond(
                MailboxState.can_edit & MailboxState.has_messages,
                rx.button(
                    rx.icon("trash_2", size=16),
                    "Delete all",
                    on_click=MailboxState.delete_all,
                    color_scheme="red",
                    variant="soft",
                    data_testid="mailbox-delete-all",
                ),
            ),
            rx.button(
                rx.icon("refresh_cw", size=16),
                "Refresh",
                on_click=MailboxState.load,
                loading=MailboxState.loading,
                variant="soft",
                data_testid="refresh-mailbox",
            ),
        ),
        rx.text(
            "E-mail captured by the local SMTP catcher (mailpit in the compose stack): nothing leaves the machine.",
            size="2",
            color_scheme="gray",
        ),
        service_banner(MailboxState.error),
        _open_message(),
        rx.cond(
            MailboxState.has_messages,
            _list(),
            rx.cond(
                MailboxState.loaded,
                rx.cond(
                    MailboxState.error == "",
                    empty_callout(
                        "No e-mail captured yet. Subscribe an address on the Notifications page and run an analysis.",
                        "mailbox-empty",
                    ),
                ),
                loading_line("Loading the mailbox…", "mailbox-loading"),
            ),
        ),
    )
