"""Results in a real browser against the real mesh: an analysis run while the
results page is open appears in its table without a reload (WatchResults);
its detail page shows the series chart with the trend line and the anomaly
marked, the histogram, the numbers and the insight; a question about it gets
an answer streamed into the page; a subscription's e-mail about it lands in
the mailbox."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from mesh.analytics.v1 import analysis_pb2, dataset_pb2
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.notify.v1 import notify_service_pb2 as notify_pb2
from mesh.notify.v1 import notify_service_pb2_grpc as notify_pb2_grpc
from mesh.notify.v1 import subscription_pb2
from tests.conftest import RunningStack
from tests.eventually import eventually
from tests.web.browser import (
    WAIT_MS,
    assert_not_reloaded,
    fresh_page,
    launched_chromium,
    mark_document,
    navigate,
    screenshot,
    sign_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

ANALYSIS_WAIT_MS = 120_000
"""How long an analysis (queue, worker, insight by the offline model) may take on a busy machine."""
MAIL_WAIT_SECONDS = 120.0
"""How long the e-mail about a result may take to reach the mailbox (event relay, notify, SMTP)."""
MAIL_POLL_MS = 1000
"""Between two clicks on the mailbox's Refresh button while waiting for the e-mail."""
POINTS = 240
SPIKE_AT = 150


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


def _dataset_with_a_spike(mesh: RunningStack, name: str) -> str:
    """A dataset of a gentle ramp with one huge spike, over gRPC; its id."""
    start_us = 1_780_000_000_000_000
    timestamps = [start_us + i * 60_000_000 for i in range(POINTS)]
    values = [10.0 + 0.01 * i + (0.3 if i % 2 else -0.3) for i in range(POINTS)]
    values[SPIKE_AT] = 500.0
    with mesh.channel(mesh.analytics, "analyst") as channel:
        stub = pb_grpc.AnalyticsServiceStub(channel)
        dataset = stub.CreateDataset(
            pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name, description="ramp with a spike", unit="ms")),
            timeout=10,
        ).dataset
        stub.AppendPoints(
            pb.AppendPointsRequest(dataset_id=dataset.id, timestamps_us=timestamps, values=values), timeout=30
        )
    return str(dataset.id)


def _run_report(mesh: RunningStack, dataset_id: str) -> str:
    with mesh.channel(mesh.analytics, "analyst") as channel:
        reply = pb_grpc.AnalyticsServiceStub(channel).RunAnalysis(
            pb.RunAnalysisRequest(dataset_id=dataset_id, kind=analysis_pb2.ANALYSIS_KIND_REPORT), timeout=10
        )
    return str(reply.result.id)


def _filter_results_by_dataset(page: Page, name: str) -> None:
    # The dataset choices arrive before the first page of results does.
    loaded = page.get_by_test_id("results-table").or_(page.get_by_test_id("results-empty"))
    expect(loaded).to_be_visible(timeout=WAIT_MS)
    page.get_by_test_id("filter-dataset").click()
    page.get_by_role("option", name=name).click()
    page.get_by_test_id("apply-filters").click()


def test_an_analysis_appears_live_and_its_detail_shows_charts_insight_and_answers(
    mesh: RunningStack, web: str, browser: Browser
) -> None:
    name = f"live-{uuid.uuid4().hex[:8]}"
    dataset_id = _dataset_with_a_spike(mesh, name)
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["viewer"], then="results")
        _filter_results_by_dataset(page, name)
        expect(page.get_by_test_id("results-empty")).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_test_id("results-live")).to_be_visible(timeout=WAIT_MS)
        mark_document(page)

        result_id = _run_report(mesh, dataset_id)

        # Streamed in by WatchResults: no reload, no click.
        row = page.locator(f"[data-testid=result-row][data-result-id='{result_id}']")
        expect(row).to_be_visible(timeout=ANALYSIS_WAIT_MS)
        expect(row.get_by_test_id("result-status")).to_have_text("succeeded", timeout=ANALYSIS_WAIT_MS)
        expect(row).to_contain_text(name)
        expect(row).to_contain_text("report")
        assert_not_reloaded(page)
        screenshot(page, "results")

        row.get_by_test_id("result-link").click()
        page.wait_for_url(f"**/results/{result_id}", timeout=WAIT_MS)
        expect(page.get_by_test_id("result-status")).to_have_text("succeeded", timeout=WAIT_MS)

        chart = page.get_by_test_id("series-chart")
        expect(chart).to_contain_text("240 points analysed", timeout=WAIT_MS)
        expect(page.get_by_test_id("result-computation")).to_have_text("Computed in memory over 240 points; exact")
        expect(chart).to_contain_text("1 anomaly")
        # The series and its trend line are drawn; the spike is the one red dot.
        expect(chart.locator(".series-line path.recharts-curve")).to_be_visible(timeout=WAIT_MS)
        expect(chart.locator(".trend-line path.recharts-curve")).to_be_visible()
        expect(chart.locator("circle.anomaly-dot")).to_have_count(1)
        histogram = page.get_by_test_id("histogram-chart")
        expect(histogram.locator(".recharts-bar-rectangle").first).to_be_visible(timeout=WAIT_MS)

        figures = page.get_by_test_id("result-figures")
        expect(figures).to_contain_text("points")
        expect(figures).to_contain_text("240")
        expect(figures).to_contain_text("maximum")
        expect(figures).to_contain_text("500 ms")
        expect(page.get_by_test_id("anomaly-row")).to_have_count(1)
        expect(page.get_by_test_id("anomaly-row")).to_contain_text("500")

        # The insight is written after the result is stored: the page follows it.
        insight = page.get_by_test_id("insight-text")
        expect(insight).to_be_visible(timeout=ANALYSIS_WAIT_MS)
        expect(insight).not_to_be_empty()
        screenshot(page, "result-detail")

        page.get_by_test_id("ask-question").fill("What happened at the spike?")
        page.get_by_test_id("ask-submit").click()
        answer = page.get_by_test_id("ask-answer")
        expect(answer).not_to_be_empty(timeout=ANALYSIS_WAIT_MS)
        expect(page.get_by_test_id("ask-submit")).to_be_enabled(timeout=ANALYSIS_WAIT_MS)
        assert page.get_by_test_id("ask-error").count() == 0
        assert len(answer.inner_text()) > 20
        screenshot(page, "result-ask")


def test_results_filter_by_status_and_page_with_tokens(mesh: RunningStack, web: str, browser: Browser) -> None:
    name = f"pages-{uuid.uuid4().hex[:8]}"
    dataset_id = _dataset_with_a_spike(mesh, name)
    ids = [_run_report(mesh, dataset_id) for _ in range(27)]
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["viewer"], then="results")
        _filter_results_by_dataset(page, name)
        rows = page.get_by_test_id("result-row")
        expect(rows).to_have_count(25, timeout=WAIT_MS)
        first_page = {rows.nth(i).get_attribute("data-result-id") for i in range(25)}
        page.get_by_test_id("next-page").click()
        expect(page.get_by_test_id("page-number")).to_have_text("Page 2", timeout=WAIT_MS)
        expect(rows).to_have_count(2, timeout=WAIT_MS)
        second_page = {rows.nth(i).get_attribute("data-result-id") for i in range(2)}
        assert first_page | second_page == set(ids)
        assert not first_page & second_page
        expect(page.get_by_test_id("next-page")).to_be_disabled()
        page.get_by_test_id("previous-page").click()
        expect(page.get_by_test_id("page-number")).to_have_text("Page 1", timeout=WAIT_MS)
        expect(rows).to_have_count(25, timeout=WAIT_MS)

        # A filter no result matches empties the table.
        page.get_by_test_id("filter-status").click()
        page.get_by_role("option", name="failed").click()
        page.get_by_test_id("apply-filters").click()
        expect(page.get_by_test_id("results-empty")).to_be_visible(timeout=WAIT_MS)


def test_a_subscription_gets_the_e_mail_about_a_result_in_the_mailbox(
    mesh: RunningStack, web: str, browser: Browser
) -> None:
    name = f"mailed-{uuid.uuid4().hex[:8]}"
    email = f"{name}@example.com"
    dataset_id = _dataset_with_a_spike(mesh, name)
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["analyst"], then="notifications")
        page.get_by_test_id("subscription-email").fill(email)
        page.get_by_test_id("subscription-name").fill("Ada")
        page.get_by_test_id("subscription-dataset").click()
        page.get_by_role("option", name=name).click()
        page.get_by_test_id("subscription-submit").click()
        row = page.get_by_test_id("subscription-row").filter(has_text=email)
        expect(row).to_be_visible(timeout=WAIT_MS)
        expect(row).to_contain_text(name)
        expect(row).to_contain_text("every event")
        screenshot(page, "notifications")

        _run_report(mesh, dataset_id)

        navigate(page, "mailbox")
        mail = page.get_by_test_id("mail-row").filter(has_text=email)

        def mail_arrived() -> bool:
            if mail.count():
                return True
            page.get_by_test_id("refresh-mailbox").click()
            expect(page.get_by_test_id("refresh-mailbox")).to_be_enabled(timeout=WAIT_MS)
            return False

        eventually(mail_arrived, MAIL_WAIT_SECONDS, f"the e-mail to {email}", interval=MAIL_POLL_MS / 1000)
        expect(mail.first).to_be_visible()
        mail.first.get_by_test_id("mail-subject").click()
        body = page.get_by_test_id("mail-body")
        expect(body).to_contain_text(name, timeout=WAIT_MS)
        screenshot(page, "mailbox")

        navigate(page, "notifications")
        delivery = page.get_by_test_id("delivery-row").filter(has_text=email)
        expect(delivery.first).to_contain_text("sent", timeout=WAIT_MS)

        # A test e-mail goes out at once and is logged.
        row = page.get_by_test_id("subscription-row").filter(has_text=email)
        row.get_by_test_id("subscription-test").click()
        expect(page.get_by_test_id("notifications-notice")).to_have_text(
            f"Test e-mail to {email}: sent", timeout=WAIT_MS
        )
        expect(page.get_by_test_id("delivery-row").filter(has_text="test e-mail").filter(has_text=email)).to_have_count(
            1, timeout=WAIT_MS
        )

        # The dashboard lists the result among the latest, and among the anomalies.
        navigate(page, "dashboard")
        expect(page.get_by_test_id("latest-results-row").filter(has_text=name).first).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_test_id("recent-anomalies-row").filter(has_text=name).first).to_be_visible()
        screenshot(page, "dashboard-with-results")


def test_an_analyst_edits_and_deletes_a_subscription(mesh: RunningStack, web: str, browser: Browser) -> None:
    email = f"edit-{uuid.uuid4().hex[:8]}@example.com"
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["analyst"], then="notifications")
        page.get_by_test_id("subscription-email").fill(email)
        page.get_by_test_id("subscription-submit").click()
        row = page.get_by_test_id("subscription-row").filter(has_text=email)
        expect(row).to_contain_text("every event", timeout=WAIT_MS)

        row.get_by_test_id("subscription-edit").click()
        expect(page.get_by_test_id("subscription-email")).to_have_value(email, timeout=WAIT_MS)
        page.get_by_test_id("subscription-name").fill("Grace")
        page.get_by_test_id("event-succeeded").click()  # off: failures and anomalies only
        page.get_by_test_id("subscription-min-anomalies").fill("3")
        page.get_by_test_id("subscription-submit").click()
        expect(row).to_contain_text("Grace", timeout=WAIT_MS)
        expect(row).to_contain_text("result failed, anomaly detected")
        with mesh.channel(mesh.notify, "viewer") as channel:
            listed = notify_pb2_grpc.NotifyServiceStub(channel).ListSubscriptions(
                notify_pb2.ListSubscriptionsRequest(page_size=1000), timeout=10
            )
        stored = next(s for s in listed.subscriptions if s.email == email)
        assert (stored.display_name, stored.min_anomaly_count) == ("Grace", 3)
        assert sorted(stored.event_types) == [
            subscription_pb2.EVENT_TYPE_RESULT_FAILED,
            subscription_pb2.EVENT_TYPE_ANOMALY_DETECTED,
        ]

        row.get_by_test_id("subscription-delete").click()
        expect(row).to_have_count(0, timeout=WAIT_MS)
        # A missing address is refused beside the form, naming the field.
        page.get_by_test_id("subscription-email").fill("")
        page.get_by_test_id("subscription-submit").click()
        expect(page.get_by_test_id("subscription-error")).to_contain_text("email", timeout=WAIT_MS)
