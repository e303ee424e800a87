"""The dashboard and a dataset's page in a real browser against the real mesh:
the health of every service; creating a dataset and opening it; uploading a
CSV with a bad line and seeing that line reported; generating sample data;
schedules; editing; and what a viewer may not do."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from mesh.analytics.v1 import analysis_pb2, dataset_pb2
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from tests.conftest import RunningStack
from tests.web.browser import WAIT_MS, fresh_page, launched_chromium, navigate, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

CSV_WITH_ONE_BAD_LINE = (
    b"timestamp,value\n"
    b"2026-11-01T00:00:00Z,1.5\n"
    b"2026-11-01T00:01:00Z,not-a-number\n"
    b"2026-11-01T00:02:00Z,2.5\n"
    b"2026-11-01T00:03:00Z,3.5\n"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


def _create_dataset(mesh: RunningStack, name: str) -> str:
    with mesh.channel(mesh.analytics, "analyst") as channel:
        reply = pb_grpc.AnalyticsServiceStub(channel).CreateDataset(
            pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name, description="for the dataset page")),
            timeout=10,
        )
    return str(reply.dataset.id)


def _open_dataset(page: Page, name: str) -> None:
    """From the datasets page, open the dataset's own page by its link."""
    navigate(page, "datasets")
    page.get_by_test_id("dataset-search").fill(name)
    # The table is filtered (re-rendered) before the link is clicked.
    expect(page.get_by_test_id("dataset-row")).to_have_count(1, timeout=WAIT_MS)
    page.get_by_test_id("dataset-link").filter(has_text=name).click()
    expect(page.get_by_test_id("dataset-title")).to_have_text(name, timeout=WAIT_MS)


def test_the_dashboard_shows_every_service_healthy_and_the_counts(
    mesh: RunningStack, web: str, browser: Browser
) -> None:
    _create_dataset(mesh, f"dash-{uuid.uuid4().hex[:8]}")
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["viewer"], then="dashboard")
        health = page.get_by_test_id("health-row")
        expect(health).to_have_count(4, timeout=WAIT_MS)
        for service in ("analytics", "llm", "notify", "gateway (Envoy)"):
            row = page.locator(f"[data-testid=health-row][data-service='{service}']")
            expect(row.get_by_test_id("health-status")).to_have_text("serving", timeout=WAIT_MS)
        count = page.get_by_test_id("count-datasets")
        expect(count).not_to_have_text("—", timeout=WAIT_MS)
        assert int(count.inner_text().replace(",", "")) >= 1
        assert page.get_by_test_id("service-error").count() == 0
        screenshot(page, "dashboard")


def test_an_analyst_uploads_a_csv_and_sees_the_bad_line_reported(
    mesh: RunningStack, web: str, browser: Browser
) -> None:
    name = f"upload-{uuid.uuid4().hex[:8]}"
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["analyst"])
        # Created with the form, then opened from the table.
        page.get_by_test_id("new-dataset-name").fill(name)
        page.get_by_test_id("new-dataset-unit").fill("ms")
        page.get_by_test_id("new-dataset-submit").click()
        expect(page.get_by_test_id("dataset-row").filter(has_text=name)).to_be_visible(timeout=WAIT_MS)
        _open_dataset(page, name)
        expect(page.get_by_test_id("dataset-points")).to_have_text("0", timeout=WAIT_MS)

        page.locator("input[type=file]").set_input_files(
            files=[{"name": "points.csv", "mimeType": "text/csv", "buffer": CSV_WITH_ONE_BAD_LINE}]
        )
        summary = page.get_by_test_id("import-summary")
        expect(summary).to_have_text("points.csv: 3 points stored, 1 line rejected", timeout=WAIT_MS)
        rejected = page.get_by_test_id("rejected-line")
        expect(rejected).to_have_count(1)
        expect(rejected).to_contain_text("line 3:")
        expect(rejected).to_contain_text("'not-a-number' is not a number")
        expect(page.get_by_test_id("dataset-points")).to_have_text("3", timeout=WAIT_MS)
        screenshot(page, "dataset-upload")


def test_an_analyst_generates_sample_data_edits_the_dataset_and_schedules_an_analysis(
    mesh: RunningStack, web: str, browser: Browser
) -> None:
    name = f"sample-{uuid.uuid4().hex[:8]}"
    _create_dataset(mesh, name)
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["analyst"])
        _open_dataset(page, name)

        page.get_by_test_id("sample-points").fill("500")
        page.get_by_test_id("generate-sample").click()
        expect(page.get_by_test_id("sample-summary")).to_contain_text("500 cpu-load points added", timeout=WAIT_MS)
        expect(page.get_by_test_id("dataset-points")).to_have_text("500", timeout=WAIT_MS)

        page.get_by_test_id("edit-dataset-description").fill("CPU load, generated")
        page.get_by_test_id("edit-dataset-submit").click()
        expect(page.get_by_test_id("edit-dataset-notice")).to_have_text("Saved", timeout=WAIT_MS)
        expect(page.get_by_test_id("dataset-description")).to_have_text("CPU load, generated")
        with mesh.channel(mesh.analytics, "viewer") as channel:
            stub = pb_grpc.AnalyticsServiceStub(channel)
            listed = stub.ListDatasets(pb.ListDatasetsRequest(page_size=1000), timeout=10)
        stored = next(d for d in listed.datasets if d.name == name)
        assert stored.description == "CPU load, generated"
        assert stored.point_count == 500

        # Run now: the queued result links to its page.
        page.get_by_test_id("run-analysis").click()
        page.get_by_test_id("run-result-link").click()
        page.wait_for_url("**/results/*", timeout=WAIT_MS)
        expect(page.get_by_test_id("result-title")).to_have_text(f"{name} · report", timeout=WAIT_MS)
        page.go_back()
        expect(page.get_by_test_id("dataset-title")).to_have_text(name, timeout=WAIT_MS)

        page.get_by_test_id("schedule-value").fill("3600")
        page.get_by_test_id("schedule-submit").click()
        row = page.get_by_test_id("schedule-row")
        expect(row).to_have_count(1, timeout=WAIT_MS)
        expect(row).to_contain_text("report")
        expect(row).to_contain_text("every 1 h")
        toggle = row.get_by_test_id("schedule-toggle")
        expect(toggle).to_have_attribute("data-state", "checked")
        toggle.click()
        expect(toggle).to_have_attribute("data-state", "unchecked", timeout=WAIT_MS)

        row.get_by_test_id("schedule-edit").click()
        # The form is filled with the schedule (and remounted) once the server has answered.
        expect(page.get_by_test_id("schedule-form-title")).to_have_text("Edit schedule", timeout=WAIT_MS)
        expect(page.get_by_test_id("schedule-value")).to_have_value("3600")
        page.get_by_test_id("schedule-value").fill("900")
        page.get_by_test_id("schedule-submit").click()
        expect(row).to_contain_text("every 15 min", timeout=WAIT_MS)
        with mesh.channel(mesh.analytics, "viewer") as channel:
            schedules = pb_grpc.AnalyticsServiceStub(channel).ListSchedules(
                pb.ListSchedulesRequest(dataset_id=stored.id), timeout=10
            )
        assert [s.interval_seconds for s in schedules.schedules] == [900]
        # Switched off above, and the edit form kept it so.
        assert [s.enabled for s in schedules.schedules] == [False]
        screenshot(page, "dataset")


def test_a_viewer_sees_a_dataset_without_edit_controls(mesh: RunningStack, web: str, browser: Browser) -> None:
    name = f"viewer-{uuid.uuid4().hex[:8]}"
    _create_dataset(mesh, name)
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["viewer"])
        _open_dataset(page, name)
        expect(page.get_by_test_id("dataset-points")).to_have_text("0")
        for control in ("edit-dataset-submit", "delete-dataset", "csv-upload", "generate-sample", "run-analysis"):
            assert page.get_by_test_id(control).count() == 0, control
        assert page.get_by_test_id("schedule-form").count() == 0
        assert page.locator("input[type=file]").count() == 0

        navigate(page, "notifications")
        expect(
            page.get_by_test_id("subscriptions-table").or_(page.get_by_test_id("subscriptions-empty"))
        ).to_be_visible(timeout=WAIT_MS)
        assert page.get_by_test_id("subscription-form").count() == 0
        assert page.get_by_test_id("subscription-edit").count() == 0


def test_a_link_to_a_deleted_result_says_so(mesh: RunningStack, web: str, browser: Browser) -> None:
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["viewer"], then="dashboard")
        page.goto(f"{web}/results/{uuid.uuid4()}")
        expect(page.get_by_test_id("service-error")).to_have_text(
            "There is no such result: it may have been deleted, or the link is wrong", timeout=WAIT_MS
        )


def test_an_analyst_deletes_a_dataset(mesh: RunningStack, web: str, browser: Browser) -> None:
    name = f"doomed-{uuid.uuid4().hex[:8]}"
    _create_dataset(mesh, name)
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["analyst"])
        _open_dataset(page, name)
        page.get_by_test_id("delete-dataset").click()
        page.get_by_test_id("confirm-delete-dataset").click()
        page.wait_for_url("**/datasets", timeout=WAIT_MS)
        expect(page.get_by_test_id("datasets-table")).to_be_visible(timeout=WAIT_MS)
        # The search covers every dataset, on any page: none is left with that name.
        page.get_by_test_id("dataset-search").fill(name)
        expect(page.get_by_test_id("search-empty")).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_test_id("dataset-row").filter(has_text=name)).to_have_count(0)


def test_run_now_on_a_schedule_runs_it_with_its_parameters(mesh: RunningStack, web: str, browser: Browser) -> None:
    name = f"run-now-{uuid.uuid4().hex[:8]}"
    dataset_id = _create_dataset(mesh, name)
    parameters = analysis_pb2.AnalysisParameters(lookback_seconds=7200, histogram_bins=7, quantile_levels=[0.1, 0.9])
    with mesh.channel(mesh.analytics, "analyst") as channel:
        stub = pb_grpc.AnalyticsServiceStub(channel)
        stub.CreateSchedule(
            pb.CreateScheduleRequest(
                schedule=analysis_pb2.Schedule(
                    dataset_id=dataset_id,
                    kind=analysis_pb2.ANALYSIS_KIND_SUMMARY,
                    parameters=parameters,
                    interval_seconds=86_400,
                    enabled=False,
                )
            ),
            timeout=10,
        )
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["analyst"])
        _open_dataset(page, name)
        row = page.get_by_test_id("schedule-row")
        expect(row).to_have_count(1, timeout=WAIT_MS)
        row.get_by_test_id("schedule-run-now").click()
        expect(page.get_by_test_id("run-result-link")).to_be_visible(timeout=WAIT_MS)
    with mesh.channel(mesh.analytics, "viewer") as channel:
        listed = pb_grpc.AnalyticsServiceStub(channel).ListResults(
            pb.ListResultsRequest(dataset_id=dataset_id), timeout=10
        )
    assert len(listed.results) == 1
    assert listed.results[0].kind == analysis_pb2.ANALYSIS_KIND_SUMMARY
    assert listed.results[0].parameters == parameters
