"""Anomaly events in a real browser against the real mesh: a dataset's
seasonal periods edited on its page, and a result's events listed largest
first, a page at a time."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from playwright.sync_api import Browser, expect

from mesh.analytics.v1 import analysis_pb2, dataset_pb2
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from tests.conftest import RunningStack
from tests.eventually import eventually
from tests.web.browser import WAIT_MS, fresh_page, launched_chromium, navigate, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

EVENTS = 45
START_US = 1_780_000_000_000_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


def _dataset_with_spikes(stub: pb_grpc.AnalyticsServiceStub, name: str) -> str:
    """4,500 minute points of noise with 45 spikes, each larger than the one before; its id."""
    rng = np.random.default_rng(2)
    values = 10 + rng.normal(0, 0.5, EVENTS * 100)
    values[50::100] += 20 + 5 * np.arange(EVENTS)
    dataset = stub.CreateDataset(pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name)), timeout=10).dataset
    stub.AppendPoints(
        pb.AppendPointsRequest(
            dataset_id=dataset.id,
            timestamps_us=[START_US + i * 60_000_000 for i in range(values.size)],
            values=values.tolist(),
        ),
        timeout=30,
    )
    return str(dataset.id)


def test_periods_are_edited_on_the_dataset_and_events_are_paged_on_the_result(
    mesh: RunningStack, web: str, browser: Browser
) -> None:
    name = f"events-{uuid.uuid4().hex[:8]}"
    with mesh.channel(mesh.analytics, "analyst") as channel:
        stub = pb_grpc.AnalyticsServiceStub(channel)
        dataset_id = _dataset_with_spikes(stub, name)
        parameters = analysis_pb2.AnalysisParameters(
            anomaly_method=analysis_pb2.ANOMALY_METHOD_GLOBAL, anomaly_threshold=10
        )
        result_id = stub.RunAnalysis(
            pb.RunAnalysisRequest(
                dataset_id=dataset_id, kind=analysis_pb2.ANALYSIS_KIND_ANOMALIES, parameters=parameters
            ),
            timeout=10,
        ).result.id
        finished = eventually(
            lambda: (r := stub.GetResult(pb.GetResultRequest(id=result_id), timeout=10).result).status
            == analysis_pb2.RESULT_STATUS_SUCCEEDED
            and r,
            120,
            "the anomalies result",
        )
        assert finished.anomaly_count == EVENTS

    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["analyst"])
        navigate(page, "datasets")
        page.get_by_test_id("dataset-search").fill(name)
        expect(page.get_by_test_id("dataset-row")).to_have_count(1, timeout=WAIT_MS)
        page.get_by_test_id("dataset-link").filter(has_text=name).click()
        expect(page.get_by_test_id("dataset-periods")).to_have_text("detected from the data", timeout=WAIT_MS)
        page.get_by_test_id("edit-dataset-periods").fill("86400, 604800")
        page.get_by_test_id("edit-dataset-submit").click()
        expect(page.get_by_test_id("edit-dataset-notice")).to_have_text("Saved", timeout=WAIT_MS)
        expect(page.get_by_test_id("dataset-periods")).to_have_text("1 d, 7 d")
        page.get_by_test_id("edit-dataset-periods").fill("1")
        page.get_by_test_id("edit-dataset-submit").click()
        expect(page.get_by_test_id("edit-dataset-error")).to_contain_text("2", timeout=WAIT_MS)
        page.get_by_test_id("edit-dataset-periods").fill("a day")
        page.get_by_test_id("edit-dataset-submit").click()
        expect(page.get_by_test_id("edit-dataset-error")).to_contain_text("whole seconds", timeout=WAIT_MS)
        with mesh.channel(mesh.analytics, "viewer") as channel:
            stored = pb_grpc.AnalyticsServiceStub(channel).GetDataset(pb.GetDatasetRequest(id=dataset_id), timeout=10)
        assert list(stored.dataset.seasonal_periods_seconds) == [86_400, 604_800]

        page.goto(f"{web}/results/{result_id}")
        caption = page.get_by_test_id("events-caption")
        expect(caption).to_have_text(f"Events 1–20 of {EVENTS}, largest first", timeout=WAIT_MS)
        rows = page.get_by_test_id("anomaly-row")
        expect(rows).to_have_count(20)
        # The largest spike is the newest: rank 1; the next page goes on from rank 21.
        newest = dt.datetime.fromtimestamp(START_US / 1e6 + (EVENTS * 100 - 50) * 60, dt.UTC)
        expect(rows.first.locator("td").first).to_have_text("1")
        expect(rows.first).to_contain_text(newest.strftime("%Y-%m-%d %H:%M:%S UTC"))
        expect(page.get_by_test_id("events-previous")).to_be_disabled()
        page.get_by_test_id("events-next").click()
        expect(caption).to_have_text(f"Events 21–40 of {EVENTS}, largest first", timeout=WAIT_MS)
        expect(rows.first.locator("td").first).to_have_text("21")
        page.get_by_test_id("events-next").click()
        expect(caption).to_have_text(f"Events 41–45 of {EVENTS}, largest first", timeout=WAIT_MS)
        expect(rows).to_have_count(5)
        expect(page.get_by_test_id("events-next")).to_be_disabled()
        page.get_by_test_id("events-previous").click()
        expect(caption).to_have_text(f"Events 21–40 of {EVENTS}, largest first", timeout=WAIT_MS)
        screenshot(page, "result-events")
