"""Small pieces every page uses for its empty, loading and error states."""

import reflex as rx


def loading_line(text: str, test_id: str) -> rx.Component:
    """A spinner with ``text``, e.g. "Loading results…"."""
    return rx.hstack(rx.spinner(size="3"), rx.text(text, color_scheme="gray"), align="center", data_testid=test_id)


def empty_callout(text: str | rx.Var[str], test_id: str) -> rx.Component:
    """A grey note saying there is nothing to show yet, and how to change that."""
    return rx.callout(text, icon="info", color_scheme="gray", width="100%", data_testid=test_id)


def error_lines(lines: rx.Var[list[str]], test_id: str) -> rx.Component:
    """A red callout listing what went wrong with a form's last submission, shown while there is any."""
    return rx.cond(
        lines.length() > 0,  # type: ignore[attr-defined]
        rx.callout.root(
            rx.callout.icon(rx.icon("triangle_alert")),
            rx.vstack(rx.foreach(lines, lambda line: rx.callout.text(line)), spacing="1"),
            color_scheme="red",
            role="alert",
            width="100%",
            data_testid=test_id,
        ),
    )


def page_header(title: str, *actions: rx.Component) -> rx.Component:
    """The page's title with its buttons on the right."""
    return rx.hstack(rx.heading(title, size="7"), rx.spacer(), *actions, align="center", width="100%")


def stat_card(label: str, value: rx.Var[str] | str, test_id: str, href: str = "") -> rx.Component:
    """A big number with its label, linking to its page."""
    body = rx.card(
        rx.vstack(
            rx.text(label, size="2", color_scheme="gray"),
            rx.heading(value, size="7", data_testid=test_id),
            spacing="1",
        ),
        min_width="10rem",
        flex="1",
    )
    return rx.link(body, href=href, underline="none", flex="1") if href else body


def choice(
    items: list[str], name: str, default: rx.Var[str] | str, test_id: str, **trigger_props: object
) -> rx.Component:
    """A select of ``items`` submitted with its form as ``name``; ``test_id``
    is on the button that opens it (the Radix root renders no element)."""
    return rx.select.root(
        rx.select.trigger(data_testid=test_id, **trigger_props),
        rx.select.content(*(rx.select.item(item, value=item) for item in items)),
        name=name,
        default_value=default,
    )
