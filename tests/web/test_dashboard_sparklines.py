"""The dashboard's sparklines in a real browser against the real mesh: a
dataset written to in the last hours gets a line of its half-hour means; one
whose points are all older than a day is not drawn as recent. (Which ten
datasets are shown depends on every other test's data on the shared stack,
so the "no points in the last day" row is checked in the unit tests.)"""

from __future__ import annotations

import time
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

HALF_HOUR_US = 1_800_000_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


def _dataset(mesh: RunningStack, name: str, timestamps_us: list[int]) -> None:
    with mesh.channel(mesh.analytics, "analyst") as channel:
        stub = pb_grpc.AnalyticsServiceStub(channel)
        dataset = stub.CreateDataset(pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name)), timeout=10)
        stub.AppendPoints(
            pb.AppendPointsRequest(
                dataset_id=dataset.dataset.id,
                timestamps_us=timestamps_us,
                values=[float(i % 7) for i in range(len(timestamps_us))],
            ),
            timeout=30,
        )


def test_the_dashboard_draws_a_sparkline_of_the_last_day_per_recent_dataset(
    mesh: RunningStack, web: str, browser: Browser
) -> None:
    now_us = time.time_ns() // 1000
    recent = [now_us - k * 600_000_000 for k in range(36)]  # every 10 minutes over the last 6 hours
    old = [now_us - 26 * 3_600_000_000 + k * 60_000_000 for k in range(10)]  # a day and a bit ago
    fresh_name, old_name = f"spark-{uuid.uuid4().hex[:8]}", f"spark-old-{uuid.uuid4().hex[:8]}"
    _dataset(mesh, old_name, old)
    _dataset(mesh, fresh_name, recent)
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["viewer"], then="dashboard")
        row = page.locator(f"[data-testid=sparkline-row][data-dataset='{fresh_name}']")
        # One point of the line per half hour holding points (the grid is the epoch's half hours).
        expect(row).to_have_attribute("data-filled", str(len({t // HALF_HOUR_US for t in recent})), timeout=WAIT_MS)
        expect(row.locator(".sparkline-line path.recharts-line-curve")).to_be_visible(timeout=WAIT_MS)
        expect(row.get_by_role("link", name=fresh_name)).to_have_attribute("href", f"/datasets/{_id(mesh, fresh_name)}")
        screenshot(page, "dashboard-sparklines")


def _id(mesh: RunningStack, name: str) -> str:
    with mesh.channel(mesh.analytics, "viewer") as channel:
        listed = pb_grpc.AnalyticsServiceStub(channel).ListDatasets(pb.ListDatasetsRequest(page_size=1000), timeout=10)
    return next(d.id for d in listed.datasets if d.name == name)
