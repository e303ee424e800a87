"""The frame every page sits in: the navigation bar and the page's content."""

import reflex as rx

from mesh_web.auth_state import AuthState

NAV_LINKS: tuple[tuple[str, str], ...] = (
    ("Dashboard", "/"),
    ("Datasets", "/datasets"),
    ("Results", "/results"),
    ("Notifications", "/notifications"),
    ("Mailbox", "/mailbox"),
)
"""(label, route) of each page in the navigation bar."""


def _signed_in_user() -> rx.Component:
    """Who is signed in, with which role, and the Logout button."""
    return rx.cond(
        AuthState.signed_in,
        rx.hstack(
            rx.hstack(
                rx.icon("circle_user", size=18),
                rx.text(AuthState.user_name, weight="medium"),
                rx.badge(AuthState.role_label, variant="soft"),
                align="center",
                spacing="2",
                data_testid="nav-user",
            ),
            rx.button("Logout", on_click=AuthState.log_out, variant="outline", size="2", data_testid="logout"),
            align="center",
            spacing="4",
        ),
    )


def _nav_bar() -> rx.Component:
    return rx.hstack(
        rx.link(
            rx.heading("Analytics Mesh", size="5", weight="bold"),
            href="/",
            underline="none",
            color_scheme="gray",
            high_contrast=True,
        ),
        rx.hstack(
            *(
                rx.link(label, href=route, size="3", weight="medium", data_testid=f"nav-{label.lower()}")
                for label, route in NAV_LINKS
            ),
            spacing="5",
        ),
        rx.spacer(),
        _signed_in_user(),
        rx.color_mode.button(size="2", variant="ghost"),
        align="center",
        spacing="6",
        padding="0.75rem 1.5rem",
        border_bottom="1px solid var(--gray-a5)",
        width="100%",
        data_testid="nav",
    )


def page_layout(*children: rx.Component) -> rx.Component:
    """A page: the navigation bar above ``children``."""
    return rx.box(
        _nav_bar(),
        rx.container(
            rx.vstack(*children, spacing="4", width="100%"),
            size="4",
            padding_y="6",
        ),
        min_height="100vh",
    )
