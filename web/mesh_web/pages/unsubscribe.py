"""The unsubscribe page: where the link in a notification e-mail leads.

Public (no sign-in): the signed token in the link's query string is the only
authorization, checked by notify. Opening the page changes nothing (mail link
scanners open links): it asks notify's CheckUnsubscribe what the link would
end and shows it with a button; only the button calls Unsubscribe, which
disables the subscription. The token is read from the page's address on each
call and never kept in the state.
"""

from __future__ import annotations

from typing import Literal

import grpc
import reflex as rx

from mesh.notify.v1 import notify_service_pb2 as notify_pb
from mesh_runtime.errors import MeshError
from mesh_web import service_clients
from mesh_web.display import service_error_text

ROUTE = "/unsubscribe"

Phase = Literal["checking", "confirm", "done", "invalid", "failed"]

INVALID_LINK_TEXT = (
    "This unsubscribe link is not valid: it was changed, cut short, or made for another address. "
    "Open the link from the e-mail again (the whole of it), or ask whoever manages the Analytics Mesh "
    "notifications to remove your address. Nothing was changed."
)


def unsubscribe_problem(error: MeshError) -> tuple[Phase, str]:
    """The phase and line the page shows after a failed call: a link notify
    refused is invalid; anything else is a passing failure, said so."""
    if error.code == grpc.StatusCode.INVALID_ARGUMENT:
        return "invalid", INVALID_LINK_TEXT
    return "failed", f"{service_error_text('notify', error)}. Nothing was changed; try again in a minute."


class UnsubscribeState(rx.State):
    """What the link would end, and the state of the confirmation."""

    phase: str = "checking"
    email: str = ""
    description: str = ""
    message: str = ""
    submitting: bool = False

    def _token(self) -> str:
        return str(self.router.url.query_parameters.get("token", "")).strip()

    @rx.event(background=True)
    async def check(self) -> None:
        """Ask notify what the link would end; changes nothing."""
        async with self:
            self.phase, self.email, self.description, self.message = "checking", "", "", ""
            self.submitting = False
            token = self._token()
        if not token:
            async with self:
                self.phase, self.message = "invalid", INVALID_LINK_TEXT
            return
        try:
            answer = await service_clients.call(
                "notify", "CheckUnsubscribe", notify_pb.CheckUnsubscribeRequest(token=token)
            )
        except MeshError as error:
            async with self:
                self.phase, self.message = unsubscribe_problem(error)
            return
        async with self:
            self.email, self.description = answer.email, answer.description
            if answer.disabled:
                self.phase = "done"
                self.message = (
                    f"{answer.email} is already unsubscribed: no more e-mails come from this subscription."
                    if answer.email
                    else answer.message
                )
            else:
                self.phase, self.message = "confirm", ""

    @rx.event(background=True)
    async def confirm(self) -> None:
        """Unsubscribe: notify disables the subscription (its delivery log stays)."""
        async with self:
            if self.submitting or self.phase != "confirm":
                return
            self.submitting = True
            token = self._token()
        try:
            answer = await service_clients.call("notify", "Unsubscribe", notify_pb.UnsubscribeRequest(token=token))
        except MeshError as error:
            async with self:
                self.submitting = False
                self.phase, self.message = unsubscribe_problem(error)
            return
        async with self:
            self.submitting = False
            self.phase, self.message = "done", answer.message


def _confirmation() -> rx.Component:
    return rx.vstack(
        rx.text(
            "Stop the e-mails to ",
            rx.text.strong(UnsubscribeState.email, data_testid="unsubscribe-email"),
            "?",
            size="3",
        ),
        rx.text(UnsubscribeState.description, color_scheme="gray", size="2", data_testid="unsubscribe-description"),
        rx.text(
            "Nothing has changed yet. The subscription is disabled, not deleted: "
            "whoever manages it can enable it again.",
            size="2",
            color_scheme="gray",
        ),
        rx.button(
            "Unsubscribe",
            on_click=UnsubscribeState.confirm,
            loading=UnsubscribeState.submitting,
            color_scheme="red",
            width="100%",
            data_testid="unsubscribe-confirm",
        ),
        spacing="3",
        width="100%",
    )


def unsubscribe_page() -> rx.Component:
    """The unsubscribe page."""
    return rx.center(
        rx.card(
            rx.vstack(
                rx.heading("Unsubscribe", size="6", weight="bold"),
                rx.match(
                    UnsubscribeState.phase,
                    ("confirm", _confirmation()),
                    (
                        "done",
                        rx.callout(
                            UnsubscribeState.message,
                            icon="circle_check",
                            color_scheme="green",
                            width="100%",
                            data_testid="unsubscribe-done",
                        ),
                    ),
                    (
                        "checking",
                        rx.text("Checking the link…", color_scheme="gray", data_testid="unsubscribe-checking"),
                    ),
                    rx.callout(
                        UnsubscribeState.message,
                        icon="triangle_alert",
                        color_scheme="red",
                        role="alert",
                        width="100%",
                        data_testid="unsubscribe-error",
                    ),
                ),
                spacing="4",
                width="100%",
            ),
            size="3",
            width="100%",
            max_width="30rem",
        ),
        min_height="100vh",
        padding="1rem",
        data_testid="unsubscribe-page",
    )
