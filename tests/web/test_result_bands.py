"""A result's page in a real browser against the real mesh: a report over
three days with a daily cycle, a rising trend and one spike draws, with the
series and the anomaly, the value the seasonal method expected at the spike
and the band it would not have flagged; the trend is said in words with how
sure it is."""

from __future__ import annotations

import math
import re
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
from tests.web.browser import WAIT_MS, fresh_page, launched_chromium, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

STEP_US = 600_000_000  # ten minutes
POINTS = 3 * 24 * 6  # three days


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


NOISE = np.random.default_rng(17).normal(0.0, 1.5, POINTS).tolist()


def _value(i: int) -> float:
    cycle = 10.0 * math.sin(2 * math.pi * i / 144)
    return 100.0 + 0.05 * i + cycle + float(NOISE[i]) + (60.0 if i == 300 else 0.0)


def test_the_result_page_draws_the_expected_band_at_the_anomaly_and_says_the_trend_in_words(
    mesh: RunningStack, web: str, browser: Browser
) -> None:
    name = f"bands-{uuid.uuid4().hex[:8]}"
    start_us = 1_795_000_000_000_000
    with mesh.channel(mesh.analytics, "analyst") as channel:
        stub = pb_grpc.AnalyticsServiceStub(channel)
        dataset = stub.CreateDataset(
            pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name, unit="kW")), timeout=10
        ).dataset
        stub.AppendPoints(
            pb.AppendPointsRequest(
                dataset_id=dataset.id,
                timestamps_us=[start_us + i * STEP_US for i in range(POINTS)],
                values=[_value(i) for i in range(POINTS)],
            ),
            timeout=30,
        )
        result_id = stub.RunAnalysis(
            pb.RunAnalysisRequest(
                dataset_id=dataset.id,
                kind=analysis_pb2.ANALYSIS_KIND_REPORT,
                parameters=analysis_pb2.AnalysisParameters(seasonal_periods_seconds=[86_400]),
            ),
            timeout=10,
        ).result.id

        def finished() -> analysis_pb2.Result | None:
            result = stub.GetResult(pb.GetResultRequest(id=result_id), timeout=10).result
            return result if result.status == analysis_pb2.RESULT_STATUS_SUCCEEDED else None

        result = eventually(finished, timeout=120, what="the report to succeed")
    assert result.output.anomalies.method == "seasonal"
    spike = next(e for e in result.output.anomalies.events if e.peak_us == start_us + 300 * STEP_US)
    assert spike.lower < spike.expected < spike.upper < spike.peak_value

    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["viewer"], then="results")
        page.goto(f"{web}/results/{result_id}")
        chart = page.get_by_test_id("series-chart")
        # One expected value with its band per anomaly event, drawn beside the series and the anomaly dot.
        events = len(result.output.anomalies.events)
        expect(chart.locator("circle.expected-dot")).to_have_count(events, timeout=WAIT_MS)
        expect(chart.locator(".recharts-errorBar")).to_have_count(events, timeout=WAIT_MS)
        expect(chart.locator("circle.anomaly-dot")).to_have_count(events)
        expect(chart.locator(".recharts-legend-item-text").filter(has_text="expected")).to_have_count(1)
        # The trend in words, with its interval and what it means (the cycle and the spike pull the
        # fitted slope below the 7.2 kW/day the values rise by; the page says what the result holds).
        words = page.get_by_test_id("trend-words")
        per_day = result.output.trend.slope_per_second * 86_400
        expect(words).to_contain_text(
            re.compile(rf"^Trend: rising {int(per_day)}\.\d+ kW/day ± [\d.]+ \(95% interval [\d.]+ to [\d.]+\)")
        )
        expect(words).to_contain_text(", distinguishable from noise (p = ")
        screenshot(page, "result-bands")
