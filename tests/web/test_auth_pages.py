"""Signing in to the web app in a real browser, against the real mesh: the
login page, what each role sees on the datasets page, logging out, and a
session that survives a reload."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from playwright.sync_api import Browser, Page, expect

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from mesh.auth.v1 import auth_service_pb2 as auth_pb2
from mesh.auth.v1 import auth_service_pb2_grpc as auth_pb2_grpc
from tests.conftest import RunningStack
from tests.web.browser import (
    DATASETS_URL,
    LOGIN_URL,
    WAIT_MS,
    fresh_page,
    launched_chromium,
    screenshot,
    sign_in,
    submit_login,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

REFRESH_COOKIE = "mesh_refresh_token"
"""The browser cookie holding the session's refresh token (web/mesh_web/session.py)."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


def _create_dataset(mesh: RunningStack, name: str) -> None:
    with mesh.channel(mesh.analytics, "analyst") as channel:
        pb_grpc.AnalyticsServiceStub(channel).CreateDataset(
            pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name, description="made over gRPC")),
            timeout=10,
        )


def test_signed_out_visitors_land_on_login_and_a_wrong_password_is_refused(
    mesh: RunningStack, web: str, browser: Browser
) -> None:
    with fresh_page(browser) as page:
        page.goto(f"{web}/datasets")
        page.wait_for_url(LOGIN_URL, timeout=WAIT_MS)
        expect(page.get_by_test_id("login-form")).to_be_visible()

        username, _ = mesh.credentials["viewer"]
        submit_login(page, web, username, "not-the-password")
        expect(page.get_by_test_id("login-error")).to_have_text("Wrong username or password", timeout=WAIT_MS)
        assert LOGIN_URL.search(page.url)
        assert page.get_by_test_id("nav-user").count() == 0
        screenshot(page, "login")


def test_an_analyst_creates_a_dataset_with_the_form(mesh: RunningStack, web: str, browser: Browser) -> None:
    name = f"form-{uuid.uuid4().hex[:8]}"
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["analyst"])
        expect(page.get_by_test_id("nav-user")).to_contain_text("analyst")

        page.get_by_test_id("new-dataset-name").fill(name)
        page.get_by_test_id("new-dataset-description").fill("created in the browser")
        page.get_by_test_id("new-dataset-unit").fill("req/s")
        page.get_by_test_id("new-dataset-submit").click()
        row = page.get_by_test_id("dataset-row").filter(has_text=name)
        expect(row).to_be_visible(timeout=WAIT_MS)
        expect(row).to_contain_text("created in the browser")
        expect(row).to_contain_text("req/s")
        expect(page.get_by_test_id("new-dataset-name")).to_have_value("")

        page.get_by_test_id("new-dataset-name").fill("not a valid name!")
        page.get_by_test_id("new-dataset-submit").click()
        error = page.get_by_test_id("new-dataset-error")
        expect(error).to_contain_text("name:", timeout=WAIT_MS)
        # What was typed stays, to be corrected.
        expect(page.get_by_test_id("new-dataset-name")).to_have_value("not a valid name!")

        page.get_by_test_id("new-dataset-name").fill(name)
        page.get_by_test_id("new-dataset-submit").click()
        expect(error).to_contain_text(f"A dataset named '{name}' already exists", timeout=WAIT_MS)
        screenshot(page, "datasets-analyst")


def test_a_viewer_sees_the_datasets_but_no_form(mesh: RunningStack, web: str, browser: Browser) -> None:
    name = f"viewed-{uuid.uuid4().hex[:8]}"
    _create_dataset(mesh, name)
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["viewer"])
        expect(page.get_by_test_id("nav-user")).to_contain_text("viewer")
        # Other tests' datasets may push this one past the first page: the search finds it.
        page.get_by_test_id("dataset-search").fill(name)
        expect(page.get_by_test_id("dataset-row").filter(has_text=name)).to_be_visible(timeout=WAIT_MS)
        # The role is known (nav-user says so), so the form is not merely late: it is not there.
        assert page.get_by_test_id("new-dataset-form").count() == 0
        assert page.get_by_test_id("service-error").count() == 0
        screenshot(page, "datasets-viewer")


def test_logout_ends_the_session(mesh: RunningStack, web: str, browser: Browser) -> None:
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["viewer"])
        refresh_token = _refresh_cookie(page)
        assert refresh_token

        page.get_by_test_id("logout").click()
        page.wait_for_url(LOGIN_URL, timeout=WAIT_MS)
        assert _refresh_cookie(page) == ""
        page.goto(f"{web}/datasets")
        page.wait_for_url(LOGIN_URL, timeout=WAIT_MS)

    # Logout reached analytics: the refresh token no longer works there.
    with grpc.insecure_channel(mesh.analytics) as channel, pytest.raises(grpc.RpcError) as refused:
        auth_pb2_grpc.AuthServiceStub(channel).Refresh(auth_pb2.RefreshRequest(refresh_token=refresh_token), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]


def test_a_reload_or_a_new_tab_keeps_the_user_signed_in(mesh: RunningStack, web: str, browser: Browser) -> None:
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["viewer"])

        page.reload()
        expect(page.get_by_test_id("nav-user")).to_contain_text("viewer", timeout=WAIT_MS)
        assert DATASETS_URL.search(page.url)

        # A new tab starts with an empty server-side state: only the refresh cookie signs it in.
        tab = page.context.new_page()
        tab.goto(f"{web}/datasets")
        expect(tab.get_by_test_id("nav-user")).to_contain_text("viewer", timeout=WAIT_MS)
        expect(tab.get_by_test_id("datasets-table").or_(tab.get_by_test_id("datasets-empty"))).to_be_visible(
            timeout=WAIT_MS
        )
        assert DATASETS_URL.search(tab.url)

    # Without the cookie, the same page asks to sign in.
    with fresh_page(browser) as page:
        page.goto(f"{web}/datasets")
        page.wait_for_url(LOGIN_URL, timeout=WAIT_MS)


def _refresh_cookie(page: Page) -> str:
    cookies = page.context.cookies()
    return next((c["value"] for c in cookies if c["name"] == REFRESH_COOKIE), "")
