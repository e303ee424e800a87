"""The dashboard's recent results and anomaly timeline in a real browser
against the real mesh: a report that finds one anomaly puts its dataset on
the timeline with a dot at the anomaly and "1 anomaly" (singular) linking to
that dataset's results with anomalies; the counts by outcome link to the
Results page filtered the same way, which honours the filter in its URL."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from mesh.analytics.v1 import analysis_pb2, dataset_pb2
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from tests.conftest import RunningStack
from tests.eventually import eventually
from tests.web.browser import WAIT_MS, fresh_page, launched_chromium, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


def _dataset_with_one_anomaly(mesh: RunningStack, name: str) -> tuple[str, str]:
    """A dataset of four hours of minute points with one spike, and its report (succeeded)."""
    start_us = 1_790_000_000_000_000
    values = [10.0 + 0.01 * i + (0.3 if i % 2 else -0.3) for i in range(240)]
    values[150] = 500.0
    with mesh.channel(mesh.analytics, "analyst") as channel:
        stub = pb_grpc.AnalyticsServiceStub(channel)
        dataset = stub.CreateDataset(pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name)), timeout=10)
        dataset_id = dataset.dataset.id
        stub.AppendPoints(
            pb.AppendPointsRequest(
                dataset_id=dataset_id, timestamps_us=[start_us + i * 60_000_000 for i in range(240)], values=values
            ),
            timeout=30,
        )
        result_id = stub.RunAnalysis(
            pb.RunAnalysisRequest(dataset_id=dataset_id, kind=analysis_pb2.ANALYSIS_KIND_REPORT), timeout=10
        ).result.id
        eventually(
            lambda: (
                stub.GetResult(pb.GetResultRequest(id=result_id), timeout=10).result.status
                == analysis_pb2.RESULT_STATUS_SUCCEEDED
            ),
            timeout=120,
            what="the report to succeed",
        )
        assert stub.GetResult(pb.GetResultRequest(id=result_id), timeout=10).result.anomaly_count == 1
    return dataset_id, result_id


def test_the_dashboard_puts_anomalies_on_a_timeline_and_its_counts_link_to_filtered_results(
    mesh: RunningStack, web: str, browser: Browser
) -> None:
    name = f"timeline-{uuid.uuid4().hex[:8]}"
    dataset_id, result_id = _dataset_with_one_anomaly(mesh, name)
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["viewer"], then="dashboard")

        # The timeline: our dataset's lane, "1 anomaly" (not "1 anomalies"), one dot.
        lane = page.locator(f"[data-testid=timeline-row][data-dataset='{name}']")
        expect(lane).to_have_attribute("data-points", "1", timeout=WAIT_MS)
        expect(lane.get_by_test_id("timeline-count")).to_have_text("1 anomaly")
        expect(page.locator("[data-testid=anomaly-timeline] .timeline-anomaly .recharts-symbols").first).to_be_visible(
            timeout=WAIT_MS
        )
        # The lists say it in the right number too.
        for label in page.get_by_test_id("anomaly-label").all_text_contents():
            assert re.fullmatch(r"1 anomaly|[\d,]+ anomalies", label), label
        # Counts by outcome, each a link to the results filtered that way.
        recent = page.get_by_test_id("recent-label")
        expect(recent).to_have_text(re.compile(r"^Of the last \d+ results?$"), timeout=WAIT_MS)
        failed = page.locator("[data-testid=outcome-count][data-key=failed]")
        expect(failed).to_have_attribute("href", "/results?status=failed")
        expect(failed).to_have_text(re.compile(r"^\d+ failed$"))
        screenshot(page, "dashboard-timeline")

        failed.click()
        page.wait_for_url(re.compile(r"/results\?status=failed$"), timeout=WAIT_MS)
        expect(page.get_by_test_id("filter-status")).to_have_text("failed", timeout=WAIT_MS)
        expect(page.get_by_test_id("results-table").or_(page.get_by_test_id("results-empty")).first).to_be_visible(
            timeout=WAIT_MS
        )
        for status in page.get_by_test_id("result-status").all_text_contents():
            assert status == "failed", status

        # The lane's count: this dataset's results with anomalies, our report among them.
        page.go_back()
        lane = page.locator(f"[data-testid=timeline-row][data-dataset='{name}']")
        lane.get_by_test_id("timeline-count").click()
        page.wait_for_url(re.compile(rf"/results\?dataset={dataset_id}&anomalies=with$"), timeout=WAIT_MS)
        expect(page.get_by_test_id("filter-anomalies")).to_have_text("with", timeout=WAIT_MS)
        rows = page.get_by_test_id("result-row")
        expect(rows).to_have_count(1, timeout=WAIT_MS)
        expect(rows.first).to_have_attribute("data-result-id", result_id)
        # Its status filter is not the one chosen before: the link names the whole filter.
        expect(page.get_by_test_id("filter-status")).to_have_text("any")
