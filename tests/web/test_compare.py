"""Comparing datasets in a real browser against the real mesh: datasets
ticked in the Datasets table open the Compare page at an address naming
them; their lines share one time axis, with a second value axis when their
units differ; presets, drag-to-zoom and Reset ask BatchQueryPoints again;
the address opens the same comparison in another tab."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from tests.conftest import RunningStack
from tests.web.browser import WAIT_MS, fresh_page, launched_chromium, navigate, screenshot, sign_in
from tests.web.test_dataset_chart import _drag, _shown_range

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

FIRST = datetime(2026, 10, 1, tzinfo=UTC)
MINUTES = 2 * 24 * 60


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


def _dataset(mesh: RunningStack, name: str, unit: str, scale: float, offset_minutes: int = 0) -> str:
    first_us = int(FIRST.timestamp() * 1_000_000) + offset_minutes * 60_000_000
    with mesh.channel(mesh.analytics, "analyst") as channel:
        stub = pb_grpc.AnalyticsServiceStub(channel)
        dataset = stub.CreateDataset(
            pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name, unit=unit)), timeout=10
        ).dataset
        stub.AppendPoints(
            pb.AppendPointsRequest(
                dataset_id=dataset.id,
                timestamps_us=[first_us + minute * 60_000_000 for minute in range(MINUTES)],
                values=[scale * (minute % 600) for minute in range(MINUTES)],
            ),
            timeout=30,
        )
        return str(dataset.id)


def _lines_drawn(page: Page, count: int) -> None:
    for i in range(count):
        line = page.locator(f"[data-testid=compare-chart] .compare-line-{i} path.recharts-line-curve")
        expect(line).to_have_count(1, timeout=WAIT_MS)
        expect(line).to_have_attribute("d", re.compile(r"^M[^ML]*(L[^ML]*){20,}$"), timeout=WAIT_MS)
    expect(page.locator(f"[data-testid=compare-chart] .compare-line-{count} path.recharts-line-curve")).to_have_count(0)


def test_datasets_ticked_in_the_table_are_compared_on_two_axes_zoomed_and_shared(
    mesh: RunningStack, web: str, browser: Browser
) -> None:
    prefix = f"cmp-{uuid.uuid4().hex[:8]}"
    speed = _dataset(mesh, f"{prefix}-speed", "rpm", 1.0)
    other_speed = _dataset(mesh, f"{prefix}-speed-2", "rpm", 2.0, offset_minutes=30)
    heat = _dataset(mesh, f"{prefix}-heat", "°C", 0.05)
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["viewer"])
        navigate(page, "datasets")
        page.get_by_test_id("dataset-search").fill(prefix)
        expect(page.get_by_test_id("dataset-row")).to_have_count(3, timeout=WAIT_MS)
        expect(page.get_by_test_id("compare-hint")).to_have_text("Tick two or more datasets to compare them")
        for name in (f"{prefix}-speed", f"{prefix}-heat"):
            row = page.get_by_test_id("dataset-row").filter(
                has=page.get_by_test_id("dataset-link").get_by_text(name, exact=True)
            )
            row.get_by_test_id("compare-pick").click()
        expect(page.get_by_test_id("compare-hint")).to_have_text("2 datasets ticked")
        page.get_by_test_id("compare-open").click()
        page.wait_for_url(re.compile(rf"/compare/?\?ids={speed},{heat}$"), timeout=WAIT_MS)

        chart = page.get_by_test_id("compare-chart")
        # Two units: rpm on the left axis, °C on the right one, each line on its own.
        expect(chart).to_have_attribute("data-units", "rpm,°C", timeout=WAIT_MS)
        expect(page.get_by_test_id("compare-dataset")).to_have_count(2)
        # The last day back from the latest point of either.
        expect(chart).to_have_attribute("data-range-start", "2026-10-01 23:59:00", timeout=WAIT_MS)
        expect(chart).to_have_attribute("data-range-end", "2026-10-02 23:59:00", timeout=WAIT_MS)
        _lines_drawn(page, 2)
        for unit in ("rpm", "°C"):
            expect(chart.locator(".recharts-label").filter(has_text=unit)).to_have_count(1)
        # Each axis is scaled to its own values: rpm up to 599 (ticks of 150), °C up to 0.05 x 599.
        texts = chart.locator(".recharts-cartesian-axis-tick-value").all_text_contents()
        ticks = [float(t) for t in texts if re.fullmatch(r"-?\d+(\.\d+)?", t)]
        assert 500 <= max(ticks) <= 700, ticks
        assert any(0 < t <= 40 for t in ticks), ticks
        screenshot(page, "compare")

        # Presets, drag-to-zoom and Reset, like the dataset chart.
        page.get_by_test_id("compare-preset-hour").click()
        expect(chart).to_have_attribute("data-range-start", "2026-10-02 22:59:00", timeout=WAIT_MS)
        page.get_by_test_id("compare-preset-day").click()
        expect(chart).to_have_attribute("data-range-start", "2026-10-01 23:59:00", timeout=WAIT_MS)
        _drag(page, "compare-plot", 0.5, 0.75)
        expect(chart).to_have_attribute("data-zoomed", "true", timeout=WAIT_MS)
        start, end = _shown_range(page, "compare-chart")
        assert timedelta(hours=5) <= end - start <= timedelta(hours=7), (start, end)
        assert timedelta(hours=11) <= start - datetime(2026, 10, 1, 23, 59, tzinfo=UTC) <= timedelta(hours=13)
        _lines_drawn(page, 2)
        page.get_by_test_id("compare-reset").click()
        expect(chart).to_have_attribute("data-range-start", "2026-10-01 23:59:00", timeout=WAIT_MS)
        expect(chart).to_have_attribute("data-zoomed", "false", timeout=WAIT_MS)

    # The address is the comparison: another tab opens it; one unit, one axis.
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["viewer"], then="dashboard")
        page.goto(f"{web}/compare?ids={speed},{other_speed}")
        chart = page.get_by_test_id("compare-chart")
        expect(chart).to_have_attribute("data-units", "rpm", timeout=WAIT_MS)
        # The second one starts and ends half an hour later: the day ends at its last point.
        expect(chart).to_have_attribute("data-range-end", "2026-10-03 00:29:00", timeout=WAIT_MS)
        _lines_drawn(page, 2)
        expect(chart.locator(".recharts-label")).to_have_text(["rpm"])

        # A link naming one dataset says what is missing, and no chart.
        page.goto(f"{web}/compare?ids={speed}")
        expect(page.get_by_test_id("service-error")).to_contain_text("Pick two or more datasets", timeout=WAIT_MS)
        expect(page.get_by_test_id("compare-chart")).to_have_count(0)
