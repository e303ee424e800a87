"""The web session in a real browser against the real mesh: where the refresh
token lives (an HttpOnly, SameSite=Strict cookie only the session routes get),
what never travels over the event websocket or lands in a log, and two tabs
of one browser staying signed in, and two web replicas behind one origin
sharing the session."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, WebSocket, expect

from tests.conftest import RunningStack, WebReplicas
from tests.web.browser import WAIT_MS, EventSender, fresh_page, launched_chromium, navigate, sign_in

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
if str(WEB_DIR) not in sys.path:
    sys.path.insert(0, str(WEB_DIR))

from mesh_web.pages.mailbox import MailboxState  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

REFRESH_COOKIE = "mesh_refresh_token"
JWT = re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]+")
"""A signed token (an access token) anywhere in a text."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


def _refresh_cookie(page: Page) -> dict[str, object]:
    cookies = [c for c in page.context.cookies() if c["name"] == REFRESH_COOKIE]
    assert len(cookies) == 1, cookies
    return dict(cookies[0])


class _Frames:
    """Every frame of the page's websockets, both ways."""

    def __init__(self, page: Page) -> None:
        self.texts: list[str] = []
        page.on("websocket", self._watch)

    def _watch(self, socket: WebSocket) -> None:
        socket.on("framesent", self._keep)
        socket.on("framereceived", self._keep)

    def _keep(self, payload: str | bytes) -> None:
        self.texts.append(payload if isinstance(payload, str) else payload.decode("utf-8", "replace"))


def test_the_refresh_token_is_an_http_only_strict_cookie_for_the_session_routes_only(
    mesh: RunningStack, web: str, browser: Browser
) -> None:
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["viewer"])
        cookie = _refresh_cookie(page)
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert cookie["path"] == "/auth"
        assert cookie["secure"] is False  # served over plain http here; Secure behind TLS
        assert cookie["value"]
        # Page JavaScript cannot read it.
        assert REFRESH_COOKIE not in page.evaluate("document.cookie")


def test_no_token_travels_over_the_event_websocket(mesh: RunningStack, web: str, browser: Browser) -> None:
    with fresh_page(browser) as page:
        frames = _Frames(page)
        sign_in(page, web, mesh.credentials["analyst"])
        navigate(page, "dashboard")
        page.reload()
        expect(page.get_by_test_id("nav-user")).to_contain_text("analyst", timeout=WAIT_MS)
        tab = page.context.new_page()
        tab_frames = _Frames(tab)
        tab.goto(f"{web}/datasets")
        expect(tab.get_by_test_id("nav-user")).to_contain_text("analyst", timeout=WAIT_MS)
        refresh_token = str(_refresh_cookie(page)["value"])
        page.get_by_test_id("logout").click()
        page.wait_for_url(re.compile(r"/login/?$"), timeout=WAIT_MS)

    sent = frames.texts + tab_frames.texts
    assert len(sent) > 10, "the websockets were not watched"
    assert not [text for text in sent if refresh_token in text]
    assert not [text for text in sent if JWT.search(text)]
    assert not [text for text in sent if REFRESH_COOKIE in text]


def _all_logs(mesh: RunningStack) -> dict[Path, str]:
    return {path: path.read_text(errors="replace") for path in sorted(mesh.logs().glob("*.log"))}


def test_no_log_line_holds_a_token_even_when_an_event_fails(mesh: RunningStack, web: str, browser: Browser) -> None:
    with fresh_page(browser) as page:
        events = EventSender(page)
        sign_in(page, web, mesh.credentials["viewer"], then="mailbox")
        refresh_token = str(_refresh_cookie(page)["value"])
        # A failing event: a handler called with an argument it does not take.
        events.send(MailboxState, "open_message", message_id=["not", "a", "string"], surplus="x")
        events.send(MailboxState, "no_such_handler")
        navigate(page, "datasets")
        page.reload()
        expect(page.get_by_test_id("nav-user")).to_contain_text("viewer", timeout=WAIT_MS)
        page.get_by_test_id("logout").click()
        page.wait_for_url(re.compile(r"/login/?$"), timeout=WAIT_MS)

    issued = [refresh_token, *mesh.tokens.values()]
    for path, text in _all_logs(mesh).items():
        for token in issued:
            assert token not in text, f"{path.name} holds a token"
        assert not JWT.search(text), f"{path.name} holds a signed token"
        assert not re.search(r"(?i)\bcookie['\"]?\s*[:=]", text), f"{path.name} logs a cookie header"
        assert "sec-websocket-key" not in text.lower(), f"{path.name} logs request headers"
        assert not re.search(r"(?i)\bauthorization['\"]?\s*[:=]\s*['\"]?bearer", text), f"{path.name} logs a bearer"


def test_two_tabs_of_one_browser_stay_signed_in(mesh: RunningStack, web: str, browser: Browser) -> None:
    with fresh_page(browser) as first:
        sign_in(first, web, mesh.credentials["viewer"])
        second = first.context.new_page()
        # Both tabs start without an access token: each renews the session
        # through the cookie, which rotates the refresh token each time.
        second.goto(f"{web}/results")
        first.reload()
        for tab in (first, second):
            expect(tab.get_by_test_id("nav-user")).to_contain_text("viewer", timeout=WAIT_MS)
        for tab in (second, first):
            tab.reload()
            expect(tab.get_by_test_id("nav-user")).to_contain_text("viewer", timeout=WAIT_MS)
        third = first.context.new_page()
        third.goto(f"{web}/datasets")
        expect(third.get_by_test_id("nav-user")).to_contain_text("viewer", timeout=WAIT_MS)


def test_two_web_replicas_behind_one_origin_share_the_session(
    mesh: RunningStack, web: str, web_replicas: WebReplicas, browser: Browser
) -> None:
    before = list(web_replicas.proxy.connections)
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["analyst"])
        navigate(page, "dashboard")
        # The pages, the event websocket and the session routes were served by both replicas.
        assert all(now > then for now, then in zip(web_replicas.proxy.connections, before, strict=True))

        first = next(p for p in mesh.stack.processes if p.spec.name == web_replicas.names[0] and not p.exited())
        mesh.runner.run(first.stop(), timeout=60)
        try:
            # Only the other replica is left: the tab's state and the cookie's session carry over.
            page.reload()
            expect(page.get_by_test_id("nav-user")).to_contain_text("analyst", timeout=WAIT_MS)
            navigate(page, "datasets")
            expect(page.get_by_test_id("new-dataset-form")).to_be_visible(timeout=WAIT_MS)
            tab = page.context.new_page()
            tab.goto(f"{web}/results")
            expect(tab.get_by_test_id("nav-user")).to_contain_text("analyst", timeout=WAIT_MS)
        finally:
            mesh.runner.run(
                mesh.stack.start_web(port=web_replicas.ports[0], name=web_replicas.names[0]), timeout=900
            )
