"""The web app in a real browser (Debian's Chromium driven by Playwright),
against the real mesh: the datasets page lists what analytics holds."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from mesh_cli.paths import ROOT
from tests.conftest import RunningStack

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("Chromium is needed for the browser tests: `apt-get install chromium` (Debian) and rerun")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def screenshot(page: object, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


def test_datasets_page_lists_datasets_from_analytics(mesh: RunningStack, web: str, browser: object) -> None:
    name = f"browser-{uuid.uuid4().hex[:8]}"
    with grpc.insecure_channel(mesh.analytics) as channel:
        pb_grpc.AnalyticsServiceStub(channel).CreateDataset(
            pb.CreateDatasetRequest(
                dataset=dataset_pb2.Dataset(name=name, description="seen in a browser", unit="ms")
            ),
            timeout=10,
        )
    page = browser.new_page(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    try:
        page.goto(f"{web}/datasets")
        table = page.get_by_test_id("datasets-table")
        table.wait_for(timeout=30_000)
        row = page.get_by_test_id("dataset-row").filter(has_text=name)
        row.wait_for(timeout=30_000)
        assert "seen in a browser" in row.inner_text()
        assert "ms" in row.inner_text()
        assert page.get_by_test_id("service-error").count() == 0
        screenshot(page, "datasets")
    finally:
        page.close()
