"""The web app in a real browser (Debian's Chromium driven by Playwright),
against the real mesh: the datasets page lists what analytics holds."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

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
            pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name, description="seen in a browser", unit="ms")),
            timeout=10,
        )
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["viewer"])
        table = page.get_by_test_id("datasets-table")
        table.wait_for(timeout=WAIT_MS)
        # Other tests' datasets may push this one past the first page: the search finds it.
        page.get_by_test_id("dataset-search").fill(name)
        row = page.get_by_test_id("dataset-row").filter(has_text=name)
        row.wait_for(timeout=WAIT_MS)
        assert "seen in a browser" in row.inner_text()
        assert "ms" in row.inner_text()
        assert page.get_by_test_id("service-error").count() == 0
        screenshot(page, "datasets")


FIRST_PAGE = 100  # mesh_web.pages.datasets.PAGE_SIZE


def test_a_dataset_past_the_first_page_is_found_by_the_search_and_a_new_one_is_shown(
    mesh: RunningStack, web: str, browser: Browser
) -> None:
    tag = uuid.uuid4().hex[:8]
    with mesh.channel(mesh.analytics, "analyst") as channel:
        stub = pb_grpc.AnalyticsServiceStub(channel)
        total = stub.ListDatasets(pb.ListDatasetsRequest(page_size=1), timeout=10).total_size
        # More datasets than the first page holds, this one sorting after all of them.
        for i in range(max(0, FIRST_PAGE + 1 - total)):
            stub.CreateDataset(
                pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"filler-{tag}-{i}")), timeout=10
            )
        far = f"zzzz-far-{tag}"
        stub.CreateDataset(
            pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=far, description="past the first page")),
            timeout=10,
        )
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["analyst"])
        expect(page.get_by_test_id("datasets-summary")).to_contain_text(f"Showing {FIRST_PAGE} of", timeout=WAIT_MS)
        expect(page.get_by_test_id("dataset-row")).to_have_count(FIRST_PAGE)
        assert page.get_by_test_id("dataset-row").filter(has_text=far).count() == 0

        page.get_by_test_id("dataset-search").fill(far)
        row = page.get_by_test_id("dataset-row").filter(has_text=far)
        expect(row).to_be_visible(timeout=WAIT_MS)
        expect(row).to_contain_text("past the first page")
        expect(page.get_by_test_id("dataset-row")).to_have_count(1)

        page.get_by_test_id("dataset-search").fill("")
        page.get_by_test_id("refresh-datasets").click()
        expect(page.get_by_test_id("dataset-row")).to_have_count(FIRST_PAGE, timeout=WAIT_MS)
        # Created with the form, sorting past the page loaded: shown all the same, once.
        created = f"zzzz-new-{tag}"
        page.get_by_test_id("new-dataset-name").fill(created)
        page.get_by_test_id("new-dataset-submit").click()
        expect(page.get_by_test_id("dataset-row").filter(has_text=created)).to_have_count(1, timeout=WAIT_MS)
        # A search loads every page, the one holding the new dataset too: still one row of it.
        page.get_by_test_id("dataset-search").fill(f"-{tag}")
        expect(page.get_by_test_id("dataset-row").filter(has_text=far)).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_test_id("dataset-row").filter(has_text=created)).to_have_count(1)
        expect(page.get_by_test_id("datasets-summary")).not_to_contain_text("Showing")
