"""The web app's pure logic behind the results, dataset, notifications and
mailbox pages: rows, filters and the requests they make, live updates merged
into the results table, chart data, CSV import reports, schedule and
subscription forms. No network, no browser."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from google.protobuf import timestamp_pb2

from mesh.analytics.v1 import analysis_pb2, analytics_service_pb2, dataset_pb2
from mesh.notify.v1 import subscription_pb2
from mesh_runtime.config import load_settings
from mesh_runtime.errors import NotFound, Unavailable

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
if str(WEB_DIR) not in sys.path:
    sys.path.insert(0, str(WEB_DIR))

from mesh_web import display, forecast_display, notify_display, result_display, service_clients  # noqa: E402

T0 = 1_780_000_000  # 2026-05-28 20:26:40 UTC
DATASET = "11111111-1111-4111-8111-111111111111"


def _stamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _result(result_id: str = "r1", **fields: object) -> analysis_pb2.Result:
    base: dict[str, object] = {
        "id": result_id,
        "dataset_id": DATASET,
        "dataset_name": "cpu-load",
        "kind": analysis_pb2.ANALYSIS_KIND_REPORT,
        "status": analysis_pb2.RESULT_STATUS_SUCCEEDED,
        "create_time": _stamp(T0),
        "start_time": _stamp(T0 + 1),
        "end_time": _stamp(T0 + 1.5),
        "anomaly_count": 3,
    }
    base.update(fields)
    return analysis_pb2.Result(**base)  # type: ignore[arg-type]


# --- results as rows ----------------------------------------------------------


def test_a_result_becomes_a_row_of_text() -> None:
    row = result_display.result_row(_result())
    assert (row.dataset_name, row.kind, row.status) == ("cpu-load", "report", "succeeded")
    assert row.created == "2026-05-28 20:26 UTC"
    assert row.duration == "0.5 s"
    assert (row.anomalies, row.has_anomalies) == ("3", True)
    assert row.origin == "on demand"


def test_a_pending_result_has_no_duration_and_no_anomaly_count_yet() -> None:
    result = _result(status=analysis_pb2.RESULT_STATUS_PENDING, anomaly_count=0)
    result.ClearField("start_time")
    result.ClearField("end_time")
    row = result_display.result_row(result)
    assert (row.status, row.duration, row.anomalies) == ("pending", display.MISSING, display.MISSING)


def test_a_scheduled_summary_says_so_and_shows_no_anomaly_count() -> None:
    row = result_display.result_row(_result(kind=analysis_pb2.ANALYSIS_KIND_SUMMARY, schedule_id="s1"))
    assert (row.origin, row.anomalies) == ("scheduled", display.MISSING)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (500.0, "500"),
        (12.3456, "12.35"),
        (0.001234, "0.001234"),
        (1234.5, "1,234.5"),
        (2_500_000.0, "2,500,000"),
        (-7.25, "-7.25"),
        (1e-7, "1.000e-07"),
        (math.nan, display.MISSING),
    ],
)
def test_numbers_are_short_and_readable(value: float, text: str) -> None:
    assert result_display.format_number(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.42, "0.4 s"), (12.0, "12 s"), (185.0, "3 min 5 s"), (7440.0, "2 h 4 min")]
)
def test_durations(seconds: float, text: str) -> None:
    assert result_display.format_duration(seconds) == text


# --- filters and the request they make ----------------------------------------


def test_no_filter_asks_for_everything_newest_first() -> None:
    request = result_display.list_results_request(result_display.ResultFilters(), 25)
    assert request == analytics_service_pb2.ListResultsRequest(order_by="create_time desc", page_size=25)
    assert not request.HasField("has_anomalies")


def test_every_filter_reaches_the_request() -> None:
    filters = result_display.ResultFilters(
        dataset_id=DATASET,
        kind="trend",
        status="failed",
        anomalies="without",
        created_after="2026-11-01",
        created_before="2026-11-29",
        order="started, oldest",
    )
    request = result_display.list_results_request(filters, 25, "token-2")
    assert request.dataset_id == DATASET
    assert request.kind == analysis_pb2.ANALYSIS_KIND_TREND
    assert request.status == analysis_pb2.RESULT_STATUS_FAILED
    assert request.HasField("has_anomalies") and request.has_anomalies is False
    assert request.created_after.ToJsonString() == "2026-11-01T00:00:00Z"
    # The "until" day is included: results created before the next midnight.
    assert request.created_before.ToJsonString() == "2026-11-30T00:00:00Z"
    assert (request.order_by, request.page_token) == ("start_time asc", "token-2")


def test_a_malformed_date_names_its_field() -> None:
    with pytest.raises(ValueError, match="created from"):
        result_display.list_results_request(result_display.ResultFilters(created_after="29/11/2026"), 25)


def test_an_empty_date_range_is_refused() -> None:
    filters = result_display.ResultFilters(created_after="2026-11-29", created_before="2026-11-01")
    with pytest.raises(ValueError, match="must not be after"):
        result_display.list_results_request(filters, 25)


def test_one_day_is_a_valid_range() -> None:
    filters = result_display.ResultFilters(created_after="2026-11-29", created_before="2026-11-29")
    request = result_display.list_results_request(filters, 25)
    assert request.created_before.seconds - request.created_after.seconds == 86_400


# --- live updates merged into the table ---------------------------------------


def _rows(*ids: str) -> list[result_display.ResultRow]:
    return [result_display.result_row(_result(i)) for i in ids]


def _everything() -> analytics_service_pb2.ListResultsRequest:
    return result_display.list_results_request(result_display.ResultFilters(), 25)


def test_a_new_result_appears_at_the_top_of_a_newest_first_table() -> None:
    rows = result_display.rows_after_update(_rows("a", "b"), _result("new"), _everything())
    assert [r.id for r in rows] == ["new", "a", "b"]


def test_a_shown_result_is_updated_in_place() -> None:
    shown = [
        result_display.result_row(_result("a", status=analysis_pb2.RESULT_STATUS_RUNNING)),
        *_rows("b"),
    ]
    rows = result_display.rows_after_update(shown, _result("a"), _everything())
    assert [(r.id, r.status) for r in rows] == [("a", "succeeded"), ("b", "succeeded")]


def test_a_result_of_another_dataset_stays_out_of_a_filtered_table() -> None:
    request = result_display.list_results_request(result_display.ResultFilters(dataset_id=DATASET), 25)
    other = _result("x", dataset_id="22222222-2222-4222-8222-222222222222")
    assert [r.id for r in result_display.rows_after_update(_rows("a"), other, request)] == ["a"]


def test_a_result_that_leaves_the_status_filter_leaves_the_table() -> None:
    request = result_display.list_results_request(result_display.ResultFilters(status="running"), 25)
    shown = [result_display.result_row(_result("a", status=analysis_pb2.RESULT_STATUS_RUNNING))]
    assert result_display.rows_after_update(shown, _result("a"), request) == []


def test_an_oldest_first_table_gets_new_results_at_the_end() -> None:
    request = result_display.list_results_request(result_display.ResultFilters(order="oldest"), 25)
    assert [r.id for r in result_display.rows_after_update(_rows("a"), _result("new"), request)] == ["a", "new"]


@pytest.mark.parametrize(
    ("anomalies", "count", "shown"), [("with", 0, False), ("with", 2, True), ("without", 2, False), ("any", 2, True)]
)
def test_the_anomaly_filter_applies_to_live_results(anomalies: str, count: int, shown: bool) -> None:
    request = result_display.list_results_request(result_display.ResultFilters(anomalies=anomalies), 25)
    assert result_display.matches_filters(_result(anomaly_count=count), request) is shown


def test_the_created_range_applies_to_live_results() -> None:
    filters = result_display.ResultFilters(created_after="2026-05-29")
    request = result_display.list_results_request(filters, 25)
    assert not result_display.matches_filters(_result(), request)  # created 2026-05-28


# --- one result: numbers and charts -------------------------------------------


def _report_output() -> analysis_pb2.ResultOutput:
    return analysis_pb2.ResultOutput(
        summary=analysis_pb2.SummaryStatistics(count=240, mean=12.5, std=3.25, min=9.7, max=500.0),
        quantiles=[analysis_pb2.Quantile(level=0.5, value=11.2), analysis_pb2.Quantile(level=0.95, value=12.3)],
        trend=analysis_pb2.Trend(slope_per_second=1 / 86_400, intercept=10, r_squared=0.42),
        anomalies=analysis_pb2.AnomalyReport(median=11.2, mad=0.6, threshold=3.5, anomaly_count=1),
    )


def test_the_numbers_of_a_report_with_the_unit() -> None:
    figures = result_display.result_figures(_result(output=_report_output()), unit="ms")
    shown = {f.label: f.value for f in figures}
    assert shown["points"] == "240"
    assert shown["maximum"] == "500 ms"
    assert shown["p50"] == "11.2 ms"
    assert shown["p95"] == "12.3 ms"
    assert shown["trend per day"] == "1 ms"
    assert shown["trend fit (R²)"] == "0.42"
    assert shown["anomalies"] == "1"


def test_a_correlation_without_a_coefficient_shows_a_dash() -> None:
    output = analysis_pb2.ResultOutput(
        correlation=analysis_pb2.Correlation(other_dataset_name="latency-ms", aligned_count=1)
    )
    shown = {f.label: f.value for f in result_display.result_figures(_result(output=output))}
    assert shown == {"correlated with": "latency-ms", "Pearson r": display.MISSING, "aligned points": "1"}


def test_the_series_chart_marks_each_anomaly_on_the_nearest_point() -> None:
    minute = 60_000_000
    series = analysis_pb2.ResultSeries(
        timestamps_us=[T0 * 1_000_000 + i * minute for i in range(4)],
        values=[1.0, 2.0, 500.0, float("nan")],
        trend=[1.0, 1.1, 1.2, 1.3],
    )
    # The series was reduced: the anomaly's own timestamp is 10 s after the kept point.
    anomaly = analysis_pb2.Anomaly(timestamp_us=T0 * 1_000_000 + 2 * minute + 10_000_000, value=500.0, score=40)
    rows = result_display.series_chart(series, [anomaly])
    assert [r["anomaly"] for r in rows] == [None, None, 500.0, None]
    assert [r["trend"] for r in rows] == [1.0, 1.1, 1.2, 1.3]
    assert rows[3]["value"] is None  # NaN is not drawn
    assert "moving_average" not in rows[0]
    assert rows[0]["time"] == "05-28 20:26"


def test_the_series_chart_and_anomaly_table_cover_year_1_to_9999() -> None:
    first, last = -62_135_596_800_000_000, 253_402_300_799_999_999
    series = analysis_pb2.ResultSeries(timestamps_us=[first, last], values=[1.0, 2.0])
    anomaly = analysis_pb2.Anomaly(timestamp_us=last, value=2.0, score=9)
    assert [r["time"] for r in result_display.series_chart(series, [anomaly])] == ["01-01 00:00", "12-31 23:59"]
    event = analysis_pb2.AnomalyEvent(start_us=first, end_us=last, peak_us=last, peak_value=2.0, score=9)
    row = result_display.anomaly_rows([event])[0]
    assert row["time"].startswith("9999-12-31 23:59:59")
    assert row["lasted"].endswith("1-01-01 00:00:00 UTC → 9999-12-31 23:59:59 UTC")


def test_anomaly_events_show_expected_value_and_the_figures_say_method_periods_and_trend_confidence() -> None:
    t0 = 1_700_000_000_000_000
    event = analysis_pb2.AnomalyEvent(start_us=t0, end_us=t0, peak_us=t0, peak_value=140.0, expected=52.5, score=9.1)
    row = result_display.anomaly_rows([event])[0]
    assert (row["value"], row["expected"], row["lasted"]) == ("140", "52.5", "")
    output = analysis_pb2.ResultOutput(
        anomalies=analysis_pb2.AnomalyReport(
            method="seasonal", periods_seconds=[86_400, 604_800], periods_origin="detected", anomaly_count=1
        ),
        trend=analysis_pb2.Trend(
            slope_per_second=1 / 86_400,
            uncertainty=analysis_pb2.TrendUncertainty(
                slope_ci_low=-0.5 / 86_400, slope_ci_high=2.5 / 86_400, p_value=0.3, significant=False
            ),
        ),
    )
    shown = {f.label: f.value for f in result_display.result_figures(analysis_pb2.Result(output=output))}
    assert shown["cycles removed"] == "1 d, 7 d (detected)"
    assert shown["trend per day, 95% interval"] == "-0.5 to 2.5"
    assert shown["trend vs noise"] == "not distinguishable"


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({}, analysis_pb2.AnalysisParameters()),
        (
            {"anomaly_method": "seasonal", "sensitivity": "3", "periods": "86400, 604800"},
            analysis_pb2.AnalysisParameters(anomaly_threshold=3, seasonal_periods_seconds=[86400, 604800]),
        ),
        ({"anomaly_method": "global"}, analysis_pb2.AnalysisParameters(anomaly_method=2)),
        ({"kind": "forecast", "horizon": " 48 "}, analysis_pb2.AnalysisParameters(forecast_horizon=48)),
    ],
)
def test_the_run_form_turns_into_anomaly_parameters(
    form: dict[str, str], expected: analysis_pb2.AnalysisParameters
) -> None:
    assert result_display.anomaly_form_parameters(form) == expected


@pytest.mark.parametrize(
    ("form", "line"),
    [
        ({"sensitivity": "x"}, "sensitivity"),
        ({"periods": "day"}, "periods"),
        ({"kind": "forecast"}, "horizon: enter how many steps"),
        ({"kind": "forecast", "horizon": "10001"}, "1 to 10,000"),
    ],
)
def test_the_run_form_says_what_is_wrong_with_anomaly_parameters(form: dict[str, str], line: str) -> None:
    with pytest.raises(ValueError, match=line):
        result_display.anomaly_form_parameters(form)


def test_an_empty_series_has_no_chart_rows() -> None:
    assert result_display.series_chart(analysis_pb2.ResultSeries(), [analysis_pb2.Anomaly(timestamp_us=1)]) == []


def test_histogram_bars_are_labelled_with_their_range() -> None:
    histogram = analysis_pb2.Histogram(edges=[0.0, 0.5, 1.0], counts=[3, 7])
    assert result_display.histogram_chart(histogram) == [
        {"bin": "0–0.5", "count": 3},
        {"bin": "0.5–1", "count": 7},
    ]


def test_the_series_caption_counts_points_and_anomalies() -> None:
    assert result_display.series_caption(50_000, 0) == "50,000 points analysed"
    assert result_display.series_caption(240, 1) == "240 points analysed · 1 anomaly (red dots)"


# --- schedules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "text"),
    [
        (analysis_pb2.Schedule(interval_seconds=3600), "every 1 h"),
        (analysis_pb2.Schedule(interval_seconds=900), "every 15 min"),
        (analysis_pb2.Schedule(interval_seconds=90), "every 90 s"),
        (analysis_pb2.Schedule(interval_seconds=172_800), "every 2 d"),
        (analysis_pb2.Schedule(cron="*/5 * * * *"), "cron */5 * * * * (UTC)"),
        (analysis_pb2.Schedule(cron="0 6 * * MON", time_zone="Europe/Paris"), "cron 0 6 * * MON (Europe/Paris)"),
    ],
)
def test_schedule_triggers_in_words(schedule: analysis_pb2.Schedule, text: str) -> None:
    assert result_display.trigger_text(schedule) == text


def test_the_schedule_form_makes_an_interval_schedule() -> None:
    schedule = result_display.schedule_from_form(
        DATASET, {"kind": "trend", "trigger_kind": "interval", "trigger_value": " 600 ", "enabled": "on"}
    )
    assert schedule == analysis_pb2.Schedule(
        dataset_id=DATASET, kind=analysis_pb2.ANALYSIS_KIND_TREND, interval_seconds=600, enabled=True
    )
    assert result_display.schedule_update_fields(schedule) == ["kind", "interval_seconds", "time_zone", "enabled"]


def test_the_schedule_form_makes_a_disabled_cron_schedule() -> None:
    schedule = result_display.schedule_from_form(
        DATASET, {"kind": "report", "trigger_kind": "cron", "trigger_value": "0 6 * * *", "time_zone": "UTC"}
    )
    assert (schedule.cron, schedule.time_zone, schedule.enabled) == ("0 6 * * *", "UTC", False)
    assert result_display.schedule_update_fields(schedule) == ["kind", "cron", "time_zone", "enabled"]


def test_the_schedule_form_makes_a_forecast_schedule_with_its_horizon() -> None:
    schedule = result_display.schedule_from_form(
        DATASET, {"kind": "forecast", "horizon": "24", "trigger_kind": "interval", "trigger_value": "3600"}
    )
    assert (schedule.kind, schedule.parameters.forecast_horizon) == (analysis_pb2.ANALYSIS_KIND_FORECAST, 24)
    assert result_display.schedule_update_fields(schedule)[-1] == "parameters"
    assert "forecast" in result_display.RUNNABLE_KINDS
    # Editing keeps the parameters the form does not show.
    current = analysis_pb2.AnalysisParameters(forecast_horizon=12, seasonal_periods_seconds=[604_800])
    edited = result_display.schedule_from_form(
        DATASET, {"kind": "forecast", "horizon": "48", "trigger_value": "3600"}, current
    )
    assert edited.parameters == analysis_pb2.AnalysisParameters(forecast_horizon=48, seasonal_periods_seconds=[604_800])


@pytest.mark.parametrize(
    ("form", "problem"),
    [
        ({"kind": "forecast", "trigger_value": "60"}, "horizon: enter"),
        ({"trigger_kind": "interval", "trigger_value": "hourly"}, "interval: enter a whole number"),
        ({"trigger_kind": "cron", "trigger_value": ""}, "cron: enter an expression"),
        ({"kind": "any", "trigger_value": "60"}, "kind: choose"),
    ],
)
def test_a_bad_schedule_form_says_what_to_fix(form: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        result_display.schedule_from_form(DATASET, form)


def test_a_schedule_row_keeps_what_the_edit_form_needs() -> None:
    schedule = analysis_pb2.Schedule(
        id="s1", kind=analysis_pb2.ANALYSIS_KIND_ANOMALIES, cron="*/15 * * * *", enabled=True, last_result_id="r9"
    )
    row = result_display.schedule_row(schedule)
    assert (row.kind, row.trigger_kind, row.trigger_value, row.enabled) == ("anomalies", "cron", "*/15 * * * *", True)
    assert (row.next_run, row.last_result_id) == (display.MISSING, "r9")


# --- datasets: edits, search, CSV imports ---------------------------------------


def test_only_changed_dataset_fields_are_sent() -> None:
    current = dataset_pb2.Dataset(name="cpu", description="old", unit="%")
    assert display.dataset_update_fields(current, "cpu", "new", "%") == ["description"]
    assert display.dataset_update_fields(current, "cpu", "old", "%") == []


def test_the_search_matches_name_description_or_unit_in_any_case() -> None:
    rows = [
        display.dataset_row(dataset_pb2.Dataset(id="1", name="cpu-load", description="Web tier", unit="%")),
        display.dataset_row(dataset_pb2.Dataset(id="2", name="latency", description="p50 API", unit="ms")),
    ]
    assert [r.id for r in display.filter_rows(rows, "WEB")] == ["1"]
    assert [r.id for r in display.filter_rows(rows, "ms")] == ["2"]
    assert [r.id for r in display.filter_rows(rows, "  ")] == ["1", "2"]
    assert display.filter_rows(rows, "orders") == []


def test_an_import_report_lists_each_rejected_line() -> None:
    response = analytics_service_pb2.ImportCsvResponse(
        accepted_count=3,
        rejected_count=1,
        rejected_lines=[analytics_service_pb2.RejectedCsvLine(line=3, reason="value 'x' is not a number")],
    )
    report = display.import_report("points.csv", response)
    assert report.summary == "points.csv: 3 points stored, 1 line rejected"
    assert report.rejected_lines == ["line 3: value 'x' is not a number"]


def test_an_import_report_says_how_many_rejections_were_not_listed() -> None:
    response = analytics_service_pb2.ImportCsvResponse(
        accepted_count=1000,
        rejected_count=1500,
        rejected_lines=[analytics_service_pb2.RejectedCsvLine(line=i, reason="bad") for i in range(2, 1002)],
    )
    report = display.import_report("big.csv", response)
    assert report.summary == "big.csv: 1,000 points stored, 1,500 lines rejected"
    assert report.rejected_lines[-1] == "… and 500 more"


def test_a_clean_import_reports_no_lines() -> None:
    report = display.import_report("ok.csv", analytics_service_pb2.ImportCsvResponse(accepted_count=2))
    assert (report.summary, report.rejected_lines) == ("ok.csv: 2 points stored", [])


@pytest.mark.parametrize(
    ("progress", "percent"),
    [({"progress": 0.426}, 43), ({"progress": 1}, 100), ({"progress": 7}, 100), ({}, 0), ({"progress": "x"}, 0)],
)
def test_upload_progress_as_a_percentage(progress: dict[str, object], percent: int) -> None:
    assert display.upload_percent(progress) == percent


def test_a_missing_dataset_or_result_is_said_plainly() -> None:
    assert display.missing_item_text("result", "analytics", NotFound("result", "x")).startswith(
        "There is no such result"
    )
    assert display.missing_item_text("dataset", "analytics", Unavailable("down")) == (
        "analytics service unavailable: down"
    )


# --- health -----------------------------------------------------------------------


def test_a_service_that_answers_its_health_check_shows_its_status() -> None:
    assert display.health_row("llm", "serving") == display.HealthRow("llm", "serving", "")


def test_a_service_that_cannot_be_reached_is_down_and_says_why() -> None:
    row = display.health_row("notify", Unavailable("connection refused"))
    assert row == display.HealthRow("notify", "down", "notify service unavailable: connection refused")


# --- subscriptions, deliveries, the mailbox -----------------------------------------


def test_the_subscription_form_with_every_event_means_every_event() -> None:
    form = {
        "email": " ada@example.com ",
        "display_name": "Ada",
        "dataset_id": DATASET,
        "event_result_succeeded": "on",
        "event_result_failed": "on",
        "event_anomaly_detected": "on",
        "min_anomaly_count": "",
    }
    assert notify_display.subscription_from_form(form) == subscription_pb2.Subscription(
        email="ada@example.com", display_name="Ada", dataset_ids=[DATASET]
    )


def test_the_subscription_form_with_some_events_and_every_dataset() -> None:
    form = {"email": "ops@example.com", "dataset_id": "all", "event_anomaly_detected": "on", "min_anomaly_count": "5"}
    subscription = notify_display.subscription_from_form(form, "sub-1")
    assert list(subscription.event_types) == [subscription_pb2.EVENT_TYPE_ANOMALY_DETECTED]
    assert (subscription.id, list(subscription.dataset_ids), subscription.min_anomaly_count) == ("sub-1", [], 5)


def test_a_non_numeric_anomaly_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="minimum anomalies"):
        notify_display.subscription_from_form({"email": "a@b.c", "min_anomaly_count": "some"})


def test_a_subscription_row_names_its_datasets_and_events() -> None:
    subscription = subscription_pb2.Subscription(
        id="s",
        email="ada@example.com",
        dataset_ids=[DATASET],
        event_types=[subscription_pb2.EVENT_TYPE_ANOMALY_DETECTED, subscription_pb2.EVENT_TYPE_RESULT_FAILED],
    )
    row = notify_display.subscription_row(subscription, {DATASET: "cpu-load"})
    assert (row.datasets, row.dataset_id) == ("cpu-load", DATASET)
    assert row.events == "result failed, anomaly detected"
    assert (row.event_succeeded, row.event_failed, row.event_anomaly) == (False, True, True)
    assert row.display_name == display.MISSING


def test_a_subscription_without_filters_gets_everything() -> None:
    row = notify_display.subscription_row(subscription_pb2.Subscription(email="a@b.c"), {})
    assert (row.datasets, row.events, row.dataset_id) == ("every dataset", "every event", "")
    assert row.event_succeeded and row.event_failed and row.event_anomaly
    assert (row.enabled, row.state) == (True, "mailing")


def test_an_unsubscribed_subscription_row_says_so() -> None:
    row = notify_display.subscription_row(subscription_pb2.Subscription(email="a@b.c", disabled=True), {})
    assert (row.enabled, row.state) == (False, "unsubscribed")


def test_a_delivery_row_tells_a_test_e_mail_and_a_failure() -> None:
    delivery = subscription_pb2.Delivery(
        event_id="test-123", status=subscription_pb2.DELIVERY_STATUS_FAILED, attempts=2, last_error="refused"
    )
    row = notify_display.delivery_row(delivery)
    assert (row.event, row.status, row.attempts, row.error) == ("test e-mail", "failed, will retry", "2", "refused")


def test_mailbox_rows_from_the_mailpit_listing() -> None:
    listing = {
        "total": 3,
        "messages": [
            {
                "ID": "m1",
                "From": {"Name": "Analytics Mesh", "Address": "mesh@localhost"},
                "To": [{"Name": "", "Address": "ada@example.com"}],
                "Subject": "cpu-load: 1 anomaly",
                "Created": "2026-11-29T05:10:00.123+01:00",
                "Snippet": "Hello Ada",
            }
        ],
    }
    rows = notify_display.mail_rows(listing)
    assert rows == [
        notify_display.MailRow(
            id="m1",
            sender="Analytics Mesh <mesh@localhost>",
            recipients="ada@example.com",
            subject="cpu-load: 1 anomaly",
            received="2026-11-29 04:10 UTC",
            snippet="Hello Ada",
        )
    ]
    assert notify_display.mailbox_summary(3, rows) == "Showing the newest 1 of 3 messages"
    assert notify_display.mailbox_summary(1, rows) == "1 message"


def test_a_message_body_falls_back_from_text_to_html() -> None:
    assert notify_display.mail_body({"Text": "plain\n"}) == "plain"
    assert notify_display.mail_body({"Text": "", "HTML": "<p>A &amp; B</p>"}) == "A & B"
    assert notify_display.mail_body({}) == "(empty message)"


# --- where the other services are ---------------------------------------------------


def test_the_other_services_default_to_the_local_stack() -> None:
    settings = load_settings(service_clients.ServiceSettings, environ={})
    assert (settings.notify_addr, settings.llm_addr) == ("127.0.0.1:50053", "127.0.0.1:50052")
    assert (settings.rest_base_url, settings.mail_api_url) == ("http://127.0.0.1:18080", "http://127.0.0.1:18025")


def test_http_urls_lose_their_trailing_slash_and_need_a_scheme() -> None:
    assert service_clients.parse_http_url(" http://mail:8025/ ") == "http://mail:8025"
    for bad in ("mail:8025", "ftp://mail", "http://"):
        with pytest.raises(ValueError, match="http"):
            service_clients.parse_http_url(bad)


# --- forecasts ------------------------------------------------------------------


def test_forecast_rows_put_the_bands_after_the_series_and_join_the_lines() -> None:
    series = analysis_pb2.ResultSeries(timestamps_us=[0, 3_600_000_000], values=[1.0, 2.0])
    forecast = analysis_pb2.Forecast(
        model="holt_winters",
        holdout_mase=0.5,
        points=[
            analysis_pb2.ForecastPoint(
                timestamp_us=2 * 3_600_000_000, value=3.0, lower_80=2.5, upper_80=3.5, lower_95=2.0, upper_95=4.0
            )
        ],
    )
    rows = forecast_display.forecast_rows(series, forecast)
    assert [r["value"] for r in rows] == [1.0, 2.0, None]
    assert [r["forecast"] for r in rows] == [None, 2.0, 3.0]
    assert rows[-1]["band_80"] == [2.5, 3.5] and rows[-1]["band_95"] == [2.0, 4.0]
    assert forecast_display.forecast_caption(forecast, "kW") == (
        "1 steps · Holt-Winters (holdout MASE 0.5) · expected 3 ± 1 kW by 01-01 02:00 (95%)"
    )
