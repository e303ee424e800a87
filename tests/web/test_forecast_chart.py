"""A forecast in a real browser: run from the dataset page's form with a
horizon, its result page draws the forecast after the series, with its 95%
and 80% bands and the point forecast line."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from playwright.sync_api import Browser, expect

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from tests.conftest import RunningStack
from tests.web.browser import WAIT_MS, fresh_page, launched_chromium, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

ANALYSIS_WAIT_MS = 120_000
"""How long the forecast (queue, worker, insight by the offline model) may take on a busy machine."""
HOUR_US = 3_600_000_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


def _dataset_with_a_daily_cycle(mesh: RunningStack) -> str:
    """Ten days of an hourly cycle with noise, over gRPC; the dataset's id."""
    n = 240
    t = np.arange(n, dtype=np.float64)
    values = 20 + 5 * np.sin(2 * np.pi * t / 24) + np.random.default_rng(3).normal(0, 0.4, n)
    start_us = 1_780_000_000_000_000
    with mesh.channel(mesh.analytics, "analyst") as channel:
        stub = pb_grpc.AnalyticsServiceStub(channel)
        dataset = stub.CreateDataset(
            pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"fc-{uuid.uuid4().hex[:8]}", unit="kW")),
            timeout=10,
        ).dataset
        stub.AppendPoints(
            pb.AppendPointsRequest(
                dataset_id=dataset.id,
                timestamps_us=[start_us + i * HOUR_US for i in range(n)],
                values=values.tolist(),
            ),
            timeout=30,
        )
    return str(dataset.id)


def test_a_forecast_result_shows_the_forecast_and_its_bands_after_the_series(
    mesh: RunningStack, web: str, browser: Browser
) -> None:
    dataset_id = _dataset_with_a_daily_cycle(mesh)
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["analyst"])
        page.goto(f"{web}/datasets/{dataset_id}")
        page.get_by_test_id("run-kind").click()
        page.get_by_role("option", name="forecast").click()
        # Without a horizon the form says what to fill in.
        page.get_by_test_id("run-analysis").click()
        expect(page.get_by_test_id("run-error")).to_contain_text("horizon", timeout=WAIT_MS)
        page.get_by_test_id("run-horizon").fill("24")
        page.get_by_test_id("run-analysis").click()
        page.get_by_test_id("run-result-link").click()
        page.wait_for_url("**/results/*", timeout=WAIT_MS)
        expect(page.get_by_test_id("result-status")).to_have_text("succeeded", timeout=ANALYSIS_WAIT_MS)
        chart = page.get_by_test_id("forecast-chart")
        expect(chart).to_be_visible(timeout=WAIT_MS)
        expect(chart.get_by_test_id("forecast-caption")).to_contain_text("24 steps", timeout=WAIT_MS)
        expect(chart.get_by_test_id("forecast-caption")).to_contain_text("holdout MASE")
        # The bands are filled areas, the forecast and the history lines are drawn.
        expect(chart.locator(".forecast-band-95 path.recharts-area-area")).to_be_visible(timeout=WAIT_MS)
        expect(chart.locator(".forecast-band-80 path.recharts-area-area")).to_be_visible()
        expect(chart.locator(".forecast-line path.recharts-curve")).to_be_visible()
        expect(chart.locator(".forecast-history path.recharts-curve")).to_be_visible()
        expect(chart).to_contain_text("95% interval")
        figures = page.get_by_test_id("result-figures")
        expect(figures).to_contain_text("forecast model")
        expect(figures).to_contain_text("95% interval at the end")
        screenshot(page, "result-forecast")
