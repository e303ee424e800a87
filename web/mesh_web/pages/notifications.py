"""The Notifications page: e-mail subscriptions (create, edit, delete, send a
test e-mail) and the delivery log of what notify sent."""

from __future__ import annotations

from typing import Any

import reflex as rx
from google.protobuf import field_mask_pb2
from reflex.event import EventSpec

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.auth.v1.access_pb2 import ROLE_ANALYST
from mesh.notify.v1 import notify_service_pb2 as notify_pb
from mesh.notify.v1 import subscription_pb2
from mesh_runtime.errors import MeshError
from mesh_web.auth_state import AuthState, redirect_when_signed_out, requires_role
from mesh_web.components.layout import page_layout
from mesh_web.components.row_actions import RowAction, row_actions
from mesh_web.components.service_banner import service_banner
from mesh_web.components.states import empty_callout, error_lines, loading_line, page_header
from mesh_web.display import MISSING, create_dataset_errors, service_error_text
from mesh_web.notify_display import (
    SUBSCRIPTION_FIELDS,
    DeliveryRow,
    SubscriptionRow,
    delivery_row,
    subscription_from_form,
    subscription_row,
)
from mesh_web.service_clients import rpc

ROUTE = "/notifications"
ALL_DATASETS = "all"


class NotificationsState(AuthState):
    """Subscriptions, deliveries, the subscription form and their calls."""

    subscriptions: list[SubscriptionRow] = []
    deliveries: list[DeliveryRow] = []
    dataset_options: list[list[str]] = []
    loading: bool = False
    loaded: bool = False
    error: str = ""
    notice: str = ""

    saving: bool = False
    form_errors: list[str] = []
    form_key: int = 0
    editing_id: str = ""
    form_email: str = ""
    form_display_name: str = ""
    form_dataset: str = ALL_DATASETS
    form_succeeded: bool = True
    form_failed: bool = True
    form_anomaly: bool = True
    form_min_anomalies: str = "0"

    @rx.var
    def has_subscriptions(self) -> bool:
        """Whether there is any subscription."""
        return bool(self.subscriptions)

    @rx.var
    def has_deliveries(self) -> bool:
        """Whether notify has logged any delivery."""
        return bool(self.deliveries)

    @rx.event(background=True)
    @redirect_when_signed_out
    async def load(self) -> None:
        """Fetch subscriptions, deliveries and the dataset names the form offers."""
        async with self:
            self.loading = True
        subscriptions, deliveries, datasets = await self._call_all_signed_in(
            rpc("notify", "ListSubscriptions", notify_pb.ListSubscriptionsRequest(page_size=1000)),
            rpc("notify", "ListDeliveries", notify_pb.ListDeliveriesRequest(page_size=100)),
            rpc("analytics", "ListDatasets", pb.ListDatasetsRequest(page_size=1000)),
        )
        async with self:
            errors = []
            names: dict[str, str] = {}
            if isinstance(datasets, MeshError):
                errors.append(service_error_text("analytics", datasets))
            else:
                names = {d.id: d.name for d in datasets.datasets}
                self.dataset_options = [[d.id, d.name] for d in datasets.datasets]
            for value in (subscriptions, deliveries):
                if isinstance(value, MeshError):
                    errors.append(service_error_text("notify", value))
                    break
            if not isinstance(subscriptions, MeshError):
                self.subscriptions = [subscription_row(s, names) for s in subscriptions.subscriptions]
            if not isinstance(deliveries, MeshError):
                self.deliveries = [delivery_row(d) for d in deliveries.deliveries]
            self.error = " · ".join(errors)
            self.loading, self.loaded = False, True

    @rx.event
    def edit(self, subscription_id: str) -> None:
        """Fill the form with a subscription, to change it."""
        row = next((s for s in self.subscriptions if s.id == subscription_id), None)
        if row is None:
            return
        self.editing_id = row.id
        self.form_email = row.email
        self.form_display_name = "" if row.display_name == MISSING else row.display_name
        self.form_dataset = row.dataset_id or ALL_DATASETS
        self.form_succeeded, self.form_failed, self.form_anomaly = (
            row.event_succeeded,
            row.event_failed,
            row.event_anomaly,
        )
        self.form_min_anomalies = row.min_anomaly_count
        self.form_errors, self.notice = [], ""
        self.form_key += 1

    @rx.event
    def new(self) -> None:
        """Empty the form, to create a subscription."""
        self._clear_form()

    def _clear_form(self) -> None:
        self.editing_id, self.form_email, self.form_display_name = "", "", ""
        self.form_dataset, self.form_min_anomalies = ALL_DATASETS, "0"
        self.form_succeeded = self.form_failed = self.form_anomaly = True
        self.form_errors = []
        self.form_key += 1

    @rx.event(background=True)
    @redirect_when_signed_out
    @requires_role(ROLE_ANALYST)
    async def save(self, form_data: dict[str, Any]) -> EventSpec | None:
        """Create a subscription, or save the one being edited."""
        async with self:
            if self.saving:
                return None
            editing = self.editing_id
            try:
                subscription = subscription_from_form(form_data, editing)
            except ValueError as problem:
                self.form_errors = [str(problem)]
                return None
            self.saving, self.form_errors, self.notice = True, [], ""
        if editing:
            mask = field_mask_pb2.FieldMask(paths=SUBSCRIPTION_FIELDS)
            call = rpc(
                "notify",
                "UpdateSubscription",
                notify_pb.UpdateSubscriptionRequest(subscription=subscription, update_mask=mask),
            )
        else:
            call = rpc("notify", "CreateSubscription", notify_pb.CreateSubscriptionRequest(subscription=subscription))
        try:
            await self._call_signed_in(call)
        except MeshError as error:
            async with self:
                self.saving = False
                self.form_errors = [
                    line.removeprefix("subscription.") for line in _subscription_errors(error, subscription.email)
                ]
            return None
        async with self:
            self.saving = False
            self.notice = f"Saved the subscription of {subscription.email}"
            self._clear_form()
        return NotificationsState.load

    @rx.event(background=True)
    @redirect_when_signed_out
    @requires_role(ROLE_ANALYST)
    async def delete(self, subscription_id: str) -> EventSpec | None:
        """Delete a subscription (and its delivery log)."""
        request = notify_pb.DeleteSubscriptionRequest(id=subscription_id)
        try:
            await self._call_signed_in(rpc("notify", "DeleteSubscription", request))
        except MeshError as error:
            async with self:
                self.error = service_error_text("notify", error)
            return None
        return NotificationsState.load

    @rx.event(background=True)
    @redirect_when_signed_out
    @requires_role(ROLE_ANALYST)
    async def set_enabled(self, subscription_id: str, enabled: bool) -> EventSpec | None:
        """Enable a subscription again (after its recipient unsubscribed), or disable it."""
        update = subscription_pb2.Subscription(id=subscription_id, disabled=not enabled)
        request = notify_pb.UpdateSubscriptionRequest(
            subscription=update, update_mask=field_mask_pb2.FieldMask(paths=["disabled"])
        )
        try:
            response = await self._call_signed_in(rpc("notify", "UpdateSubscription", request))
        except MeshError as error:
            async with self:
                self.error = service_error_text("notify", error)
            return None
        async with self:
            subscription = response.subscription
            self.notice = (
                f"{subscription.email} is mailed again"
                if not subscription.disabled
                else f"{subscription.email} gets no more e-mail from this subscription"
            )
        return NotificationsState.load

    @rx.event(background=True)
    @redirect_when_signed_out
    @requires_role(ROLE_ANALYST)
    async def send_test(self, subscription_id: str) -> EventSpec | None:
        """Send a test e-mail to a subscription now."""
        request = notify_pb.SendTestEmailRequest(id=subscription_id)
        try:
            response = await self._call_signed_in(rpc("notify", "SendTestEmail", request))
        except MeshError as error:
            async with self:
                self.error = service_error_text("notify", error)
            return None
        async with self:
            delivery = response.delivery
            self.notice = f"Test e-mail to {delivery.email}: {delivery_row(delivery).status}"
        return NotificationsState.load


def _subscription_errors(error: MeshError, email: str) -> list[str]:
    lines = create_dataset_errors(error, email)
    if lines and lines[0].startswith("A dataset named"):
        return [f"{email} is subscribed already — edit its subscription instead"]
    return [line.replace("analytics service", "notify service") for line in lines]


def _form() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading(
                    rx.cond(NotificationsState.editing_id != "", "Edit subscription", "New subscription"), size="3"
                ),
                rx.hstack(
                    rx.input(
                        name="email",
                        type="email",
                        default_value=NotificationsState.form_email,
                        placeholder="E-mail address",
                        aria_label="E-mail",
                        flex="2",
                        min_width="14rem",
                        data_testid="subscription-email",
                    ),
                    rx.input(
                        name="display_name",
                        default_value=NotificationsState.form_display_name,
                        placeholder="Name (optional)",
                        aria_label="Name",
                        flex="1",
                        min_width="10rem",
                        data_testid="subscription-name",
                    ),
                    rx.select.root(
                        rx.select.trigger(min_width="12rem", data_testid="subscription-dataset"),
                        rx.select.content(
                            rx.select.item("Every dataset", value=ALL_DATASETS),
                            rx.foreach(NotificationsState.dataset_options, lambda o: rx.select.item(o[1], value=o[0])),
                        ),
                        name="dataset_id",
                        default_value=NotificationsState.form_dataset,
                    ),
                    spacing="2",
                    width="100%",
                    flex_wrap="wrap",
                ),
                rx.hstack(
                    rx.text("Mail me about:", size="2"),
                    rx.checkbox(
                        "results",
                        name="event_result_succeeded",
                        default_checked=NotificationsState.form_succeeded,
                        data_testid="event-succeeded",
                    ),
                    rx.checkbox(
                        "failures",
                        name="event_result_failed",
                        default_checked=NotificationsState.form_failed,
                        data_testid="event-failed",
                    ),
                    rx.checkbox(
                        "anomalies",
                        name="event_anomaly_detected",
                        default_checked=NotificationsState.form_anomaly,
                        data_testid="event-anomaly",
                    ),
                    rx.text("with at least", size="2"),
                    rx.input(
                        name="min_anomaly_count",
                        type="number",
                        default_value=NotificationsState.form_min_anomalies,
                        width="6rem",
                        aria_label="Minimum anomalies",
                        data_testid="subscription-min-anomalies",
                    ),
                    rx.text("anomalies", size="2"),
                    rx.spacer(),
                    rx.button(
                        rx.cond(NotificationsState.editing_id != "", "Save", "Subscribe"),
                        type="submit",
                        loading=NotificationsState.saving,
                        data_testid="subscription-submit",
                    ),
                    rx.cond(
                        NotificationsState.editing_id != "",
                        rx.button(
                            "Cancel",
                            type="button",
                            variant="soft",
                            color_scheme="gray",
                            on_click=NotificationsState.new,
                        ),
                    ),
                    align="center",
                    spacing="3",
                    width="100%",
                    flex_wrap="wrap",
                ),
                error_lines(NotificationsState.form_errors, "subscription-error"),
                spacing="3",
                width="100%",
            ),
            on_submit=NotificationsState.save,
            reset_on_submit=False,
            key=NotificationsState.form_key,
            width="100%",
            data_testid="subscription-form",
        ),
        width="100%",
    )


def _subscriptions_table() -> rx.Component:
    return rx.table.root(
        rx.table.header(
            rx.table.row(
                rx.table.column_header_cell("E-mail"),
                rx.table.column_header_cell("Name"),
                rx.table.column_header_cell("Datasets"),
                rx.table.column_header_cell("Events"),
                rx.table.column_header_cell("Min. anomalies", justify="end"),
                rx.table.column_header_cell("Created"),
                rx.table.column_header_cell("Mailing"),
                rx.table.column_header_cell(""),
            )
        ),
        rx.table.body(
            rx.foreach(
                NotificationsState.subscriptions,
                lambda row: rx.table.row(
                    rx.table.row_header_cell(row.email, data_testid="subscription-email-cell"),
                    rx.table.cell(row.display_name),
                    rx.table.cell(row.datasets),
                    rx.table.cell(row.events),
                    rx.table.cell(row.min_anomaly_count, justify="end"),
                    rx.table.cell(row.created, white_space="nowrap"),
                    rx.table.cell(
                        rx.vstack(
                            rx.switch(
                                checked=row.enabled,
                                disabled=~NotificationsState.can_edit,
                                on_change=lambda value: NotificationsState.set_enabled(row.id, value),  # type: ignore[misc, operator]
                                data_testid="subscription-toggle",
                            ),
                            rx.badge(
                                row.state,
                                color_scheme=rx.cond(row.enabled, "green", "gray"),
                                data_testid="subscription-state",
                            ),
                            align="start",
                            spacing="1",
                        )
                    ),
                    rx.table.cell(
                        row_actions(
                            NotificationsState.can_edit,
                            RowAction("Test e-mail", NotificationsState.send_test(row.id), "subscription-test"),  # type: ignore[misc, operator]
                            RowAction("Edit", NotificationsState.edit(row.id), "subscription-edit"),  # type: ignore[misc, operator]
                            RowAction(
                                "Delete",
                                NotificationsState.delete(row.id),  # type: ignore[misc, operator]
                                "subscription-delete",
                                destructive=True,
                            ),
                        )
                    ),
                    data_testid="subscription-row",
                ),
            )
        ),
        variant="surface",
        width="100%",
        data_testid="subscriptions-table",
    )


def _deliveries_table() -> rx.Component:
    return rx.table.root(
        rx.table.header(
            rx.table.row(
                rx.table.column_header_cell("When"),
                rx.table.column_header_cell("To"),
                rx.table.column_header_cell("Subject"),
                rx.table.column_header_cell("Event"),
                rx.table.column_header_cell("Status"),
                rx.table.column_header_cell("Attempts", justify="end"),
            )
        ),
        rx.table.body(
            rx.foreach(
                NotificationsState.deliveries,
                lambda row: rx.table.row(
                    rx.table.cell(row.created, white_space="nowrap"),
                    rx.table.cell(row.email),
                    rx.table.cell(
                        rx.cond(
                            row.result_id != "",
                            rx.link(row.subject, href="/results/" + row.result_id),
                            rx.text(row.subject),
                        )
                    ),
                    rx.table.cell(row.event),
                    rx.table.cell(
                        rx.vstack(
                            rx.badge(
                                row.status,
                                color_scheme=rx.match(
                                    row.status, ("sent", "green"), ("gave up", "red"), ("queued", "gray"), "orange"
                                ),
                            ),
                            rx.cond(row.error != "", rx.text(row.error, size="1", color_scheme="red")),
                            spacing="1",
                        )
                    ),
                    rx.table.cell(row.attempts, justify="end"),
                    data_testid="delivery-row",
                ),
            )
        ),
        variant="surface",
        width="100%",
        data_testid="deliveries-table",
    )


def notifications_page() -> rx.Component:
    """The Notifications page."""
    return page_layout(
        page_header(
            "Notifications",
            rx.button(
                rx.icon("refresh_cw", size=16),
                "Refresh",
                on_click=NotificationsState.load,
                loading=NotificationsState.loading,
                variant="soft",
                data_testid="refresh-notifications",
            ),
        ),
        service_banner(NotificationsState.error),
        rx.cond(
            NotificationsState.notice != "",
            rx.callout(
                NotificationsState.notice,
                icon="check",
                color_scheme="green",
                width="100%",
                data_testid="notifications-notice",
            ),
        ),
        rx.cond(NotificationsState.can_edit, _form()),
        rx.heading("Subscriptions", size="5"),
        rx.cond(
            NotificationsState.has_subscriptions,
            _subscriptions_table(),
            rx.cond(
                NotificationsState.loaded,
                empty_callout(
                    "No subscriptions yet — analysts subscribe an address with the form above.", "subscriptions-empty"
                ),
                loading_line("Loading subscriptions…", "subscriptions-loading"),
            ),
        ),
        rx.heading("Delivery log", size="5"),
        rx.cond(
            NotificationsState.has_deliveries,
            _deliveries_table(),
            rx.cond(
                NotificationsState.loaded,
                empty_callout(
                    "No e-mail sent yet: notify mails subscribers when an analysis completes.", "deliveries-empty"
                ),
            ),
        ),
    )
