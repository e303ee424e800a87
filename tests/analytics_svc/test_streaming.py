"""The merges of analyses over chunks against numpy and the in-memory analyses, on random
data split at random batch boundaries; the quantile sketch within its stated rank error."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import numpy as np
import pytest

from analytics_svc.analyses import numeric, seasonal, streaming

T0 = 1_700_000_000_000_000
MINUTE = 60_000_000


def splits(n: int, rng: np.random.Generator, parts: int) -> list[tuple[int, int]]:
    """``[0, n)`` cut at random places into ``parts`` consecutive ranges (some may be tiny)."""
    cuts = np.sort(rng.choice(np.arange(1, n), size=parts - 1, replace=False))
    bounds = [0, *cuts.tolist(), n]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def batches_of(ts: np.ndarray, values: np.ndarray, ranges: list[tuple[int, int]]) -> Iterator[streaming.Batch]:
    for a, b in ranges:
        yield ts[a:b], values[a:b]


def runner(ts: np.ndarray, values: np.ndarray, ranges: list[tuple[int, int]]) -> streaming.PassRunner:
    """Passes over the batches, each reduced on its own and merged in order (as Dask parts are)."""

    def run(spec: streaming.PassSpec) -> streaming.PassResult:
        result = streaming.PassResult()
        for t, v in batches_of(ts, values, ranges):
            # Each part travels pickled, as a Dask task's result does.
            result = result.merge(pickle.loads(pickle.dumps(streaming.reduce_batch(spec, t, v))))  # noqa: S301
        return result

    return run


def series(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = T0 + np.cumsum(rng.integers(1, 5, n)).astype(np.int64) * MINUTE
    x = np.arange(n, dtype=np.float64)
    values = 1e6 + 0.01 * x + 5 * np.sin(x / 50) + np.cumsum(rng.normal(0, 0.3, n))  # large offset, autocorrelated
    return ts, values


def extent_of(ts: np.ndarray, values: np.ndarray) -> streaming.Extent:
    return streaming.Extent(int(ts.size), int(ts[0]), int(ts[-1]), float(values.min()), float(values.max()))


@pytest.mark.parametrize("seed", range(5))
def test_moments_merge_like_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(1e9, 3.0, 20_000)  # an offset that breaks naive sum-of-squares variance
    merged = streaming.Moments()
    for a, b in splits(values.size, rng, 17):
        merged = merged.merge(streaming.Moments.of(values[a:b]))
    assert merged.count == values.size
    assert merged.mean == pytest.approx(values.mean(), rel=1e-14)
    assert merged.std == pytest.approx(values.std(), rel=1e-9)
    assert (merged.min, merged.max) == (values.min(), values.max())


@pytest.mark.parametrize("seed", range(4))
def test_trend_histogram_and_hac_equal_the_in_memory_analyses(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts, values = series(30_000, seed)
    figures = streaming.analyse(
        runner(ts, values, splits(ts.size, rng, 23)), extent_of(ts, values), 1000,
        summary=True, trend=True, global_anomalies=False, histogram_bins=37,
    )  # fmt: skip
    s = numeric.summary(values)
    assert figures.summary is not None
    assert figures.summary.count == s.count
    assert figures.summary.mean == pytest.approx(s.mean, rel=1e-12)
    assert figures.summary.std == pytest.approx(s.std, rel=1e-9)
    h = numeric.histogram(values, 37)
    assert figures.histogram is not None
    np.testing.assert_array_equal(figures.histogram.counts, h.counts)
    np.testing.assert_allclose(figures.histogram.edges, h.edges, rtol=0, atol=0)
    t = numeric.linear_trend(ts, values)
    assert figures.trend is not None
    assert figures.trend.slope == pytest.approx(t.slope, rel=1e-9)
    assert figures.trend.intercept == pytest.approx(t.intercept, rel=1e-12)
    assert figures.trend.r_squared == pytest.approx(t.r_squared, rel=1e-9)
    assert figures.trend.origin_us == t.origin_us
    u = numeric.trend_uncertainty(ts, values)  # statsmodels' OLS with a HAC covariance
    assert figures.uncertainty is not None
    assert figures.uncertainty.hac_lags == u.hac_lags
    assert figures.uncertainty.std_error == pytest.approx(u.std_error, rel=1e-7)
    assert figures.uncertainty.ci_low == pytest.approx(u.ci_low, rel=1e-7)
    assert figures.uncertainty.ci_high == pytest.approx(u.ci_high, rel=1e-7)
    assert figures.uncertainty.p_value == pytest.approx(u.p_value, rel=1e-6, abs=1e-300)
    assert figures.approximate == ["quantiles"]


def test_hac_sums_merge_across_parts_shorter_than_the_lags() -> None:
    rng = np.random.default_rng(11)
    scores = rng.normal(size=(500, 2))
    whole = streaming.HacSums.of(scores, 9)
    merged = streaming.HacSums.of(scores[:0], 9)
    for a, b in [(0, 3), (3, 4), (4, 20), (20, 21), (21, 400), (400, 405), (405, 500)]:
        merged = merged.merge(streaming.HacSums.of(scores[a:b], 9))
    np.testing.assert_allclose(merged.lagged, whole.lagged, rtol=1e-12)
    np.testing.assert_allclose(merged.long_run_variance(), whole.long_run_variance(), rtol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_quantiles_within_the_stated_rank_error(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.lognormal(0, 2, 600_000), rng.normal(-50, 1, 400_000)])
    rng.shuffle(values)
    sketch = streaming.QuantileSketch()
    for a, b in splits(values.size, rng, 31):
        sketch = sketch.merge(pickle.loads(pickle.dumps(streaming.QuantileSketch.of(values[a:b]))))  # noqa: S301
    ordered = np.sort(values)
    error = streaming.QUANTILE_RANK_ERROR
    assert 0 < error < 0.002
    for level in (0.001, 0.05, 0.25, 0.5, 0.75, 0.95, 0.999):
        value = sketch.quantile(level)
        low = np.searchsorted(ordered, value, side="left") / values.size
        high = np.searchsorted(ordered, value, side="right") / values.size
        assert low - error <= level <= high + error, (level, low, high)


def spiky(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(n, dtype=np.int64) * MINUTE
    values = rng.uniform(9, 11, n)  # bounded noise: no point near the threshold
    spikes = rng.choice(n, 40, replace=False)
    values[spikes] += rng.choice([-1, 1], 40) * rng.uniform(8, 20, 40)
    values[1000:1003] += 15  # one event of three points
    values[1005] += 15  # two steps after it: the same event
    return ts, values


@pytest.mark.parametrize("seed", range(3))
def test_global_anomaly_events_equal_the_in_memory_ones(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts, values = spiky(200_000, seed)
    figures = streaming.analyse(
        runner(ts, values, splits(ts.size, rng, 41)), extent_of(ts, values), 1000,
        summary=False, trend=False, global_anomalies=True,
    )  # fmt: skip
    found = numeric.robust_anomalies(ts, values)
    a = figures.anomalies
    assert a is not None
    error = streaming.QUANTILE_RANK_ERROR
    ordered = np.sort(values)
    assert abs(np.searchsorted(ordered, a.median) / values.size - 0.5) <= error
    assert a.mad == pytest.approx(found.mad, rel=0.01)
    # The spikes stand far out: the same points are flagged and merge into the same events.
    hits = np.flatnonzero(np.abs(values - found.median) > found.threshold * found.scale)
    expected = seasonal.merge_events(
        ts, values, np.full(values.size, found.median),
        np.where(np.isin(np.arange(values.size), hits), (values - found.median) / found.scale, 0.0),
        found.threshold * found.scale, found.threshold,
    )  # fmt: skip
    assert [(e.start_us, e.end_us, e.peak_us, e.point_count) for e in a.events] == [
        (e.start_us, e.end_us, e.peak_us, e.point_count) for e in expected
    ]
    assert a.flagged == len(found.anomalies)
    assert any(e.point_count == 4 for e in a.events)  # the 1000..1005 event, merged across any split
    assert figures.approximate == ["anomaly median and MAD"]


def test_events_of_flagged_points_merge_across_parts_like_merge_events() -> None:
    rng = np.random.default_rng(5)
    n = 5000
    ts = T0 + np.arange(n, dtype=np.int64) * MINUTE
    values = rng.normal(size=n)
    scores = np.where(rng.random(n) < 0.05, rng.normal(0, 10, n), 0.0)
    flagged = np.abs(scores) > 3
    expected = seasonal.merge_events(ts, values, np.zeros(n), scores, 1.0, 3.0)
    merged, count = np.zeros(0, streaming.EVENT_DTYPE), 0
    for a, b in splits(n, rng, 60):
        hits = np.flatnonzero(flagged[a:b])
        part = streaming.events_of_flagged(hits, ts[a:b][hits], values[a:b][hits], scores[a:b][hits], 3)
        merged = streaming.merge_events(merged, count, part, 3)
        count += b - a
    got = sorted(merged.tolist(), key=lambda e: (-abs(e[7]), e[5]))
    want = [(e.start_us, e.end_us, e.peak_us, e.point_count) for e in expected]
    assert [(e[2], e[3], e[5], e[8]) for e in got] == want


@pytest.mark.parametrize("window", [1, 2, 10, 333])
def test_moving_average_and_ewma_over_batches_equal_in_memory(window: int) -> None:
    rng = np.random.default_rng(window)
    values = rng.normal(100, 5, 5000)
    parts = [values[a:b] for a, b in splits(values.size, rng, 40)]
    np.testing.assert_allclose(
        np.concatenate(list(streaming.moving_average_batches(iter(parts), window))),
        numeric.moving_average(values, window), rtol=1e-12,
    )  # fmt: skip
    np.testing.assert_allclose(
        np.concatenate(list(streaming.ewma_batches(iter(parts), 0.1))), numeric.ewma(values, 0.1), rtol=1e-12
    )


def test_correlation_joins_batches_in_time_order() -> None:
    rng = np.random.default_rng(9)
    ts_a = T0 + np.sort(rng.choice(200_000, 60_000, replace=False)).astype(np.int64)
    ts_b = T0 + np.sort(rng.choice(200_000, 80_000, replace=False)).astype(np.int64)
    va = rng.normal(size=ts_a.size) + (ts_a - T0) * 1e-5
    vb = rng.normal(size=ts_b.size) + (ts_b - T0) * 1e-5
    got = streaming.correlate(
        batches_of(ts_a, va, splits(ts_a.size, rng, 13)), batches_of(ts_b, vb, splits(ts_b.size, rng, 7))
    )
    want = numeric.correlate(ts_a, va, ts_b, vb)
    assert got.count == want.count > 0
    assert got.r == pytest.approx(want.r, rel=1e-9)


def test_seasonal_windows_find_the_spikes_the_whole_series_shows() -> None:
    rng = np.random.default_rng(2)
    n = 60 * 24 * 40  # 40 days a minute apart
    ts = T0 + np.arange(n, dtype=np.int64) * MINUTE
    x = np.arange(n, dtype=np.float64)
    values = 50 + 10 * np.sin(2 * np.pi * x / 1440) + rng.uniform(-1, 1, n)  # bounded noise: no false alarm
    # More than a day apart: spikes less than a cycle apart are one event.
    spikes = 2000 + np.arange(12) * 3 * 1440 + rng.integers(0, 1440, 12)
    values[spikes] += 12
    extent = extent_of(ts, values)
    windows, cycles = streaming.seasonal_windows(extent, 30_000, [86_400])
    assert cycles >= 2 and len(windows) > 2
    assert all(np.sum((ts >= w.read_lo) & (ts < w.read_hi)) <= 30_000 for w in windows)
    part = streaming.SeasonalPart((), 0, (), (), ())
    for w in windows:
        keep = (ts >= w.read_lo) & (ts < w.read_hi)
        part = part.merge(streaming.seasonal_window(w, ts[keep], values[keep], 4.5, [86_400]))
    whole = seasonal.seasonal_anomalies(ts, values, 4.5, [86_400])
    assert {e.peak_us for e in part.events} == {e.peak_us for e in whole.events} == set(ts[spikes].tolist())


def test_a_cycle_too_long_for_the_memory_fails_with_a_reason() -> None:
    extent = streaming.Extent(10_000_000, T0, T0 + 10_000_000 * MINUTE, 0.0, 1.0)
    with pytest.raises(streaming.SeasonalWindowFailed, match="ANALYTICS_ANALYSIS_MEMORY_MB"):
        streaming.seasonal_windows(extent, 20_000, [604_800])


def test_an_unreachable_dask_scheduler_is_unavailable_with_its_address() -> None:
    from analytics_svc.analyses.distributed import DaskCluster
    from local_stack.ports import free_port
    from mesh_runtime.errors import Unavailable

    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(Unavailable, match=address):
        DaskCluster(address, connect_timeout=1).client()
