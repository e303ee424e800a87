"""Driving the web app in a real browser: launching Debian's Chromium with
Playwright, signing in through the login page, and saving screenshots."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, WebSocketRoute, expect, sync_playwright

from local_stack.paths import ROOT

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1280, "height": 800}
WAIT_MS = 30_000
"""How long to wait for the page to show something (the first load builds the state)."""

DATASETS_URL = re.compile(r"/datasets/?$")
DASHBOARD_URL = re.compile(r"^https?://[^/]+/?$")
LOGIN_URL = re.compile(r"/login/?$")
PAGE_URLS = {
    "dashboard": DASHBOARD_URL,
    "datasets": DATASETS_URL,
    "results": re.compile(r"/results/?$"),
    "notifications": re.compile(r"/notifications/?$"),
    "mailbox": re.compile(r"/mailbox/?$"),
}
"""The pages of the navigation bar and their URLs."""


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("Chromium is needed for the browser tests: `apt-get install chromium` (Debian) and rerun")


@contextmanager
def launched_chromium() -> Iterator[Browser]:
    """Headless Chromium, closed on exit."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def fresh_page(browser: Browser) -> Iterator[Page]:
    """A page in a context of its own: no cookies, nobody signed in."""
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def submit_login(page: Page, web: str, username: str, password: str) -> None:
    """Fill in and submit the login form."""
    page.goto(f"{web}/login")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()


def sign_in(page: Page, web: str, credentials: tuple[str, str], then: str = "datasets") -> None:
    """Sign in through the login page, which leads to the dashboard, wait until
    it shows who is signed in, then go to the page ``then`` names through the
    navigation bar (no reload)."""
    username, password = credentials
    submit_login(page, web, username, password)
    page.wait_for_url(DASHBOARD_URL, timeout=WAIT_MS)
    expect(page.get_by_test_id("nav-user")).to_contain_text(username, timeout=WAIT_MS)
    navigate(page, then)


def navigate(page: Page, name: str) -> None:
    """Go to a page of the navigation bar by clicking its link."""
    if not PAGE_URLS[name].search(page.url):
        page.get_by_test_id(f"nav-{name}").click()
        # A client-side navigation: the URL changes, no document loads.
        page.wait_for_url(PAGE_URLS[name], timeout=WAIT_MS, wait_until="commit")
    expect(page.get_by_role("heading", level=1).filter(has_text=name.capitalize())).to_be_visible(timeout=WAIT_MS)


def mark_document(page: Page) -> None:
    """Mark the loaded document, so ``assert_not_reloaded`` can tell a reload."""
    page.evaluate("window.__meshNoReload = true")


def assert_not_reloaded(page: Page) -> None:
    """The document marked by ``mark_document`` is still the one shown."""
    assert page.evaluate("window.__meshNoReload === true"), "the page was reloaded"


class EventSender:
    """Sends Reflex events of the user's choosing over a page's own websocket
    (as a user could from the browser's console): the server sees them as the
    signed-in tab's, whatever the page shows. Install before the page loads."""

    EVENT_SOCKET = re.compile(r"/_event")
    EVENT_FRAME = '42/_event,'
    """A socket.io event on Reflex's namespace; the JSON array follows."""

    def __init__(self, page: Page) -> None:
        self._server: WebSocketRoute | None = None
        self.router_data: dict[str, object] = {}
        page.route_web_socket(self.EVENT_SOCKET, self._connect)

    def _connect(self, page_side: WebSocketRoute) -> None:
        server = page_side.connect_to_server()
        self._server = server

        def from_page(message: str | bytes) -> None:
            # Keep the router data of the page's own events, to send ours with it.
            if isinstance(message, str) and message.startswith(self.EVENT_FRAME):
                event = json.loads(message.removeprefix(self.EVENT_FRAME))[1]
                self.router_data = event.get("router_data") or self.router_data
            server.send(message)

        page_side.on_message(from_page)
        server.on_message(page_side.send)

    def send(self, state: type, handler: str, **payload: object) -> None:
        """Send the event ``handler`` of ``state`` (a Reflex State class) with ``payload``."""
        assert self._server is not None, "the page has no event websocket yet"
        name = f"{state.get_full_name()}.{handler}"  # type: ignore[attr-defined]
        event = {"name": name, "payload": payload, "router_data": self.router_data}
        self._server.send(self.EVENT_FRAME + json.dumps(["event", event]))
