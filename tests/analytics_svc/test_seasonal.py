"""Seasonal anomaly events, checked on series whose answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from analytics_svc.analyses import compute, numeric, seasonal
from mesh.analytics.v1 import analysis_pb2 as apb

T0 = 1_700_000_000_000_000
MINUTE = 60_000_000
DAY_POINTS = 1440


def _minutes(n: int) -> np.ndarray:
    return T0 + np.arange(n, dtype=np.int64) * MINUTE


def _daily_sine(days: int, amplitude: float = 10.0, noise: float = 0.0, seed: int = 1) -> np.ndarray:
    n = days * DAY_POINTS
    values = 50.0 + amplitude * np.sin(2 * np.pi * np.arange(n) / DAY_POINTS)
    if noise:
        values += np.random.default_rng(seed).normal(0.0, noise, n)
    return values


SPIKES = {1000: +6.0, 3500: -5.0, 6000: +8.0, 9000: +4.0}  # index -> offset, in units of the amplitude/10


def _sine_with_spikes() -> tuple[np.ndarray, np.ndarray]:
    values = _daily_sine(7, noise=0.5)
    for index, offset in SPIKES.items():
        values[index] += offset * 1.0  # 8-16 sigma of the noise; under the daily swing of +-10
    return _minutes(values.size), values


def test_a_sine_with_spikes_gives_one_event_per_spike_at_its_peak_ranked_by_score() -> None:
    ts, values = _sine_with_spikes()
    report = seasonal.seasonal_anomalies(ts, values)
    assert report.periods_s == (86_400,) and report.periods_origin == "detected"
    assert sorted(e.peak_us for e in report.events) == sorted(int(ts[i]) for i in SPIKES)
    # Ranked by |score|: the +8 spike first, the +4 spike last.
    assert [e.peak_us for e in report.events][0] == int(ts[6000])
    assert [e.peak_us for e in report.events][-1] == int(ts[9000])
    for event in report.events:
        index = int((event.peak_us - T0) // MINUTE)
        clean = 50.0 + 10.0 * np.sin(2 * np.pi * index / DAY_POINTS)
        # Expected is the seasonal value without the spike (noise sigma 0.5).
        assert event.expected == pytest.approx(clean, abs=0.5)
        assert not (event.lower <= event.peak_value <= event.upper)
        assert np.sign(event.score) == np.sign(SPIKES[index])


def test_the_global_method_misses_spikes_hidden_in_the_daily_swing() -> None:
    ts, values = _sine_with_spikes()
    output = compute.run(
        apb.ANALYSIS_KIND_ANOMALIES, apb.AnalysisParameters(anomaly_method=apb.ANOMALY_METHOD_GLOBAL), ts, values
    )
    assert output.output.anomalies.method == "global"
    assert output.anomaly_count == 0


def test_adjacent_and_near_flagged_points_merge_into_one_event() -> None:
    values = _daily_sine(3, noise=0.3)
    # A level shift of 5 minutes with one normal point inside: one event.
    values[2000:2003] += 6.0
    values[2004:2006] += 7.0
    ts = _minutes(values.size)
    report = seasonal.seasonal_anomalies(ts, values)
    assert len(report.events) == 1
    event = report.events[0]
    assert (event.start_us, event.end_us) == (int(ts[2000]), int(ts[2005]))
    assert event.point_count == 5
    assert event.peak_us in (int(ts[2004]), int(ts[2005]))


def test_merge_events_keeps_all_events_ranked_however_many() -> None:
    n = 20_000
    ts = _minutes(n)
    scores = np.zeros(n)
    scores[::10] = np.linspace(5, 9, n // 10)  # 2,000 separate events, the newest largest
    events = seasonal.merge_events(ts, np.zeros(n), np.zeros(n), scores, 1.0, 4.0)
    assert len(events) == 2000
    assert events[0].peak_us == int(ts[n - 10])
    assert [abs(e.score) for e in events] == sorted((abs(e.score) for e in events), reverse=True)


def test_declared_periods_are_used_and_the_weekly_cycle_is_removed() -> None:
    n = 21 * 24  # three weeks of hourly points
    hours = np.arange(n)
    values = 10 + 3 * np.sin(2 * np.pi * hours / 24) + 5 * (hours % 168 >= 120)  # weekends higher
    values = values + np.random.default_rng(3).normal(0, 0.2, n)
    values[300] += 4.0
    ts = T0 + hours.astype(np.int64) * 60 * MINUTE
    report = seasonal.seasonal_anomalies(ts, values, periods_s=[86_400, 604_800])
    assert report.periods_origin == "declared"
    assert [e.peak_us for e in report.events] == [int(ts[300])]


def test_an_irregular_series_is_regularised_and_says_how() -> None:
    values = _daily_sine(3, noise=0.3)
    values[1500] += 8.0
    ts = _minutes(values.size)
    keep = np.ones(values.size, dtype=bool)
    keep[[10, 11, 500, 3000]] = False  # gaps
    report = seasonal.seasonal_anomalies(ts[keep], values[keep])
    assert "irregular" in report.regularisation and "4 empty cell(s) linearly interpolated" in report.regularisation
    assert [e.peak_us for e in report.events] == [int(ts[1500])]


@pytest.mark.parametrize(
    ("values", "periods", "reason"),
    [
        pytest.param(np.full(3000, 7.0), (), "constant", id="constant"),
        pytest.param(np.arange(5.0), (), "at least 8", id="too-few"),
        pytest.param(_daily_sine(1), (86_400,), "two cycles", id="period-longer-than-half"),
    ],
)
def test_data_that_cannot_be_decomposed_fails_with_a_reason(
    values: np.ndarray, periods: tuple[int, ...], reason: str
) -> None:
    parameters = apb.AnalysisParameters(seasonal_periods_seconds=list(periods))
    with pytest.raises(compute.AnalysisFailed, match=reason):
        compute.run(apb.ANALYSIS_KIND_ANOMALIES, parameters, _minutes(values.size), values)


def test_the_result_lists_every_event_with_its_band_and_the_top_ones_for_events() -> None:
    ts, values = _sine_with_spikes()
    outcome = compute.run(apb.ANALYSIS_KIND_ANOMALIES, apb.AnalysisParameters(), ts, values)
    report = outcome.output.anomalies
    assert (report.method, outcome.anomaly_count, report.anomaly_count) == ("seasonal", 4, 4)
    assert report.regularization == "regular: one point every 1 min"
    assert list(report.periods_seconds) == [86_400]
    assert [e.peak_us for e in report.events] == [a.timestamp_us for a in report.anomalies]
    top = compute.top_anomalies(outcome.output, 2)
    assert [t.timestamp_us for t in top] == [report.events[0].peak_us, report.events[1].peak_us]
    assert top[0].expected == report.events[0].expected


# --- trend uncertainty ----------------------------------------------------------------


def _ar1(n: int, phi: float, sd: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0, sd, n)
    out = np.empty(n)
    out[0] = shocks[0]
    for i in range(1, n):
        out[i] = phi * out[i - 1] + shocks[i]
    return out


def _newey_west_se(seconds: np.ndarray, values: np.ndarray, lags: int) -> float:
    """The slope's HAC standard error from the textbook sandwich with Bartlett weights (no small-sample factor)."""
    x = seconds - seconds.mean()
    design = np.column_stack([np.ones_like(x), x])
    bread = np.linalg.inv(design.T @ design)
    residual = values - design @ (bread @ design.T @ values)
    scores = design * residual[:, None]
    meat = scores.T @ scores
    for lag in range(1, lags + 1):
        weight = 1 - lag / (lags + 1)
        cross = scores[lag:].T @ scores[:-lag]
        meat += weight * (cross + cross.T)
    covariance = bread @ meat @ bread
    return float(np.sqrt(covariance[1, 1]))


def test_the_slope_standard_error_matches_the_newey_west_sandwich() -> None:
    n = 2000
    ts = _minutes(n)
    values = 3.0 + 0.001 * np.arange(n) + _ar1(n, 0.8, 1.0, seed=5)
    u = numeric.trend_uncertainty(ts, values)
    seconds = (ts - ts[0]) / 1e6
    assert u.hac_lags == int(4 * (n / 100) ** (2 / 9))
    assert u.std_error == pytest.approx(_newey_west_se(seconds, values, u.hac_lags), rel=1e-6)
    slope = numeric.linear_trend(ts, values).slope
    assert u.ci_low == pytest.approx(slope - 1.959964 * u.std_error, rel=1e-5)
    assert u.ci_high == pytest.approx(slope + 1.959964 * u.std_error, rel=1e-5)


def test_the_95_interval_covers_a_known_slope_under_autocorrelated_noise() -> None:
    n, true_per_minute = 1500, 0.002
    covered = 0
    for seed in range(40):
        values = 10 + true_per_minute * np.arange(n) + _ar1(n, 0.6, 1.0, seed=seed)
        u = numeric.trend_uncertainty(_minutes(n), values)
        covered += u.ci_low <= true_per_minute / 60 <= u.ci_high
    assert covered >= 34  # 95% nominal; HAC is a little liberal at this n


def test_a_clear_trend_is_distinguishable_from_noise_and_pure_noise_mostly_is_not() -> None:
    n = 1000
    trending = 0.05 * np.arange(n) + _ar1(n, 0.5, 1.0, seed=1)
    u = numeric.trend_uncertainty(_minutes(n), trending)
    assert u.significant and u.p_value < 1e-6
    flagged = sum(numeric.trend_uncertainty(_minutes(n), _ar1(n, 0.5, 1.0, seed=s)).significant for s in range(40))
    assert flagged <= 6
    flat = numeric.trend_uncertainty(_minutes(10), np.full(10, 3.0))
    assert (flat.p_value, flat.significant, flat.std_error) == (1.0, False, 0.0)


def test_the_trend_result_carries_its_uncertainty_and_the_offline_insight_tells_it() -> None:
    n = 1000
    values = 0.05 * np.arange(n) + _ar1(n, 0.5, 1.0, seed=1)
    outcome = compute.run(apb.ANALYSIS_KIND_TREND, apb.AnalysisParameters(), _minutes(n), values)
    u = outcome.output.trend.uncertainty
    assert u.significant and u.slope_ci_low < outcome.output.trend.slope_per_second < u.slope_ci_high
    names = [k.name for k in compute.key_numbers(outcome.output)]
    assert {"slope CI low per day", "slope CI high per day", "trend p-value"} <= set(names)


def test_flagged_points_less_than_a_cycle_apart_are_one_event_and_farther_apart_two() -> None:
    values = _daily_sine(5, noise=0.5)
    values[1800] += 9.0
    values[1800 + 360] += 9.0  # six hours later: the same incident
    values[1800 + 3 * DAY_POINTS] -= 9.0  # three days later: another
    ts = _minutes(values.size)
    report = seasonal.seasonal_anomalies(ts, values)
    spans = sorted((e.start_us, e.end_us) for e in report.events)
    assert spans == [(int(ts[1800]), int(ts[2160])), (int(ts[1800 + 3 * DAY_POINTS]),) * 2]
    merged = next(e for e in report.events if e.start_us == int(ts[1800]))
    assert merged.point_count == 2


def test_periods_declared_on_the_dataset_are_used_unless_the_request_declares_its_own() -> None:
    ts, values = _sine_with_spikes()
    outcome = compute.run(apb.ANALYSIS_KIND_ANOMALIES, apb.AnalysisParameters(), ts, values, None, [86_400])
    report = outcome.output.anomalies
    assert (list(report.periods_seconds), report.periods_origin) == ([86_400], "declared on the dataset")
    assert sorted(e.peak_us for e in report.events) == sorted(int(ts[i]) for i in SPIKES)
    own = apb.AnalysisParameters(seasonal_periods_seconds=[43_200])
    report = compute.run(apb.ANALYSIS_KIND_ANOMALIES, own, ts, values, None, [86_400]).output.anomalies
    assert (list(report.periods_seconds), report.periods_origin) == ([43_200], "declared")
    # A dataset period longer than the data: the anomalies kind fails saying so, a report falls back.
    with pytest.raises(compute.AnalysisFailed, match="period 2592000 s needs at least two cycles"):
        compute.run(apb.ANALYSIS_KIND_ANOMALIES, apb.AnalysisParameters(), ts, values, None, [30 * 86_400])
    fallback = compute.run(apb.ANALYSIS_KIND_REPORT, apb.AnalysisParameters(), ts, values, None, [30 * 86_400])
    assert fallback.output.anomalies.method == "global"
    assert "period 2592000 s" in fallback.output.anomalies.fallback_reason


def test_irregular_sampling_is_averaged_per_cell_and_big_gaps_fail_with_a_reason() -> None:
    values = _daily_sine(3, noise=0.3)
    values[2500] += 9.0
    ts = _minutes(values.size)
    # Jitter of a few seconds and a doubled point: still one cell per minute.
    jittered = ts + np.random.default_rng(4).integers(-5, 5, ts.size) * 1_000_000
    doubled_ts = np.insert(jittered, 100, jittered[100] + 2_000_000)
    doubled_values = np.insert(values, 100, values[100])
    report = seasonal.seasonal_anomalies(np.sort(doubled_ts), doubled_values)
    assert "1 cell(s) averaged from several points" in report.regularisation
    # Events are told at grid times: the spike's cell, within half a step of the point.
    (event,) = report.events
    assert abs(event.peak_us - int(jittered[2500])) <= 30_000_000
    # A day of points, then one point five days later: mostly invented values.
    sparse_ts = np.concatenate([ts[:DAY_POINTS], [ts[0] + 5 * DAY_POINTS * MINUTE]])
    with pytest.raises(compute.AnalysisFailed, match="too irregular for a decomposition"):
        compute.run(apb.ANALYSIS_KIND_ANOMALIES, apb.AnalysisParameters(), sparse_ts, values[: sparse_ts.size])


def test_a_period_longer_than_all_the_data_or_too_few_points_per_cycle_fail_with_a_reason() -> None:
    ts, values = _sine_with_spikes()  # 7 days of minutes
    for periods, reason in (([14 * 86_400], "needs at least two cycles"), ([60], "shorter than two steps")):
        with pytest.raises(compute.AnalysisFailed, match=reason):
            compute.run(
                apb.ANALYSIS_KIND_ANOMALIES, apb.AnalysisParameters(seasonal_periods_seconds=periods), ts, values
            )


def test_a_request_whose_window_cannot_hold_the_dataset_periods_is_refused() -> None:
    from analytics_svc.analyses import checks
    from mesh_runtime.errors import InvalidArgument

    short = apb.AnalysisParameters(lookback_seconds=3 * 86_400)
    with pytest.raises(InvalidArgument, match="the dataset declares a period of 604800 s"):
        checks.check_dataset_periods(apb.ANALYSIS_KIND_ANOMALIES, short, [86_400, 604_800])
    # Fine: long enough, own periods, the global method, a report (it falls back), or no known window.
    checks.check_dataset_periods(
        apb.ANALYSIS_KIND_ANOMALIES, apb.AnalysisParameters(lookback_seconds=15 * 86_400), [604_800]
    )
    own = apb.AnalysisParameters(lookback_seconds=3 * 86_400, seasonal_periods_seconds=[86_400])
    checks.check_dataset_periods(apb.ANALYSIS_KIND_ANOMALIES, own, [604_800])
    global_method = apb.AnalysisParameters(lookback_seconds=3 * 86_400, anomaly_method=apb.ANOMALY_METHOD_GLOBAL)
    checks.check_dataset_periods(apb.ANALYSIS_KIND_ANOMALIES, global_method, [604_800])
    checks.check_dataset_periods(apb.ANALYSIS_KIND_REPORT, short, [604_800])
    checks.check_dataset_periods(apb.ANALYSIS_KIND_ANOMALIES, apb.AnalysisParameters(), [604_800])
