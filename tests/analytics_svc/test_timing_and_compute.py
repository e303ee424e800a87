"""Pure logic of schedules (when they fire) and of turning analyses into results."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
import pytest

from analytics_svc.analyses import compute
from analytics_svc.jobs import messages
from analytics_svc.results import store as result_store
from analytics_svc.schedules import timing
from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh_runtime.errors import InvalidArgument
from mesh_runtime.wire import MAX_TIMESTAMP_US, MIN_TIMESTAMP_US

UTC = dt.UTC


def t(hour: int, minute: int = 0, second: int = 0, day: int = 2) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


def test_interval_first_run_is_one_interval_after_creation() -> None:
    assert timing.first_run(timing.Trigger(interval_seconds=90), t(10)) == t(10, 1, 30)


def test_interval_keeps_its_grid_and_fires_once_for_missed_ticks() -> None:
    every_minute = timing.Trigger(interval_seconds=60)
    assert timing.next_run(every_minute, t(10), t(10, 0, 1)) == t(10, 1)
    # The scheduler was down for 10 minutes: one firing, then back on the grid.
    assert timing.next_run(every_minute, t(10), t(10, 10, 30)) == t(10, 11)


def test_cron_follows_the_time_zone_across_daylight_saving() -> None:
    paris_six = timing.Trigger(cron="0 6 * * *", time_zone="Europe/Paris")
    # 2026-03-29: clocks go forward in Paris; 06:00 local is 05:00 UTC before, 04:00 UTC after.
    assert timing.first_run(paris_six, t(12, day=28)) == t(4, day=29)
    assert timing.first_run(paris_six, t(12, day=27)) == t(5, day=28)
    weekdays = timing.Trigger(cron="30 9 * * MON-FRI")
    saturday = dt.datetime(2026, 3, 7, 12, tzinfo=UTC)
    assert timing.first_run(weekdays, saturday) == dt.datetime(2026, 3, 9, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("trigger", "field"),
    [
        (timing.Trigger(), "schedule.trigger"),
        (timing.Trigger(interval_seconds=60, cron="* * * * *"), "schedule.trigger"),
        (timing.Trigger(cron="61 * * * *"), "schedule.cron"),
        (timing.Trigger(cron="* * * *"), "schedule.cron"),
        (timing.Trigger(cron="* * * * *", time_zone="Mars/Olympus"), "schedule.time_zone"),
    ],
)
def test_bad_triggers_name_the_field(trigger: timing.Trigger, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        timing.validate(trigger)
    assert caught.value.violations[0].field == field


def test_downsampling_keeps_extremes_in_time_order() -> None:
    values = np.sin(np.linspace(0, 20, 10_000))
    values[1234] = 50.0
    values[8765] = -50.0
    keep = compute.downsample_indices(values, 100)
    assert len(keep) <= 100
    assert np.all(np.diff(keep) > 0)
    assert {1234, 8765} <= set(keep.tolist())
    assert compute.downsample_indices(values[:50], 100).tolist() == list(range(50))


def test_run_report_matches_numpy() -> None:
    ts = 1_700_000_000_000_000 + np.arange(1000, dtype=np.int64) * 1_000_000
    values = np.random.default_rng(5).normal(10, 2, 1000)
    out = compute.run(apb.ANALYSIS_KIND_REPORT, apb.AnalysisParameters(histogram_bins=7), ts, values)
    assert out.output.summary.mean == pytest.approx(values.mean())
    assert out.output.summary.std == pytest.approx(values.std())
    assert list(out.output.histogram.counts) == np.histogram(values, 7)[0].tolist()
    assert out.window_start_us == ts[0] and out.window_end_us == ts[-1]
    names = [n.name for n in compute.key_numbers(out.output)]
    assert names[:5] == ["count", "mean", "std", "min", "max"] and "slope per day" in names


def test_run_fails_with_a_user_message_when_there_is_nothing_to_analyse() -> None:
    empty = np.array([], dtype=np.int64)
    with pytest.raises(compute.AnalysisFailed, match="no points"):
        compute.run(apb.ANALYSIS_KIND_SUMMARY, apb.AnalysisParameters(), empty, np.array([]))
    one = np.array([1], dtype=np.int64)
    with pytest.raises(compute.AnalysisFailed, match="two points"):
        compute.run(apb.ANALYSIS_KIND_TREND, apb.AnalysisParameters(), one, np.array([1.0]))


def test_top_anomalies_are_the_largest_events_largest_first() -> None:
    output = apb.ResultOutput()
    output.anomalies.events.extend(
        apb.AnomalyEvent(start_us=i, end_us=i + 1, peak_us=i, peak_value=float(i), expected=1.0, score=float(s))
        for i, s in enumerate([5, -9, 4, 8, -4.5])
    )
    top = compute.top_anomalies(output, 3)
    assert [a.timestamp_us for a in top] == [1, 3, 0]
    assert [(a.start_us, a.end_us, a.expected) for a in top] == [(1, 2, 1.0), (3, 4, 1.0), (0, 1, 1.0)]


def _finished(result_id: str, dataset_id: str = "d1", **overrides: object) -> apb.Result:
    fields: dict[str, object] = {
        "id": result_id,
        "dataset_id": dataset_id,
        "status": apb.RESULT_STATUS_SUCCEEDED,
        "insight": apb.Insight(status=apb.INSIGHT_STATUS_READY, text="x" * 100),
    }
    fields.update(overrides)
    return apb.Result(**fields)  # type: ignore[arg-type]


def test_only_results_that_cannot_change_are_cached() -> None:
    from analytics_svc.results.read_caches import FinishedResults

    cache = FinishedResults()
    generation = cache.generation
    cache.put(_finished("pending", status=apb.RESULT_STATUS_RUNNING), generation)
    cache.put(_finished("insight", insight=apb.Insight(status=apb.INSIGHT_STATUS_PENDING)), generation)
    cache.put(_finished("done"), generation)
    assert cache.get("pending") is None and cache.get("insight") is None
    assert cache.get("done") is not None


def test_a_read_that_raced_with_a_change_is_not_cached_and_changes_evict() -> None:
    from analytics_svc.results.read_caches import FinishedResults

    cache = FinishedResults()
    before = cache.generation
    cache.forget("other")  # a change was notified while the read ran
    cache.put(_finished("r1"), before)
    assert cache.get("r1") is None
    cache.put(_finished("r1"), cache.generation)
    cache.put(_finished("r2", dataset_id="d2"), cache.generation)
    cache.forget_dataset("d1")
    assert cache.get("r1") is None and cache.get("r2") is not None
    cache.clear()
    assert cache.get("r2") is None


def test_the_cache_keeps_within_its_byte_budget() -> None:
    from analytics_svc.results.read_caches import FinishedResults

    one = _finished("0").ByteSize()
    cache = FinishedResults(max_bytes=one * 3)
    for index in range(10):
        cache.put(_finished(str(index)), cache.generation)
    assert [cache.get(str(i)) is not None for i in range(10)] == [False] * 7 + [True] * 3


def _page(*result_ids: str) -> pb.ListResultsResponse:
    return pb.ListResultsResponse(results=[_finished(i) for i in result_ids], next_page_token="t")


def test_a_page_is_served_until_its_dataset_changes() -> None:
    from analytics_svc.results.read_caches import ResultPages

    pages = ResultPages()
    for key, dataset in (("d1-page", "d1"), ("d2-page", "d2"), ("all-page", "")):
        pages.put(key, dataset, pages.stamp(dataset), _page(key))
    assert pages.get("d1-page", "d1") == _page("d1-page")
    pages.changed("d2")  # a result of d2 was created or changed
    assert pages.get("d1-page", "d1") == _page("d1-page")
    assert pages.get("d2-page", "d2") is None
    assert pages.get("all-page", "") is None  # a list across datasets may show d2's result
    pages.changed(None)  # a change naming no dataset: nothing can be trusted
    assert pages.get("d1-page", "d1") is None


def test_a_page_read_while_its_dataset_changed_is_not_kept() -> None:
    from analytics_svc.results.read_caches import ResultPages

    pages = ResultPages()
    before = pages.stamp("d1")
    pages.changed("d1")  # notified while the database read ran
    pages.put("k", "d1", before, _page("old"))
    assert pages.get("k", "d1") is None
    before_other = pages.stamp("d1")
    pages.changed("d2")
    pages.put("k", "d1", before_other, _page("new"))
    assert pages.get("k", "d1") == _page("new")
    pages.clear()  # the listen connection was lost
    assert pages.get("k", "d1") is None


def test_pages_keep_within_their_byte_budget_dropping_the_least_recently_used() -> None:
    from analytics_svc.results.read_caches import ResultPages

    one = _page("0").ByteSize()
    pages = ResultPages(max_bytes=one * 3)
    for index in range(3):
        pages.put(str(index), "d", pages.stamp("d"), _page(str(index)))
    assert pages.get("0", "d") is not None  # now the most recently used
    pages.put("3", "d", pages.stamp("d"), _page("3"))
    assert [pages.get(str(i), "d") is not None for i in range(4)] == [True, False, True, True]


def test_a_cache_of_no_bytes_keeps_nothing() -> None:
    from analytics_svc.results.read_caches import FinishedResults, ResultPages

    pages, finished = ResultPages(max_bytes=0), FinishedResults(max_bytes=0)
    pages.put("k", "d", pages.stamp("d"), _page("1"))
    finished.put(_finished("1"), finished.generation)
    assert pages.get("k", "d") is None and finished.get("1") is None


def test_analyses_cover_the_whole_timestamp_range() -> None:
    # Year 1 to year 9999: what a Timestamp holds and datetime64[ns] does not.
    ts = np.array([MIN_TIMESTAMP_US, -1, 0, MAX_TIMESTAMP_US], dtype=np.int64)
    values = np.array([1.0, 2.0, 3.0, 40.0])
    out = compute.run(apb.ANALYSIS_KIND_REPORT, apb.AnalysisParameters(), ts, values)
    assert out.output.trend.origin_time.ToDatetime(dt.UTC) == dt.datetime(1, 1, 1, tzinfo=dt.UTC)
    assert (out.window_start_us, out.window_end_us) == (MIN_TIMESTAMP_US, MAX_TIMESTAMP_US)
    assert out.output.trend.slope_per_second > 0
    row = result_store.ResultRow(
        id=uuid.uuid4(), dataset_id=uuid.uuid4(), dataset_name="ages", kind=apb.ANALYSIS_KIND_REPORT
    )
    events = messages.success_events(row, out, unit="", insight="", occur_time=dt.datetime.now(UTC))
    succeeded = events[0].result_succeeded
    assert succeeded.window_end.ToDatetime(dt.UTC) == dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
    series = compute.chart_series(apb.ANALYSIS_KIND_REPORT, apb.AnalysisParameters(), out.output, ts, values, 10)
    assert list(series.timestamps_us) == ts.tolist()
