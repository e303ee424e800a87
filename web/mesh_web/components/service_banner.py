"""The banner a page shows when a service it needs is down or failed."""

import reflex as rx


def service_banner(message: rx.Var[str]) -> rx.Component:
    """A red alert with ``message`` (e.g. "analytics service unavailable: ..."),
    rendered only while the message is not empty."""
    return rx.cond(
        message != "",
        rx.callout(
            message,
            icon="triangle_alert",
            color_scheme="red",
            role="alert",
            width="100%",
            data_testid="service-error",
        ),
    )
