"""Analyses over chunks in bounded memory, on real PostgreSQL, against the in-memory
computation of the same window; and the same chunk work on a real local Dask cluster
(a scheduler and two worker processes reading PostgreSQL themselves)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from analytics_svc.analyses import chunked, compute, forecast, seasonal, streaming
from analytics_svc.analyses.distributed import DaskCluster
from analytics_svc.datasets import store as dataset_store
from analytics_svc.points import store
from mesh.analytics.v1 import analysis_pb2 as apb
from tests.conftest import RunningStack

T0 = 1_700_000_000_000_000
MINUTE = 60_000_000
N = 120_000  # 83 days a minute apart: a dozen week-wide chunks
# 1 MB: windows over ~5,000 points go over chunks, in batches of ~6,500 points.
TINY = chunked.Budget.of(1)
AMPLE = chunked.Budget.of(1024)


def _series(seed: int, n: int = N) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(n, dtype=np.int64) * MINUTE
    x = np.arange(n, dtype=np.float64)
    # Bounded noise: no point lies near an anomaly threshold, so approximate and exact medians flag alike.
    values = 100 + 10 * np.sin(2 * np.pi * x / 1440) + 1e-4 * x + rng.uniform(-1, 1, n)
    # About five days apart: spikes less than a cycle apart would be one event.
    spikes = 3000 + np.arange(15) * ((n - 6000) // 15) + rng.integers(0, 1440, 15)
    values[spikes] += rng.choice([-1, 1], spikes.size) * 40
    return ts, values, ts[spikes]


@pytest.fixture(scope="module")
def datasets(bound_store: None) -> tuple[str, str, np.ndarray, np.ndarray, np.ndarray]:
    ts, values, spikes = _series(1)
    ids = []
    for seed in (1, 2):
        dataset = dataset_store.create_dataset(dataset_store.NewDataset(name=f"chunked-{uuid.uuid4().hex[:8]}"))
        other_ts, other_values, _ = _series(seed)
        if seed == 2:  # every other minute, values related to the first series
            other_ts, other_values = other_ts[::2], values[::2] * 0.5 + other_values[::2]
        store.append_points(str(dataset.id), other_ts, other_values)
        ids.append(str(dataset.id))
    return ids[0], ids[1], ts, values, spikes


# Mid-chunk bounds: the first and last chunk are cut.
START, END = T0 + 1234 * MINUTE + 17, T0 + (N - 2345) * MINUTE + 5


def _run(kind: int, dataset_id: str, budget: chunked.Budget, other: str | None = None,
         **parameters: object) -> apb.ResultOutput:  # fmt: skip
    p = apb.AnalysisParameters(**parameters)  # type: ignore[arg-type]
    found = chunked.execute(kind, p, dataset_id, START, END, (other, "other") if other else None, budget)
    return found.output


def _assert_exact_figures_equal(got: apb.ResultOutput, want: apb.ResultOutput) -> None:
    if want.HasField("summary"):
        for name in ("count", "mean", "std", "min", "max"):
            assert getattr(got.summary, name) == pytest.approx(getattr(want.summary, name), rel=1e-9), name
        assert list(got.histogram.counts) == list(want.histogram.counts)
        np.testing.assert_array_equal(got.histogram.edges, want.histogram.edges)
    if want.HasField("trend"):
        for name in ("slope_per_second", "intercept", "r_squared"):
            assert getattr(got.trend, name) == pytest.approx(getattr(want.trend, name), rel=1e-9), name
        assert got.trend.origin_time == want.trend.origin_time
        u, w = got.trend.uncertainty, want.trend.uncertainty
        for name in ("slope_std_error", "slope_ci_low", "slope_ci_high"):
            assert getattr(u, name) == pytest.approx(getattr(w, name), rel=1e-7), name
        assert (u.hac_lags, u.significant) == (w.hac_lags, w.significant)


def _assert_quantiles_within_error(got: apb.ResultOutput, values: np.ndarray) -> None:
    ordered = np.sort(values)
    error = got.computation.quantile_rank_error
    assert 0 < error < 0.002
    for q in got.quantiles:
        low = np.searchsorted(ordered, q.value, side="left") / ordered.size
        high = np.searchsorted(ordered, q.value, side="right") / ordered.size
        assert low - error <= q.level <= high + error


def _events(output: apb.ResultOutput) -> list[tuple[int, int, int, int]]:
    return [(e.start_us, e.end_us, e.peak_us, e.point_count) for e in output.anomalies.events]


def test_a_report_over_chunks_equals_the_in_memory_one(datasets: tuple[str, str, np.ndarray, np.ndarray,
                                                                       np.ndarray]) -> None:  # fmt: skip
    dataset_id, _, ts, values, _ = datasets
    inside = values[(ts >= START) & (ts < END)]
    kind = apb.ANALYSIS_KIND_REPORT
    want = _run(kind, dataset_id, AMPLE, anomaly_method=apb.ANOMALY_METHOD_GLOBAL)
    got = _run(kind, dataset_id, TINY, anomaly_method=apb.ANOMALY_METHOD_GLOBAL)
    assert want.computation.mode == "in_memory" and want.computation.exact
    assert got.computation.mode == "chunks" and not got.computation.exact
    assert list(got.computation.approximate) == ["quantiles", "anomaly median and MAD"]
    assert got.computation.point_count == inside.size == got.summary.count
    assert 0 < got.computation.batch_points < 10_000 and got.computation.passes == 4
    _assert_exact_figures_equal(got, want)
    _assert_quantiles_within_error(got, inside)
    assert _events(got) == _events(want) and got.anomalies.anomaly_count >= 10
    assert got.anomalies.mad == pytest.approx(want.anomalies.mad, rel=0.01)


def test_trend_over_chunks_is_exact(datasets: tuple[str, str, np.ndarray, np.ndarray, np.ndarray]) -> None:
    got = _run(apb.ANALYSIS_KIND_TREND, datasets[0], TINY)
    want = _run(apb.ANALYSIS_KIND_TREND, datasets[0], AMPLE)
    _assert_exact_figures_equal(got, want)
    assert got.computation.exact and not got.computation.approximate and got.computation.quantile_rank_error == 0


def test_seasonal_anomalies_over_chunks_find_the_same_spikes(datasets: tuple[str, str, np.ndarray, np.ndarray,
                                                                             np.ndarray]) -> None:  # fmt: skip
    dataset_id, _, _, _, spikes = datasets
    # 8 MB: windows of up to ~40,000 points (a few days each, read with a day's margin).
    got = _run(apb.ANALYSIS_KIND_ANOMALIES, dataset_id, chunked.Budget.of(8), seasonal_periods_seconds=[86_400])
    want = _run(apb.ANALYSIS_KIND_ANOMALIES, dataset_id, AMPLE, seasonal_periods_seconds=[86_400])
    assert got.computation.mode == "chunks" and "windows" in got.computation.note
    assert got.anomalies.method == "seasonal" and list(got.anomalies.periods_seconds) == [86_400]
    inside = {int(t) for t in spikes if START <= t < END}
    assert {e.peak_us for e in got.anomalies.events} == {e.peak_us for e in want.anomalies.events} == inside
    # Periods declared on the dataset serve when the request names none.
    p = apb.AnalysisParameters()
    on_dataset = chunked.execute(
        apb.ANALYSIS_KIND_ANOMALIES, p, dataset_id, START, END, None, chunked.Budget.of(8), [86_400]
    ).output.anomalies
    assert on_dataset.periods_origin == seasonal.DECLARED_ON_DATASET and list(on_dataset.periods_seconds) == [86_400]
    assert {e.peak_us for e in on_dataset.events} == inside


def test_correlation_over_chunks_equals_the_in_memory_one(datasets: tuple[str, str, np.ndarray, np.ndarray,
                                                                          np.ndarray]) -> None:  # fmt: skip
    got = _run(apb.ANALYSIS_KIND_CORRELATION, datasets[0], TINY, other=datasets[1])
    want = _run(apb.ANALYSIS_KIND_CORRELATION, datasets[0], AMPLE, other=datasets[1])
    assert got.correlation.aligned_count == want.correlation.aligned_count > 50_000
    assert got.correlation.r == pytest.approx(want.correlation.r, rel=1e-9)
    assert got.computation.mode == "chunks" and got.computation.exact


def test_an_empty_window_over_chunks_fails_with_a_reason(datasets: tuple[str, str, np.ndarray, np.ndarray,
                                                                         np.ndarray]) -> None:  # fmt: skip
    p = apb.AnalysisParameters()
    with pytest.raises(compute.AnalysisFailed, match="no points"):
        chunked.execute(apb.ANALYSIS_KIND_SUMMARY, p, datasets[0], T0 - 10 * MINUTE, T0, None, TINY)


def test_a_dask_cluster_computes_what_the_worker_computes_alone(
    datasets: tuple[str, str, np.ndarray, np.ndarray, np.ndarray], mesh: RunningStack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from distributed import LocalCluster

    dataset_id, _, ts, values, _ = datasets
    # The Dask workers' own configuration: they read PostgreSQL themselves.
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", mesh.database_url("analytics"))
    kind = apb.ANALYSIS_KIND_REPORT
    alone = _run(kind, dataset_id, TINY, anomaly_method=apb.ANOMALY_METHOD_GLOBAL)
    seasonal_alone = _run(apb.ANALYSIS_KIND_ANOMALIES, dataset_id, chunked.Budget.of(8),
                          seasonal_periods_seconds=[86_400])  # fmt: skip
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        dask = DaskCluster(cluster.scheduler_address)
        try:
            assert len(dask.client().nthreads()) == 2
            spread = _run(kind, dataset_id, chunked.Budget(TINY.memory_bytes, dask),
                          anomaly_method=apb.ANOMALY_METHOD_GLOBAL)  # fmt: skip
            seasonal_spread = _run(apb.ANALYSIS_KIND_ANOMALIES, dataset_id, chunked.Budget(8 * 2**20, dask),
                                   seasonal_periods_seconds=[86_400])  # fmt: skip
            # Both worker processes did chunk work.
            done = dask.client().run(lambda dask_worker: len(dask_worker.data) + dask_worker.state.executed_count)
        finally:
            dask.close()
    assert spread.computation.mode == "dask" and spread.computation.parts >= 2
    assert all(count > 0 for count in done.values()) and len(done) == 2
    _assert_exact_figures_equal(spread, alone)
    _assert_quantiles_within_error(spread, values[(ts >= START) & (ts < END)])
    assert _events(spread) == _events(alone)
    assert spread.summary.count == alone.summary.count == spread.computation.point_count
    # The seasonal method's windows ran as Dask tasks: the same windows, the same events.
    assert seasonal_spread.computation.mode == "dask"
    assert _events(seasonal_spread) == _events(seasonal_alone) and len(_events(seasonal_alone)) >= 5
    assert seasonal_spread.anomalies.regularization == seasonal_alone.anomalies.regularization


def test_over_the_budget_a_kind_that_needs_every_point_fails_with_a_reason(
    datasets: tuple[str, str, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    unknown = 99  # a kind not computed over chunks (e.g. one added later)
    with pytest.raises(compute.AnalysisFailed, match="ANALYTICS_ANALYSIS_MEMORY_MB"):
        chunked.execute(unknown, apb.AnalysisParameters(), datasets[0], START, END, None, TINY)
    assert streaming.in_memory_max_points(TINY.memory_bytes) < N


@pytest.mark.parametrize("kind", [apb.ANALYSIS_KIND_TREND, apb.ANALYSIS_KIND_REPORT])
def test_a_chart_series_over_chunks_keeps_the_points_the_in_memory_one_keeps(
    datasets: tuple[str, str, np.ndarray, np.ndarray, np.ndarray], kind: int
) -> None:
    dataset_id = datasets[0]
    p = apb.AnalysisParameters(moving_average_window=37, ewma_alpha=0.05)
    output = _run(kind, dataset_id, AMPLE)
    ts, values = store.load_points(dataset_id, START, END)
    want = compute.chart_series(kind, p, output, ts, values, 301)
    got = chunked.chart_series(kind, p, output, dataset_id, START, END, 301, TINY)
    assert got.source_point_count == want.source_point_count == ts.size
    assert list(got.timestamps_us) == list(want.timestamps_us) and len(got.timestamps_us) == 300
    assert list(got.values) == list(want.values)
    np.testing.assert_allclose(got.trend, want.trend, rtol=1e-12)
    np.testing.assert_allclose(got.moving_average, want.moving_average, rtol=1e-9)
    np.testing.assert_allclose(got.ewma, want.ewma, rtol=1e-9)
    assert (len(got.moving_average) > 0) == (kind == apb.ANALYSIS_KIND_TREND)


def test_a_forecast_over_the_budget_is_the_in_memory_forecast_of_the_windows_tail(
    datasets: tuple[str, str, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    dataset_id = datasets[0]
    p = apb.AnalysisParameters(forecast_horizon=30, seasonal_periods_seconds=[3600])
    # The window holds ~116,000 points, TINY's budget ~5,000: it no longer fails, it reads its tail.
    got = chunked.execute(apb.ANALYSIS_KIND_FORECAST, p, dataset_id, START, END, None, TINY)
    c = got.output.computation
    assert c.mode == "chunks" and not c.exact and c.passes == 1
    # What the models fit at most (5,000 points, more than 12 hours) and the held-out tails; within the budget.
    assert c.point_count == forecast.MAX_TRAINING_POINTS + (forecast.ORIGINS + 1) * 30
    assert c.point_count <= streaming.in_memory_max_points(TINY.memory_bytes)
    ts, values = store.load_points(dataset_id, START, END)
    assert f"last {c.point_count:,} of the window's {ts.size:,} points" in c.note
    want = compute.run(apb.ANALYSIS_KIND_FORECAST, p, ts[-c.point_count :], values[-c.point_count :], None)
    assert got.output.forecast == want.output.forecast
    points = got.output.forecast.points
    assert len(points) == 30 and points[0].timestamp_us == ts[-1] + MINUTE
    assert list(got.output.forecast.periods_seconds) == [3600]
    assert (got.window_start_us, got.window_end_us) == (int(ts[0]), int(ts[-1]))


def test_a_forecast_reads_what_its_models_fit_and_never_more_than_the_budget() -> None:
    n = 1_000_000
    found = streaming.Extent(n, T0, T0 + (n - 1) * MINUTE, 0.0, 1.0)

    def tail(max_points: int, *periods: int) -> int:
        p = apb.AnalysisParameters(forecast_horizon=30, seasonal_periods_seconds=list(periods))
        return chunked.forecast_tail_points(p, found, max_points, ())

    assert tail(10**9, 3600) == 5_000 + 4 * 30  # 12 hourly cycles are fewer than 5,000 points
    assert tail(10**9, 86_400) == 12 * 1440 + 4 * 30
    assert tail(10**9) == 12 * 10_080 + 4 * 30  # detected: up to a week
    assert tail(50_000) == 50_000 and tail(10**9, 10**9) == n
