"""The signed-in session every page's state builds on: who is signed in, the
tokens that prove it, and the one way a page calls a service as that user.

Where each piece lives:

- the access token (a JWT living ~15 minutes) and when to renew it: backend
  vars (``_``-prefixed), kept on the server (in the shared state store) and
  never sent to the browser;
- the refresh token: an ``HttpOnly`` ``SameSite=Strict`` cookie that only the
  session routes set and read (session_cookie.py), never page JavaScript nor
  the event websocket; a reload or a new tab resumes the session through
  them;
- the user's name and role: ordinary vars, shown in the navigation bar.

A page's State subclasses ``AuthState`` and makes every call through
``_call_signed_in``, which renews the access token shortly before it expires,
or once when a call is refused with UNAUTHENTICATED, and raises ``SignedOut``
when there is no session left to renew. Its event handlers are decorated with
``@redirect_when_signed_out``, which turns SignedOut into going to ``/login``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import reflex as rx
from reflex.event import Event, EventSpec
from reflex.istate.manager.token import BaseStateToken
from reflex_base.event.context import EventContext

from mesh.auth.v1 import auth_service_pb2
from mesh_runtime.errors import DeadlineExceeded, MeshError, Unauthenticated, Unavailable
from mesh_web.service_clients import CallMetadata, bearer_metadata
from mesh_web.session import (
    call_all_with_renewal,
    call_with_renewal,
    can_edit_datasets,
    needs_renewal,
    renewal_time,
    role_name,
)
from mesh_web.session_cookie import COOKIE_PATH, SIGNED_OUT, TAB_HEADER

LOGIN_ROUTE = "/login"
HOME_ROUTE = "/"
"""Where signing in leads: the dashboard."""

T = TypeVar("T")

_logger = logging.getLogger(__name__)

RENEWAL_WAIT_SECONDS = 10.0
"""How long an event waits for the browser to renew the session through /auth/refresh."""
RENEWAL_POLL_SECONDS = 0.05
"""How often a waiting event looks whether the renewed access token has arrived."""


def last_path_segment(path: str) -> str:
    """The id in a page's URL path: '/results/ID' -> 'ID' (a trailing slash ignored)."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def _with_bearer(call: Callable[[CallMetadata], Awaitable[T]]) -> Callable[[str], Awaitable[T]]:
    """``call`` taking an access token instead of the metadata that carries it."""
    return lambda token: call(bearer_metadata(token))


class SignedOut(Exception):
    """There is no session to call a service with: the user must sign in."""


P = ParamSpec("P")
R = TypeVar("R")


def redirect_when_signed_out(
    handler: Callable[P, Awaitable[R]],
) -> Callable[P, Coroutine[Any, Any, R | EventSpec]]:
    """The event handler ``handler``, going to the login page when it raises
    SignedOut (the session is over). Put it under ``@rx.event``."""

    @functools.wraps(handler)
    async def handle(*args: P.args, **kwargs: P.kwargs) -> R | EventSpec:
        try:
            return await handler(*args, **kwargs)
        except SignedOut:
            return rx.redirect(LOGIN_ROUTE)

    return handle


ROLE_REFUSED_TEXT = "Your role may not do this: analysts and admins may"
"""What a user sees when the server refuses an event their role may not send
(the page hides its controls, so only a forged event gets this)."""

MIN_ROLE_ATTRIBUTE = "__mesh_min_role__"
"""Where requires_role notes the role an event handler needs (tests list them)."""


def requires_role(
    min_role: int,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Coroutine[Any, Any, R | EventSpec | None]]]:
    """An event handler that changes something, run only for a signed-in user
    with at least ``min_role``: the server checks, whatever the page shows or
    hides. Put it under ``@redirect_when_signed_out``."""

    def decorate(handler: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R | EventSpec | None]]:
        @functools.wraps(handler)
        async def handle(*args: P.args, **kwargs: P.kwargs) -> R | EventSpec | None:
            state = args[0]
            assert isinstance(state, AuthState)
            if not state.user_name:
                raise SignedOut
            if state.role < min_role:
                _logger.warning(
                    "refused %s for %s (role %s)", handler.__qualname__, state.user_name, role_name(state.role)
                )
                return rx.toast.error(ROLE_REFUSED_TEXT, id="role-refused")
            return await handler(*args, **kwargs)

        setattr(handle, MIN_ROLE_ATTRIBUTE, min_role)
        return handle

    return decorate


class AuthState(rx.State):
    """Who is signed in in this browser tab, and the access token that proves it."""

    user_name: str = ""
    role: int = 0

    _access_token: str = ""
    _renew_at: float = 0.0
    # The refresh token Login gave this tab, until /auth/cookie puts it in the cookie.
    _cookie_refresh_token: str = ""
    # When this tab asked its browser to renew the session through /auth/refresh
    # (0: no renewal pending), and what came of the last renewal ('' when it worked).
    _renewal_asked_at: float = 0.0
    _renewal_outcome: str = ""

    @rx.var
    def signed_in(self) -> bool:
        """Whether a user is signed in."""
        return bool(self.user_name)

    @rx.var
    def role_label(self) -> str:
        """The signed-in user's role: viewer, analyst or admin."""
        return role_name(self.role)

    @rx.var
    def can_edit(self) -> bool:
        """Whether the signed-in user may create and change things (analysts and admins)."""
        return can_edit_datasets(self.role)

    def _start_session(self, session: auth_service_pb2.Session) -> None:
        """Keep the access token and the user of a session from Login or
        Refresh (its refresh token goes to the cookie, not here). Call inside
        ``async with self``, or on a state from ``modify_tab_state``."""
        received_at = time.time()
        expires_at = session.access_token_expire_time.ToNanoseconds() / 1e9
        self._access_token = session.access_token
        self._renew_at = renewal_time(received_at, expires_at)
        self.user_name = session.principal.name
        self.role = session.principal.role

    async def _end_session(self) -> None:
        """Forget the session and what the pages showed with it. Call inside ``async with self``."""
        auth = await self.get_state(AuthState)
        auth.reset()

    def _browser_fetch(self, route: str) -> str:
        """JavaScript that POSTs to one of the session routes for this tab and gives the answer's status."""
        tab = self.router.session.client_token
        return f"fetch('{route}', {{method: 'POST', headers: {{'{TAB_HEADER}': '{tab}'}}}}).then(r => r.status)"

    async def _access_token_for_call(self, rejected: str = "") -> str:
        """The access token to call with, renewed first when it is missing, due,
        or is ``rejected`` (the token a call was just refused with).

        A renewal is the browser's: only it holds the refresh token's cookie.
        The tab asks its page to POST /auth/refresh, which renews the session
        and hands this state the new access token, and waits for it (other
        events renewing at the same time wait for the same answer). SignedOut
        when there is no session left; Unavailable and the like when analytics
        cannot answer (the session is kept); DeadlineExceeded when the page
        does not answer."""
        deadline = time.monotonic() + RENEWAL_WAIT_SECONDS
        while True:
            ask = False
            async with self:
                if not needs_renewal(self._access_token, self._renew_at, time.time(), rejected):
                    return self._access_token
                outcome = self._renewal_outcome
                if not self._renewal_asked_at and outcome == SIGNED_OUT:
                    await self._end_session()
                    raise SignedOut
                if not self._renewal_asked_at and outcome:
                    self._renewal_outcome = ""
                    raise Unavailable(f"could not renew the session: {outcome}")
                if time.time() - self._renewal_asked_at > RENEWAL_WAIT_SECONDS:
                    self._renewal_asked_at, self._renewal_outcome, ask = time.time(), "", True
                fetch = self._browser_fetch(f"{COOKIE_PATH}/refresh")
            if ask:
                await EventContext.get().emit_event(*Event.from_event_type(rx.call_script(fetch)))
            if time.monotonic() >= deadline:
                raise DeadlineExceeded(f"the browser did not renew the session within {RENEWAL_WAIT_SECONDS:g} s")
            await asyncio.sleep(RENEWAL_POLL_SECONDS)

    async def _call_signed_in(self, call: Callable[[CallMetadata], Awaitable[T]]) -> T:
        """The result of ``call(metadata)``, made with the session's bearer token
        (renewed when due, and once more if the call is refused with
        UNAUTHENTICATED). Raises SignedOut when the user must sign in again,
        and the call's MeshError otherwise. Call outside ``async with self``."""
        try:
            return await call_with_renewal(
                lambda rejected: self._access_token_for_call(rejected=rejected),
                lambda token: call(bearer_metadata(token)),
            )
        except Unauthenticated:
            async with self:
                await self._end_session()
            raise SignedOut from None

    async def _call_all_signed_in(self, *calls: Callable[[CallMetadata], Awaitable[Any]]) -> list[Any | MeshError]:
        """The results of ``calls``, made at the same time with one bearer
        token (session.call_all_with_renewal); each is its value or its
        MeshError. Raises SignedOut when the user must sign in again. Call
        outside ``async with self``.

        One token for all, fetched before the calls start: concurrent
        ``async with self`` blocks in one background task would share one
        state proxy and could leave a page loading for ever."""
        try:
            return await call_all_with_renewal(
                lambda rejected: self._access_token_for_call(rejected=rejected),
                [_with_bearer(call) for call in calls],
            )
        except Unauthenticated:
            async with self:
                await self._end_session()
            raise SignedOut from None

    async def _stream_signed_in(
        self, open_stream: Callable[[CallMetadata], AsyncGenerator[T, None]]
    ) -> AsyncGenerator[T, None]:
        """The items of the stream ``open_stream(metadata)`` opens with the
        session's bearer token, opened once more with a renewed token when it
        is refused with UNAUTHENTICATED before its first item. Raises SignedOut
        when the user must sign in again. Iterate outside ``async with self``."""
        token = await self._access_token_for_call()
        received = False
        try:
            async with contextlib.aclosing(open_stream(bearer_metadata(token))) as stream:
                async for item in stream:
                    received = True
                    yield item
            return
        except Unauthenticated:
            if received:
                raise
        try:
            token = await self._access_token_for_call(rejected=token)
            async with contextlib.aclosing(open_stream(bearer_metadata(token))) as stream:
                async for item in stream:
                    yield item
        except Unauthenticated:
            async with self:
                await self._end_session()
            raise SignedOut from None

    @rx.event
    def log_out(self) -> EventSpec:
        """End the session: the browser's POST /auth/logout ends it at analytics
        and deletes the cookie; then forget it here and go to the login page."""
        return rx.call_script(self._browser_fetch(f"{COOKIE_PATH}/logout"), callback=AuthState.signed_out)

    @rx.event
    async def signed_out(self, _status: int) -> EventSpec:
        """After /auth/logout: forget the session and what the pages showed with it."""
        await self._end_session()
        return rx.redirect(LOGIN_ROUTE)


@contextlib.asynccontextmanager
async def modify_tab_state(tab: str) -> AsyncIterator[AuthState]:
    """The AuthState of the browser tab ``tab`` (its Reflex client token), to
    read and change from outside an event (the session routes), on whichever
    replica; the page gets the changes as after an event."""
    from mesh_web.mesh_web import app  # the app module; loaded long before a route runs

    async with app.modify_state(BaseStateToken(ident=tab, cls=AuthState)) as state:
        auth = await state.get_state(AuthState)
        assert isinstance(auth, AuthState)
        yield auth
