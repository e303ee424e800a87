"""The web app in a real browser (Debian's Chromium driven by Playwright),
against the real mesh: the datasets page lists what analytics holds."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from tests.conftest import RunningStack
from tests.web.browser import WAIT_MS, fresh_page, launched_chromium, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


def test_datasets_page_lists_datasets_from_analytics(mesh: RunningStack, web: str, browser: Browser) -> None:
    name = f"browser-{uuid.uuid4().hex[:8]}"
    with mesh.channel(mesh.analytics, "analyst") as channel:
        pb_grpc.AnalyticsServiceStub(channel).CreateDataset(
            pb.CreateDatasetRequest(
                dataset=dataset_pb2.Dataset(name=name, description="seen in a browser", unit="ms")
            ),
            timeout=10,
        )
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["viewer"])
        table = page.get_by_test_id("datasets-table")
        table.wait_for(timeout=WAIT_MS)
        row = page.get_by_test_id("dataset-row").filter(has_text=name)
        row.wait_for(timeout=WAIT_MS)
        assert "seen in a browser" in row.inner_text()
        assert "ms" in row.inner_text()
        assert page.get_by_test_id("service-error").count() == 0
        screenshot(page, "datasets")
