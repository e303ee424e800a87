"""The analyses against independent computations on known data, and every bad input."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from analytics_svc.analyses import numeric
from mesh_runtime.errors import InvalidArgument

SECOND = 1_000_000
T0 = 1_700_000_000 * SECOND  # a realistic epoch, to exercise precision


def _seeded(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(100.0, 15.0, n)


def _stamps(n: int, step: int = SECOND) -> np.ndarray:
    return T0 + np.arange(n, dtype=np.int64) * step


def _violation_field(error: pytest.ExceptionInfo[InvalidArgument]) -> str:
    assert len(error.value.violations) == 1
    return error.value.violations[0].field


# --- summary, quantiles, histogram ------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_summary_matches_statistics_module(seed: int) -> None:
    data = _seeded(seed, 257)
    result = numeric.summary(data)
    values = data.tolist()
    assert result.count == 257
    assert result.mean == pytest.approx(statistics.fmean(values), rel=1e-12)
    assert result.std == pytest.approx(statistics.pstdev(values), rel=1e-12)
    assert result.min == min(values)
    assert result.max == max(values)


def test_summary_hand_computed() -> None:
    result = numeric.summary([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert result == numeric.Summary(count=8, mean=5.0, std=2.0, min=2.0, max=9.0)


def test_summary_of_one_point_has_zero_std() -> None:
    assert numeric.summary([3.5]) == numeric.Summary(count=1, mean=3.5, std=0.0, min=3.5, max=3.5)


def test_summary_keeps_precision_with_a_large_offset() -> None:
    result = numeric.summary(np.array([1e9 + 1, 1e9 + 2, 1e9 + 3]))
    assert result.std == pytest.approx(math.sqrt(2 / 3), rel=1e-9)


@pytest.mark.parametrize("seed", [4, 5])
def test_quantiles_match_statistics_inclusive_method(seed: int) -> None:
    data = _seeded(seed, 101)
    quartiles = statistics.quantiles(data.tolist(), n=4, method="inclusive")
    result = numeric.quantiles(data, qs=(0.25, 0.5, 0.75))
    assert result.levels == (0.25, 0.5, 0.75)
    assert result.values == pytest.approx(quartiles, rel=1e-12)


def test_quantiles_default_levels_hand_computed() -> None:
    # 0..100: the q quantile of 101 evenly spaced points is 100 * q exactly.
    result = numeric.quantiles(np.arange(101, dtype=np.float64))
    assert result.as_dict() == pytest.approx({0.05: 5.0, 0.25: 25.0, 0.5: 50.0, 0.75: 75.0, 0.95: 95.0})


def test_histogram_counts_hand_computed() -> None:
    result = numeric.histogram([0.0, 0.5, 1.0, 1.5, 2.0, 4.0], bins=4)
    assert result.edges.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    # The last bin includes its right edge.
    assert result.counts.tolist() == [2, 2, 1, 1]


@pytest.mark.parametrize(("seed", "bins"), [(6, 1), (7, 13), (8, 100)])
def test_histogram_counts_sum_to_n_and_match_a_loop(seed: int, bins: int) -> None:
    data = _seeded(seed, 500)
    result = numeric.histogram(data, bins=bins)
    assert int(result.counts.sum()) == 500
    assert len(result.edges) == bins + 1
    low, high = data.min(), data.max()
    width = (high - low) / bins
    expected = [0] * bins
    for value in data.tolist():
        expected[min(int((value - low) / width), bins - 1)] += 1
    assert result.counts.tolist() == expected


def test_histogram_with_explicit_range_leaves_out_values_outside() -> None:
    result = numeric.histogram([-5.0, 0.1, 0.2, 0.9, 7.0], bins=2, value_range=(0.0, 1.0))
    assert result.counts.tolist() == [2, 1]


# --- trend ---------------------------------------------------------------------------


def test_trend_of_a_perfect_line() -> None:
    seconds = np.arange(50, dtype=np.float64)
    result = numeric.linear_trend(_stamps(50), 2.0 * seconds + 1.0)
    assert result.slope == pytest.approx(2.0, rel=1e-12)
    assert result.intercept == pytest.approx(1.0, rel=1e-12)
    assert result.r_squared == pytest.approx(1.0, rel=1e-12)
    assert result.origin_us == T0
    assert result.count == 50


def test_trend_slope_is_per_second_whatever_the_sampling() -> None:
    # One point a minute, rising 60 per minute: 1 per second.
    ts = _stamps(10, step=60 * SECOND)
    result = numeric.linear_trend(ts, np.arange(10, dtype=np.float64) * 60.0)
    assert result.slope == pytest.approx(1.0, rel=1e-12)


def test_trend_accepts_datetime64() -> None:
    ts = _stamps(5).astype("datetime64[us]").astype("datetime64[ms]")
    result = numeric.linear_trend(ts, [0.0, 3.0, 6.0, 9.0, 12.0])
    assert result.slope == pytest.approx(3.0)
    assert result.origin_us == T0


@pytest.mark.parametrize("seed", [9, 10])
def test_trend_matches_hand_computed_least_squares(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts = T0 + np.cumsum(rng.integers(1, 10 * SECOND, 200))
    ys = rng.normal(0, 1, 200) + 0.001 * (ts - ts[0]) / SECOND
    xs = [(t - int(ts[0])) / SECOND for t in ts.tolist()]
    y_list = ys.tolist()
    x_mean, y_mean = statistics.fmean(xs), statistics.fmean(y_list)
    sxy = math.fsum((x - x_mean) * (y - y_mean) for x, y in zip(xs, y_list, strict=True))
    sxx = math.fsum((x - x_mean) ** 2 for x in xs)
    syy = math.fsum((y - y_mean) ** 2 for y in y_list)
    result = numeric.linear_trend(ts, ys)
    assert result.slope == pytest.approx(sxy / sxx, rel=1e-9)
    assert result.intercept == pytest.approx(y_mean - sxy / sxx * x_mean, rel=1e-9)
    assert result.r_squared == pytest.approx(sxy**2 / (sxx * syy), rel=1e-9)


def test_trend_of_a_constant_series_is_flat_with_r_squared_one() -> None:
    result = numeric.linear_trend(_stamps(4), [7.0, 7.0, 7.0, 7.0])
    assert (result.slope, result.intercept, result.r_squared) == (0.0, 7.0, 1.0)


def test_trend_of_one_point_is_rejected() -> None:
    with pytest.raises(InvalidArgument) as error:
        numeric.linear_trend(_stamps(1), [1.0])
    assert _violation_field(error) == "values"


# --- smoothing -----------------------------------------------------------------------


@pytest.mark.parametrize("window", [1, 2, 5, 37])
def test_moving_average_matches_a_loop(window: int) -> None:
    data = _seeded(11, 60) + 1e6
    values = data.tolist()
    expected = [statistics.fmean(values[i : i + window]) for i in range(len(values) - window + 1)]
    result = numeric.moving_average(data, window)
    assert result.shape == (len(expected),)
    np.testing.assert_allclose(result, expected, rtol=1e-12)


def test_moving_average_hand_computed() -> None:
    assert numeric.moving_average([1.0, 2.0, 3.0, 4.0], 2).tolist() == [1.5, 2.5, 3.5]


def test_moving_average_over_the_whole_series_is_the_mean() -> None:
    assert numeric.moving_average([1.0, 2.0, 6.0], 3).tolist() == pytest.approx([3.0])


def _ewma_loop(values: list[float], alpha: float) -> list[float]:
    smoothed = [values[0]]
    for value in values[1:]:
        smoothed.append(alpha * value + (1 - alpha) * smoothed[-1])
    return smoothed


@pytest.mark.parametrize("alpha", [1.0, 0.9, 0.3, 0.05, 0.001])
@pytest.mark.parametrize("seed", [12, 13])
def test_ewma_matches_the_recursion(alpha: float, seed: int) -> None:
    data = _seeded(seed, 5000)
    expected = _ewma_loop(data.tolist(), alpha)
    np.testing.assert_allclose(numeric.ewma(data, alpha), expected, rtol=1e-9)


def test_ewma_stays_exact_on_a_long_series_with_a_large_offset() -> None:
    data = _seeded(14, 200_000) + 1e9
    expected = _ewma_loop(data.tolist(), 0.01)
    np.testing.assert_allclose(numeric.ewma(data, 0.01), expected, rtol=1e-12)


def test_ewma_span_means_alpha_two_over_span_plus_one() -> None:
    data = _seeded(15, 300)
    np.testing.assert_allclose(numeric.ewma(data, span=9), _ewma_loop(data.tolist(), 0.2), rtol=1e-12)


def test_ewma_hand_computed() -> None:
    assert numeric.ewma([0.0, 10.0, 10.0], 0.5).tolist() == [0.0, 5.0, 7.5]


# --- anomalies -----------------------------------------------------------------------


def test_an_injected_spike_is_found_with_its_timestamp_and_score() -> None:
    data = _seeded(16, 1000)
    data[617] = 400.0
    ts = _stamps(1000)
    report = numeric.robust_anomalies(ts, data)
    assert [a.timestamp_us for a in report.anomalies] == [int(ts[617])]
    anomaly = report.anomalies[0]
    assert anomaly.value == 400.0
    median = statistics.median(data.tolist())
    mad = statistics.median(abs(v - median) for v in data.tolist())
    assert report.median == pytest.approx(median)
    assert report.mad == pytest.approx(mad)
    assert report.scale_method == "mad"
    assert anomaly.score == pytest.approx(0.6745 * (400.0 - median) / mad)
    assert anomaly.score > report.threshold


def test_anomalies_on_both_sides_are_listed_in_time_order_with_signed_scores() -> None:
    data = np.array([10.0, 11.0, 9.0, 10.0, -50.0, 10.0, 11.0, 9.0, 90.0, 10.0])
    report = numeric.robust_anomalies(_stamps(10), data)
    assert [(a.timestamp_us - T0) // SECOND for a in report.anomalies] == [4, 8]
    assert report.anomalies[0].score < -report.threshold
    assert report.anomalies[1].score > report.threshold


def test_the_threshold_is_configurable() -> None:
    # median 10, MAD 1: the 13 scores 0.6745 * 3 = 2.02.
    data = [9.0, 10.0, 11.0, 10.0, 9.0, 11.0, 13.0]
    ts = _stamps(7)
    assert numeric.robust_anomalies(ts, data).anomalies == ()
    report = numeric.robust_anomalies(ts, data, threshold=2.0)
    assert [a.value for a in report.anomalies] == [13.0]
    assert report.anomalies[0].score == pytest.approx(0.6745 * 3)


def test_zero_mad_falls_back_to_mean_absolute_deviation() -> None:
    data = [5.0] * 9 + [6.0]
    report = numeric.robust_anomalies(_stamps(10), data)
    assert report.mad == 0.0
    assert report.scale_method == "mean_absolute_deviation"
    # mean |x - 5| = 0.1; score = 1 / (1.253314 * 0.1) = 7.98
    assert [a.value for a in report.anomalies] == [6.0]
    assert report.anomalies[0].score == pytest.approx(1 / (1.253314 * 0.1))


def test_a_constant_series_has_no_anomalies() -> None:
    report = numeric.robust_anomalies(_stamps(5), [2.0] * 5)
    assert (report.scale_method, report.anomalies) == ("constant", ())


# --- correlation ---------------------------------------------------------------------


def _pearson(xs: list[float], ys: list[float]) -> float:
    x_mean, y_mean = statistics.fmean(xs), statistics.fmean(ys)
    sxy = math.fsum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True))
    sxx = math.fsum((x - x_mean) ** 2 for x in xs)
    syy = math.fsum((y - y_mean) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy)


@pytest.mark.parametrize("seed", [17, 18])
def test_correlation_matches_hand_aligned_pearson(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts_a = np.sort(rng.choice(np.arange(400, dtype=np.int64), 250, replace=False)) * SECOND + T0
    ts_b = np.sort(rng.choice(np.arange(400, dtype=np.int64), 250, replace=False)) * SECOND + T0
    va = rng.normal(0, 1, 250)
    vb = rng.normal(0, 1, 250) + 0.5 * np.interp(ts_b, ts_a, va)
    by_time_b = dict(zip(ts_b.tolist(), vb.tolist(), strict=True))
    pairs = [(v, by_time_b[t]) for t, v in zip(ts_a.tolist(), va.tolist(), strict=True) if t in by_time_b]
    result = numeric.correlate(ts_a, va, ts_b, vb)
    assert result.count == len(pairs)
    assert result.r == pytest.approx(_pearson([p[0] for p in pairs], [p[1] for p in pairs]), rel=1e-9)


def test_correlation_of_a_linear_relation_is_one_or_minus_one() -> None:
    ts = _stamps(5)
    values = np.array([1.0, 3.0, 2.0, 5.0, 4.0])
    assert numeric.correlate(ts, values, ts, 3 * values + 2).r == pytest.approx(1.0)
    assert numeric.correlate(ts, values, ts, -values).r == pytest.approx(-1.0)


def test_correlation_is_undefined_without_overlap_or_variance() -> None:
    ts = _stamps(4)
    assert numeric.correlate(ts, [1.0, 2.0, 3.0, 4.0], ts + 1, [1.0, 2.0, 3.0, 4.0]) == numeric.Correlation(None, 0)
    assert numeric.correlate(ts, [1.0, 2.0, 3.0, 4.0], ts, [5.0] * 4) == numeric.Correlation(None, 4)


# --- windows -------------------------------------------------------------------------


def test_window_is_half_open() -> None:
    ts = _stamps(10)
    values = np.arange(10, dtype=np.float64)
    w_ts, w_values = numeric.window(ts, values, start=int(ts[2]), end=int(ts[5]))
    assert w_ts.tolist() == ts[2:5].tolist()
    assert w_values.tolist() == [2.0, 3.0, 4.0]


def test_window_bounds_between_points_and_open_ends() -> None:
    ts = _stamps(10)
    values = np.arange(10, dtype=np.float64)
    assert numeric.window(ts, values, start=int(ts[2]) + 1)[1].tolist() == [3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    assert numeric.window(ts, values, end=int(ts[2]) + 1)[1].tolist() == [0.0, 1.0, 2.0]
    assert numeric.window(ts, values)[1].tolist() == values.tolist()
    assert numeric.window(ts, values, start=int(ts[3]), end=int(ts[3]))[1].size == 0


def test_window_accepts_datetime64_bounds_and_feeds_the_analyses() -> None:
    ts = _stamps(10)
    values = np.arange(10, dtype=np.float64)
    start = np.datetime64(int(ts[4]), "us").astype("datetime64[ns]")
    w_ts, w_values = numeric.window(ts, values, start=start)
    assert numeric.summary(w_values).mean == 6.5
    assert numeric.linear_trend(w_ts, w_values).slope == pytest.approx(1.0)


# --- bad input -----------------------------------------------------------------------


OK_TS = _stamps(3)
OK_VALUES = np.array([1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    ("call", "field"),
    [
        pytest.param(lambda: numeric.summary([]), "values", id="summary-empty"),
        pytest.param(lambda: numeric.quantiles([]), "values", id="quantiles-empty"),
        pytest.param(lambda: numeric.histogram([]), "values", id="histogram-empty"),
        pytest.param(lambda: numeric.ewma([], 0.5), "values", id="ewma-empty"),
        pytest.param(lambda: numeric.robust_anomalies([], []), "values", id="anomalies-empty"),
        pytest.param(lambda: numeric.linear_trend([], []), "values", id="trend-empty"),
        pytest.param(lambda: numeric.summary([1.0, math.nan]), "values", id="nan"),
        pytest.param(lambda: numeric.summary([math.inf]), "values", id="inf"),
        pytest.param(lambda: numeric.ewma([1.0, -math.inf], 0.5), "values", id="ewma-inf"),
        pytest.param(lambda: numeric.moving_average([1.0, math.nan], 1), "values", id="moving-average-nan"),
        pytest.param(lambda: numeric.robust_anomalies(OK_TS, [1.0, math.nan, 2.0]), "values", id="anomalies-nan"),
        pytest.param(lambda: numeric.correlate(OK_TS, OK_VALUES, OK_TS, [1.0, 2.0, math.nan]), "values_b", id="b-nan"),
        pytest.param(lambda: numeric.summary(np.ones((2, 2))), "values", id="two-dimensional"),
        pytest.param(lambda: numeric.linear_trend(OK_TS, [1.0, 2.0]), "values", id="trend-length-mismatch"),
        pytest.param(lambda: numeric.robust_anomalies(OK_TS[:2], OK_VALUES), "values", id="anomalies-mismatch"),
        pytest.param(lambda: numeric.window(OK_TS, OK_VALUES[:2]), "values", id="window-mismatch"),
        pytest.param(lambda: numeric.correlate(OK_TS, OK_VALUES[:1], OK_TS, OK_VALUES), "values_a", id="a-mismatch"),
        pytest.param(lambda: numeric.moving_average(OK_VALUES, 0), "window", id="window-zero"),
        pytest.param(lambda: numeric.moving_average(OK_VALUES, -2), "window", id="window-negative"),
        pytest.param(lambda: numeric.moving_average(OK_VALUES, 4), "values", id="window-longer-than-data"),
        pytest.param(lambda: numeric.histogram(OK_VALUES, bins=0), "bins", id="bins-zero"),
        pytest.param(lambda: numeric.histogram(OK_VALUES, bins=2.5), "bins", id="bins-float"),  # type: ignore[arg-type]
        pytest.param(
            lambda: numeric.histogram(OK_VALUES, value_range=(2.0, 1.0)), "value_range", id="range-reversed"
        ),
        pytest.param(lambda: numeric.quantiles(OK_VALUES, qs=(0.5, 1.5)), "qs", id="quantile-above-one"),
        pytest.param(lambda: numeric.quantiles(OK_VALUES, qs=()), "qs", id="quantiles-none"),
        pytest.param(lambda: numeric.robust_anomalies(OK_TS, OK_VALUES, threshold=0), "threshold", id="thr-zero"),
        pytest.param(lambda: numeric.robust_anomalies(OK_TS, OK_VALUES, threshold=-1), "threshold", id="thr-neg"),
        pytest.param(
            lambda: numeric.robust_anomalies(OK_TS, OK_VALUES, threshold=math.nan), "threshold", id="thr-nan"
        ),
        pytest.param(lambda: numeric.ewma(OK_VALUES, 0.0), "alpha", id="alpha-zero"),
        pytest.param(lambda: numeric.ewma(OK_VALUES, 1.5), "alpha", id="alpha-above-one"),
        pytest.param(lambda: numeric.ewma(OK_VALUES, -0.1), "alpha", id="alpha-negative"),
        pytest.param(lambda: numeric.ewma(OK_VALUES), "alpha", id="alpha-and-span-missing"),
        pytest.param(lambda: numeric.ewma(OK_VALUES, 0.5, span=3), "alpha", id="alpha-and-span-both"),
        pytest.param(lambda: numeric.ewma(OK_VALUES, span=0.5), "span", id="span-below-one"),
        pytest.param(lambda: numeric.linear_trend(OK_TS[::-1], OK_VALUES), "timestamps", id="trend-unsorted"),
        pytest.param(
            lambda: numeric.robust_anomalies([1, 2, 2], OK_VALUES), "timestamps", id="anomalies-duplicate-ts"
        ),
        pytest.param(lambda: numeric.window(OK_TS[::-1], OK_VALUES), "timestamps", id="window-unsorted"),
        pytest.param(
            lambda: numeric.correlate(OK_TS, OK_VALUES, OK_TS[::-1], OK_VALUES), "timestamps_b", id="b-unsorted"
        ),
        pytest.param(lambda: numeric.linear_trend([0.5, 1.5], [1.0, 2.0]), "timestamps", id="float-timestamps"),
        pytest.param(
            lambda: numeric.linear_trend(np.array(["NaT", "2024-01-01"], dtype="datetime64[us]"), [1.0, 2.0]),
            "timestamps",
            id="nat-timestamp",
        ),
        pytest.param(lambda: numeric.window(OK_TS, OK_VALUES, start=5, end=4), "end", id="window-end-before-start"),
        pytest.param(lambda: numeric.window(OK_TS, OK_VALUES, start=1.5), "start", id="window-float-start"),  # type: ignore[arg-type]
    ],
)
def test_bad_input_is_an_invalid_argument_naming_the_field(call: object, field: str) -> None:
    assert callable(call)
    with pytest.raises(InvalidArgument) as error:
        call()
    assert _violation_field(error) == field


def test_a_non_finite_value_is_reported_with_its_position() -> None:
    with pytest.raises(InvalidArgument, match="index 2"):
        numeric.summary([1.0, 2.0, math.nan, 4.0])
