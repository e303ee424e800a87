"""The login page: a username and password form that starts a session."""

from typing import Any

import reflex as rx
from reflex.event import EventSpec

from mesh.auth.v1 import auth_service_pb2
from mesh_runtime.errors import MeshError
from mesh_web import service_clients
from mesh_web.auth_state import HOME_ROUTE, LOGIN_ROUTE, AuthState
from mesh_web.components.service_banner import service_banner
from mesh_web.display import MISSING_CREDENTIALS_TEXT, login_problem
from mesh_web.session_cookie import COOKIE_PATH

ROUTE = LOGIN_ROUTE
HTTP_NO_CONTENT = 204
COOKIE_REFUSED_TEXT = "Signed in, but the browser did not keep the session cookie: allow cookies for this site"


class LoginState(AuthState):
    """The login form's feedback and the state of its Login call.

    The password is read from the submitted form and passed on to Login; it
    is never kept in the state.
    """

    error: str = ""
    banner: str = ""
    submitting: bool = False

    @rx.event
    def clear_feedback(self) -> None:
        """Start the page without the messages of an earlier visit."""
        self.error = ""
        self.banner = ""

    @rx.event(background=True)
    async def log_in(self, form_data: dict[str, Any]) -> EventSpec | None:
        """Sign in with the submitted username and password, then go to the datasets."""
        username = str(form_data.get("username", "")).strip()
        password = str(form_data.get("password", ""))
        async with self:
            if self.submitting:
                return None
            if not username or not password:
                self.error, self.banner = MISSING_CREDENTIALS_TEXT, ""
                return None
            self.submitting, self.error, self.banner = True, "", ""
            # The analytics service throttles sign-ins per client address: name
            # the browser's, or every web user would share the web app's.
            client = self.router.session.client_ip
        request = auth_service_pb2.LoginRequest(username=username, password=password)
        try:
            response = await service_clients.call(
                "auth", "Login", request, (("x-forwarded-for", client),) if client else ()
            )
        except MeshError as error:
            problem = login_problem(error)
            async with self:
                self.submitting, self.error, self.banner = False, problem.form_error, problem.banner
            return None
        async with self:
            self._start_session(response.session)
            self._cookie_refresh_token = response.session.refresh_token
            fetch = self._browser_fetch(f"{COOKIE_PATH}/cookie")
        # The refresh token goes into its cookie through a backend route, never through this websocket.
        return rx.call_script(fetch, callback=LoginState.kept_session)

    @rx.event
    async def kept_session(self, status: int) -> EventSpec | None:
        """After /auth/cookie: go to the dashboard once the browser keeps the session's cookie."""
        self.submitting = False
        if status == HTTP_NO_CONTENT:
            return rx.redirect(HOME_ROUTE)
        await self._end_session()
        self.banner = COOKIE_REFUSED_TEXT
        return None


def _field(label: str, control: rx.Component) -> rx.Component:
    return rx.vstack(rx.text(label, size="2", weight="medium"), control, spacing="1", width="100%")


def login_page() -> rx.Component:
    """The login page."""
    return rx.center(
        rx.card(
            rx.vstack(
                rx.heading("Analytics Mesh", size="6", weight="bold"),
                rx.text("Sign in to continue", color_scheme="gray", size="2"),
                service_banner(LoginState.banner),
                rx.form(
                    rx.vstack(
                        _field(
                            "Username",
                            rx.input(
                                name="username",
                                auto_complete="username",
                                auto_focus=True,
                                width="100%",
                                data_testid="login-username",
                            ),
                        ),
                        _field(
                            "Password",
                            rx.input(
                                name="password",
                                type="password",
                                auto_complete="current-password",
                                width="100%",
                                data_testid="login-password",
                            ),
                        ),
                        rx.cond(
                            LoginState.error != "",
                            rx.text(
                                LoginState.error, color_scheme="red", size="2", role="alert", data_testid="login-error"
                            ),
                        ),
                        rx.button(
                            "Sign in",
                            type="submit",
                            loading=LoginState.submitting,
                            width="100%",
                            data_testid="login-submit",
                        ),
                        spacing="4",
                        width="100%",
                    ),
                    on_submit=LoginState.log_in,
                    reset_on_submit=False,
                    width="100%",
                    data_testid="login-form",
                ),
                spacing="4",
                width="100%",
            ),
            size="3",
            width="100%",
            max_width="24rem",
        ),
        min_height="100vh",
        padding="1rem",
    )
