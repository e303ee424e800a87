"""The refresh token's cookie, set and read only by these backend routes.

The browser keeps the session's refresh token in an ``HttpOnly``
``SameSite=Strict`` cookie on ``/auth`` (``Secure`` when the app is served
over TLS): page JavaScript cannot read it, it never travels in the event
websocket, and only these routes receive it. A tab's state (AuthState) asks
its browser to call them with ``fetch`` and the tab's id (its Reflex client
token) in ``X-Mesh-Tab``; each route reads or writes that tab's state through
Reflex's state manager, which is shared by every replica (Redis/Valkey), so
any replica may answer:

- ``POST /auth/cookie``: after Login (an event), put the refresh token Login
  gave the tab into the cookie;
- ``POST /auth/refresh``: trade the cookie's refresh token for a new session
  (AuthService.Refresh), keep the new refresh token in the cookie and give
  the tab the access token;
- ``POST /auth/logout``: end the session at analytics (AuthService.Logout)
  and delete the cookie.

Each refuses another origin than the app's (403) and a tab that did not ask
(409). Answers carry ``Cache-Control: no-store`` (http_security.py).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mesh.auth.v1 import auth_service_pb2
from mesh_runtime.errors import InvalidArgument, MeshError, PermissionDenied, Unauthenticated
from mesh_web import service_clients
from mesh_web.http_security import web_origin
from mesh_web.session import REFRESH_COOKIE, REFRESH_COOKIE_MAX_AGE_SECONDS

COOKIE_PATH = "/auth"
TAB_HEADER = "X-Mesh-Tab"
"""The request header naming the tab (its Reflex client token) a route acts for."""

SIGNED_OUT = "signed out"
"""The outcome of a renewal when there is no session left to renew."""

# Refresh answers these when the refresh token is spent, revoked, expired or
# malformed, or the user was disabled: the session is over, not the service.
SESSION_OVER = (Unauthenticated, InvalidArgument, PermissionDenied)

_logger = logging.getLogger(__name__)


def _secure(request: Request) -> bool:
    """Whether the browser reached the app over TLS (directly or through a proxy saying so)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https" or web_origin().startswith("https://")


def _with_cookie(response: Response, request: Request, refresh_token: str) -> Response:
    response.set_cookie(
        REFRESH_COOKIE,
        refresh_token,
        max_age=REFRESH_COOKIE_MAX_AGE_SECONDS,
        path=COOKIE_PATH,
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )
    return response


def _without_cookie(response: Response, request: Request) -> Response:
    response.delete_cookie(REFRESH_COOKIE, path=COOKIE_PATH, secure=_secure(request), httponly=True, samesite="strict")
    return response


def _tab(request: Request) -> str | None:
    """The tab the request acts for, when it comes from the app's own origin and names one."""
    if request.headers.get("origin", "").lower() != web_origin():
        return None
    try:
        return str(uuid.UUID(request.headers.get(TAB_HEADER, "")))
    except ValueError:
        return None


Route_ = Callable[[Request], Awaitable[Response]]


def _for_a_tab(route: Callable[[Request, str], Awaitable[Response]]) -> Route_:
    async def handle(request: Request) -> Response:
        tab = _tab(request)
        if tab is None:
            return Response("only the app's own pages may call this", status_code=403)
        return await route(request, tab)

    return handle


async def _store_cookie(request: Request, tab: str) -> Response:
    from mesh_web.auth_state import AuthState, modify_tab_state

    async with modify_tab_state(tab) as auth:
        assert isinstance(auth, AuthState)
        refresh_token, auth._cookie_refresh_token = auth._cookie_refresh_token, ""
    if not refresh_token:
        return Response("this tab has no new session to keep", status_code=409)
    return _with_cookie(Response(status_code=204), request, refresh_token)


async def _refresh(request: Request, tab: str) -> Response:
    from mesh_web.auth_state import AuthState, modify_tab_state

    async with modify_tab_state(tab) as auth:
        assert isinstance(auth, AuthState)
        asked = auth._renewal_asked_at > 0
    if not asked:
        return Response("this tab did not ask to renew its session", status_code=409)
    refresh_token = request.cookies.get(REFRESH_COOKIE, "")
    outcome, session = SIGNED_OUT, None
    if refresh_token:
        try:
            response = await service_clients.call(
                "auth", "Refresh", auth_service_pb2.RefreshRequest(refresh_token=refresh_token)
            )
            outcome, session = "", response.session
        except SESSION_OVER:
            outcome = SIGNED_OUT
        except MeshError as error:
            outcome = f"{type(error).__name__}: {error.message}"
    async with modify_tab_state(tab) as auth:
        assert isinstance(auth, AuthState)
        auth._renewal_asked_at, auth._renewal_outcome = 0.0, outcome
        if session is not None:
            auth._start_session(session)
    if session is not None:
        return _with_cookie(Response(status_code=204), request, session.refresh_token)
    if outcome == SIGNED_OUT:
        return _without_cookie(Response(status_code=401), request)
    return Response(status_code=503)


async def _logout(request: Request, tab: str) -> Response:
    from mesh_web.auth_state import AuthState, modify_tab_state

    refresh_token = request.cookies.get(REFRESH_COOKIE, "")
    async with modify_tab_state(tab) as auth:
        assert isinstance(auth, AuthState)
        access_token = auth._access_token if time.time() < auth._renew_at else ""
    try:
        if refresh_token and not access_token:
            # Logout needs a signed-in caller: renew the expired access token first.
            renewed = await service_clients.call(
                "auth", "Refresh", auth_service_pb2.RefreshRequest(refresh_token=refresh_token)
            )
            refresh_token, access_token = renewed.session.refresh_token, renewed.session.access_token
        if refresh_token:
            await service_clients.call(
                "auth",
                "Logout",
                auth_service_pb2.LogoutRequest(refresh_token=refresh_token),
                service_clients.bearer_metadata(access_token),
            )
    except MeshError as error:
        # Signed out here either way: a session analytics could not end expires on its own.
        _logger.warning("logout: analytics did not end the session: %s", type(error).__name__)
    return _without_cookie(Response(status_code=204), request)


def session_routes() -> Starlette:
    """The routes above, as an app Reflex mounts its own in (``api_transformer``)."""
    return Starlette(
        routes=[
            Route(f"{COOKIE_PATH}/cookie", _for_a_tab(_store_cookie), methods=["POST"]),
            Route(f"{COOKIE_PATH}/refresh", _for_a_tab(_refresh), methods=["POST"]),
            Route(f"{COOKIE_PATH}/logout", _for_a_tab(_logout), methods=["POST"]),
        ]
    )
