"""The forecast kind's numbers against series whose future is known."""

from __future__ import annotations

import numpy as np
import pytest

from analytics_svc.analyses import checks, compute, forecast
from mesh.analytics.v1 import analysis_pb2 as apb
from mesh_runtime.errors import InvalidArgument

STEP_US = 3_600_000_000  # hourly points
START_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
PERIOD = 24


def _seasonal_trend(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """10 + 0.05 t + 3 sin(2 pi t / 24), plus Gaussian noise: (clean, observed) over n + 48 steps."""
    t = np.arange(n + 48, dtype=np.float64)
    clean = 10 + 0.05 * t + 3 * np.sin(2 * np.pi * t / PERIOD)
    observed = clean + np.random.default_rng(seed).normal(0, noise, t.size)
    return clean, observed


def _stamps(n: int) -> np.ndarray:
    return START_US + np.arange(n, dtype=np.int64) * STEP_US


def test_a_seasonal_series_with_a_trend_is_forecast_close_to_its_known_future() -> None:
    clean, observed = _seasonal_trend(20 * PERIOD, noise=0.3, seed=1)
    n = 20 * PERIOD
    found = forecast.forecast_series(_stamps(n), observed[:n], 48)
    p = found.fit.prediction
    # The daily period is detected and the point forecast follows the true cycle and trend.
    assert found.periods_s == (86_400,) and found.periods_origin == "detected"
    assert np.abs(p.mean - clean[n:]).max() < 1.0  # noise sd 0.3; the cycle's swing is 6
    assert np.abs(p.mean - clean[n:]).mean() < 0.4
    assert found.fit.model in ("holt_winters", "stl_ets", "combination")
    # Steps continue the series' grid.
    assert found.step_us == STEP_US
    assert found.timestamps_us.tolist() == (START_US + np.arange(n, n + 48) * STEP_US).tolist()
    # Intervals are nested around the point forecast.
    assert (p.lower_95 <= p.lower_80).all() and (p.lower_80 <= p.mean).all()
    assert (p.mean <= p.upper_80).all() and (p.upper_80 <= p.upper_95).all()


def test_intervals_contain_the_truth_at_about_their_stated_rate() -> None:
    covered_95, covered_80, total = 0, 0, 0
    for seed in range(8):
        _, observed = _seasonal_trend(15 * PERIOD, noise=0.5, seed=seed)
        n = 15 * PERIOD
        fit = forecast.forecast_values(observed[:n], [PERIOD], 48)
        future = observed[n:]
        p = fit.prediction
        covered_95 += int(((future >= p.lower_95) & (future <= p.upper_95)).sum())
        covered_80 += int(((future >= p.lower_80) & (future <= p.upper_80)).sum())
        total += future.size
    # 384 future points: a correct 95% interval covers ~365 of them, an 80% one ~307.
    assert covered_95 / total >= 0.9
    assert 0.7 <= covered_80 / total <= 0.97


def test_seasonal_naive_repeats_the_last_cycle_with_widening_intervals() -> None:
    values = np.tile(np.arange(PERIOD, dtype=np.float64), 5) + np.random.default_rng(3).normal(0, 0.1, 5 * PERIOD)
    p = forecast.seasonal_naive(values, PERIOD, 2 * PERIOD)
    assert p.mean.tolist() == np.tile(values[-PERIOD:], 2).tolist()
    widths = p.upper_95 - p.lower_95
    # The second cycle ahead is sqrt(2) times as uncertain as the first.
    assert widths[PERIOD] == pytest.approx(widths[0] * np.sqrt(2))


def test_mase_is_one_for_the_in_sample_seasonal_naive_error() -> None:
    history = np.array([1.0, 2.0, 4.0, 7.0])
    # The naive forecast's in-sample mean absolute error is (1 + 2 + 3) / 3 = 2.
    assert forecast.mase(np.array([10.0, 10.0]), np.array([12.0, 8.0]), history, 1) == pytest.approx(1.0)


def test_each_candidate_is_scored_and_the_winner_is_the_lowest_holdout_error() -> None:
    _, observed = _seasonal_trend(10 * PERIOD, noise=0.3, seed=2)
    fit = forecast.forecast_values(observed[: 10 * PERIOD], [PERIOD], PERIOD)
    names = [c.model for c in fit.candidates]
    assert set(names) == {"seasonal_naive", "holt_winters", "stl_ets", "combination"}
    assert fit.candidates[0].model == fit.model and fit.candidates[0].mase == fit.holdout_mase
    assert [c.mase for c in fit.candidates] == sorted(c.mase for c in fit.candidates if c.mase is not None)
    # A trend the seasonal naive forecast cannot follow: a trend-aware model wins.
    assert fit.model != "seasonal_naive"


def test_too_few_cycles_falls_back_to_models_without_a_season_and_says_why() -> None:
    _, observed = _seasonal_trend(30, noise=0.3, seed=4)
    fit = forecast.forecast_values(observed[:30], [PERIOD], 5)
    assert fit.model in ("naive", "holt", "combination") and fit.lag == 0
    assert "two full cycles" in fit.fallback_reason
    assert fit.prediction.mean.size == 5


def test_an_irregular_series_is_regularised_and_says_how() -> None:
    _, observed = _seasonal_trend(10 * PERIOD, noise=0.3, seed=5)
    stamps = _stamps(10 * PERIOD)
    keep = np.ones(stamps.size, dtype=bool)
    keep[[10, 11, 50, 120]] = False  # four missing hours
    found = forecast.forecast_series(stamps[keep], observed[: 10 * PERIOD][keep], 12)
    assert found.regularisation.startswith("irregular: put on a 1 h grid")
    assert "4 empty cell(s) linearly interpolated" in found.regularisation
    assert found.timestamps_us[0] == stamps[-1] + STEP_US


@pytest.mark.parametrize(
    ("stamps", "values", "horizon", "reason"),
    [
        (_stamps(50), np.full(50, 4.0), 5, "constant series"),
        (_stamps(6), np.arange(6.0), 2, "at least 10"),
        (_stamps(20), np.arange(20.0), 30, "longer than the series"),
        (
            np.concatenate([_stamps(30), _stamps(30)[-1] + STEP_US * np.arange(1, 11) * 100]),
            np.arange(40.0),
            3,
            "too irregular",
        ),
    ],
)
def test_series_that_cannot_be_forecast_fail_with_a_reason(
    stamps: np.ndarray, values: np.ndarray, horizon: int, reason: str
) -> None:
    with pytest.raises(compute.AnalysisFailed, match=reason):
        compute.run(apb.ANALYSIS_KIND_FORECAST, apb.AnalysisParameters(forecast_horizon=horizon), stamps, values)


def test_the_forecast_kind_stores_its_points_model_and_key_numbers() -> None:
    _, observed = _seasonal_trend(10 * PERIOD, noise=0.3, seed=6)
    n = 10 * PERIOD
    outcome = compute.run(
        apb.ANALYSIS_KIND_FORECAST, apb.AnalysisParameters(forecast_horizon=12), _stamps(n), observed[:n]
    )
    f = outcome.output.forecast
    assert len(f.points) == 12 and f.step_us == STEP_US
    assert f.points[0].timestamp_us == START_US + n * STEP_US
    assert f.model == f.candidates[0].model and f.holdout_mase == pytest.approx(f.candidates[0].holdout_mase)
    assert (list(f.periods_seconds), f.periods_origin) == ([86_400], "detected")
    assert f.regularization == "regular: one point every 1 h"
    # Survives the wire.
    assert apb.ResultOutput.FromString(outcome.output.SerializeToString()) == outcome.output
    numbers = {k.name: k.value for k in compute.key_numbers(outcome.output)}
    assert numbers["forecast at horizon"] == pytest.approx(f.points[-1].value)
    assert numbers["forecast 95% low"] < numbers["forecast at horizon"] < numbers["forecast 95% high"]
    assert compute.kind_name(apb.ANALYSIS_KIND_FORECAST) == "forecast"


def test_periods_declared_on_the_dataset_serve_the_forecast_when_the_request_has_none() -> None:
    _, observed = _seasonal_trend(10 * PERIOD, noise=0.3, seed=7)
    n = 10 * PERIOD
    outcome = compute.run(
        apb.ANALYSIS_KIND_FORECAST,
        apb.AnalysisParameters(forecast_horizon=6),
        _stamps(n),
        observed[:n],
        dataset_periods_s=[86_400],
    )
    f = outcome.output.forecast
    assert (list(f.periods_seconds), f.periods_origin) == ([86_400], "declared on the dataset")


def test_a_forecast_without_a_horizon_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidArgument) as error:
        checks.check_kind(apb.ANALYSIS_KIND_FORECAST, apb.AnalysisParameters(), "")
    assert [v.field for v in error.value.violations] == ["parameters.forecast_horizon"]
    # Periods are allowed for forecasts, even longer than a fixed window (it falls back).
    checks.check_kind(
        apb.ANALYSIS_KIND_FORECAST, apb.AnalysisParameters(forecast_horizon=5, seasonal_periods_seconds=[86400]), ""
    )
