"""Forecasts with prediction intervals, the model chosen per series on a held-out tail.

The candidates (the fitted ones by statsmodels):

- ``seasonal_naive``: each step repeats the value one period earlier
  (ARIMA(0,0,0)(0,1,0)m, no parameters to fit); its intervals widen with the number of whole
  periods ahead, from the spread of the in-sample seasonal differences
  (Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 5.5);
- ``holt_winters``: additive-error ETS with an additive trend and an
  additive season (``statsmodels.tsa.exponential_smoothing.ets.ETSModel``),
  analytic prediction intervals;
- ``stl_ets``: STL decomposition, a damped-trend ETS on the seasonally
  adjusted series, the seasonal component carried forward
  (``statsmodels.tsa.forecasting.stl.STLForecast``);
- ``combination``: the mean of the others' forecasts and interval ends.

Without a usable period (none detected or declared, or fewer than two cycles
before the held-out tail) the candidates are ``naive`` (the last value) and
``holt`` (damped-trend ETS, no season), and the result says why.

Each candidate forecasts the last ``holdout`` points from the points before
them, at :data:`ORIGINS` rolling origins; the one with the lowest mean
absolute scaled error (MASE) over them is refitted on the whole series to
forecast the next ``horizon`` steps, and its intervals are widened when they
would have covered too few held-out points (:func:`calibrate`). Models are fitted
on at most the last :data:`MAX_TRAINING_CYCLES` periods (or
:data:`MAX_TRAINING_POINTS` points without a period): older data changes a
forecast little and costs time linearly.

Bad input the caller could not know about before the run (too few points,
a constant series, gaps too large to grid) raises :class:`ForecastFailed`
with a message fit for a user.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.forecasting.stl import STLForecast

from analytics_svc.analyses import seasonal

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MAX_HORIZON = 10_000
"""The most steps one forecast may ask for (also the proto's limit)."""
MIN_POINTS = 10
"""A forecast needs at least this many (regular) points."""
MAX_TRAINING_CYCLES = 12
"""Seasonal models are fitted on at most this many of the last periods."""
MAX_TRAINING_POINTS = 5_000
"""Non-seasonal models (and the floor for seasonal ones) use at most this many last points."""
MAX_SEASONAL_LAG = 2_000
"""Holt-Winters and STL are not fitted for periods longer than this many steps
(their state grows with the period); seasonal naive still is."""
INTERVAL_LEVELS = (0.8, 0.95)
ORIGINS = 3
"""Held-out tails each candidate forecasts (rolling origins, each one holdout earlier)."""


_US = 1_000_000


class ForecastFailed(Exception):
    """The series cannot be forecast; the message says why, for a user."""


@dataclass(frozen=True)
class Prediction:
    """A model's forecast of the next steps: mean and the 80% / 95% intervals."""

    mean: FloatArray
    lower_80: FloatArray
    upper_80: FloatArray
    lower_95: FloatArray
    upper_95: FloatArray


@dataclass(frozen=True)
class CandidateScore:
    """How a candidate forecast the held-out tail (``mase`` None: it could not run)."""

    model: str
    mase: float | None
    error: str = ""


@dataclass(frozen=True)
class ForecastFit:
    """The chosen model, how the candidates did, and the forecast."""

    model: str
    holdout_mase: float
    holdout_points: int
    candidates: tuple[CandidateScore, ...]
    lag: int  # the seasonal period in steps; 0 without one
    fallback_reason: str
    training_points: int
    prediction: Prediction


Model = Callable[[FloatArray, int, int], Prediction]


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


def _from_sigma(mean: FloatArray, sigma: FloatArray) -> Prediction:
    z80, z95 = _z(0.8), _z(0.95)
    return Prediction(mean, mean - z80 * sigma, mean + z80 * sigma, mean - z95 * sigma, mean + z95 * sigma)


def seasonal_naive(values: FloatArray, lag: int, horizon: int) -> Prediction:
    """Each step repeats the value ``lag`` steps earlier (``lag`` 1: the naive forecast)."""
    lag = max(lag, 1)
    last_cycle = values[-lag:]
    steps = np.arange(horizon)
    mean = last_cycle[steps % lag].astype(np.float64)
    differences = values[lag:] - values[:-lag]
    sigma1 = float(np.sqrt(np.mean(differences**2))) if differences.size else 0.0
    # h steps ahead repeat the value of floor((h - 1) / lag) + 1 periods back.
    sigma = sigma1 * np.sqrt(steps // lag + 1)
    return _from_sigma(mean, sigma)


def _ets_prediction(fitted: object, horizon: int) -> Prediction:
    prediction = fitted.get_prediction(start=fitted.nobs, end=fitted.nobs + horizon - 1)  # type: ignore[attr-defined]
    mean = np.asarray(prediction.predicted_mean, dtype=np.float64)
    bounds = {}
    for level in INTERVAL_LEVELS:
        frame = prediction.summary_frame(alpha=1 - level)
        bounds[level] = (np.asarray(frame["pi_lower"], np.float64), np.asarray(frame["pi_upper"], np.float64))
    return Prediction(mean, *bounds[0.8], *bounds[0.95])


def holt_winters(values: FloatArray, lag: int, horizon: int) -> Prediction:
    """Additive-error ETS with an additive trend and, when ``lag`` > 1, an additive season (Holt-Winters)."""
    seasonal_part = lag > 1
    # A pandas series: ETS's prediction results index their rows (they fail on a bare array).
    model = ETSModel(
        pd.Series(values),
        error="add",
        trend="add",
        damped_trend=not seasonal_part,
        seasonal="add" if seasonal_part else None,
        seasonal_periods=lag if seasonal_part else None,
        initialization_method="heuristic" if seasonal_part else "estimated",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = model.fit(disp=False, maxiter=200)
    return _ets_prediction(fitted, horizon)


def stl_ets(values: FloatArray, lag: int, horizon: int) -> Prediction:
    """STL decomposition; damped-trend ETS on the seasonally adjusted series; the season carried forward."""
    jump = max(1, lag // 10)
    model = STLForecast(
        pd.Series(values),
        ETSModel,
        model_kwargs={"error": "add", "trend": "add", "damped_trend": True},
        period=lag,
        robust=True,
        seasonal_jump=jump,
        trend_jump=jump,
        low_pass_jump=jump,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = model.fit(fit_kwargs={"disp": False, "maxiter": 200})
        prediction = fitted.get_prediction(start=values.size, end=values.size + horizon - 1)
    # The variance is the ETS model's forecast variance: these are prediction intervals.
    mean = np.asarray(prediction.predicted_mean, dtype=np.float64)
    bounds = {}
    for level in INTERVAL_LEVELS:
        frame = prediction.summary_frame(alpha=1 - level)
        bounds[level] = (np.asarray(frame["mean_ci_lower"], np.float64), np.asarray(frame["mean_ci_upper"], np.float64))
    return Prediction(mean, *bounds[0.8], *bounds[0.95])


SEASONAL_MODELS: dict[str, Model] = {
    "seasonal_naive": seasonal_naive,
    "holt_winters": holt_winters,
    "stl_ets": stl_ets,
}
COMBINATION = "combination"
"""The candidate that averages the others' forecasts and interval ends."""
NON_SEASONAL_MODELS: dict[str, Model] = {
    "naive": lambda values, lag, horizon: seasonal_naive(values, 1, horizon),
    "holt": lambda values, lag, horizon: holt_winters(values, 1, horizon),
}


def mase(actual: FloatArray, forecast: FloatArray, history: FloatArray, lag: int) -> float:
    """Mean absolute scaled error: the forecast's mean absolute error over the
    in-sample mean absolute error of the (seasonal, ``lag``) naive forecast."""
    lag = max(lag, 1)
    scale = float(np.mean(np.abs(history[lag:] - history[:-lag])))
    error = float(np.mean(np.abs(actual - forecast)))
    if scale == 0:
        return 0.0 if error == 0 else math.inf
    return error / scale


def _training_tail(values: FloatArray, lag: int) -> FloatArray:
    keep = max(MAX_TRAINING_POINTS, MAX_TRAINING_CYCLES * lag) if lag > 1 else MAX_TRAINING_POINTS
    return values[-keep:]


def _usable(prediction: Prediction) -> bool:
    return all(bool(np.isfinite(part).all()) for part in vars(prediction).values())


def forecast_values(values: FloatArray, lags: Sequence[int], horizon: int) -> ForecastFit:
    """Choose a model for the regular series ``values`` on a held-out tail and
    forecast ``horizon`` steps; ``lags`` are candidate periods in steps (the
    shortest usable one is used). ForecastFailed when it cannot."""
    n = values.size
    if horizon < 1 or horizon > MAX_HORIZON:
        raise ForecastFailed(f"the horizon must be 1 to {MAX_HORIZON} steps; it is {horizon}")
    if n < MIN_POINTS:
        raise ForecastFailed(f"the window has {n} points; a forecast needs at least {MIN_POINTS}")
    if not bool(np.isfinite(values).all()):
        raise ForecastFailed("the series has values that are not finite numbers")
    if float(values.max()) == float(values.min()):
        raise ForecastFailed(
            f"every value in the window is {values[0]:g}: a constant series has nothing to model "
            "(its forecast is that value)"
        )
    if horizon > n:
        raise ForecastFailed(f"the horizon ({horizon} steps) is longer than the series ({n} points); shorten it")
    holdout = min(horizon, max(1, n // 5))
    lag, fallback = _choose_lag(values[: n - holdout], lags)
    if lag > 1:
        models = dict(SEASONAL_MODELS)
        if lag > MAX_SEASONAL_LAG:
            del models["holt_winters"], models["stl_ets"]
            fallback = (
                f"the period is {lag} steps, more than {MAX_SEASONAL_LAG}: only seasonal naive models it "
                "(aggregate the series to a coarser step for Holt-Winters and STL)"
            )
    else:
        models = dict(NON_SEASONAL_MODELS)
    origins = [n - holdout * (k + 1) for k in range(ORIGINS)]
    origins = [o for o in origins if o >= max(MIN_POINTS, 2 * lag)] or origins[:1]
    scores: list[CandidateScore] = []
    held_out: dict[str, list[Prediction]] = {}
    for name, model in models.items():
        try:
            held_out[name] = [_predict(model, values[:origin], lag, holdout) for origin in origins]
        except _FIT_ERRORS as e:
            scores.append(CandidateScore(name, None, f"{type(e).__name__}: {e}"[:200]))
    if len(held_out) > 1:
        held_out[COMBINATION] = [combine([p[k] for p in held_out.values()]) for k in range(len(origins))]
    for name, predictions in held_out.items():
        errors = [
            mase(values[o : o + holdout], p.mean, values[:o], lag) for o, p in zip(origins, predictions, strict=True)
        ]
        scores.append(CandidateScore(name, float(np.mean(errors))))
    ranked = sorted(scores, key=lambda s: (s.mase is None, s.mase if s.mase is not None else 0.0))
    for choice in ranked:
        if choice.mase is None:
            break
        try:
            if choice.model == COMBINATION:
                members = [n for n in held_out if n != COMBINATION]
                prediction = combine([_predict(models[m], values, lag, horizon) for m in members])
            else:
                prediction = _predict(models[choice.model], values, lag, horizon)
        except _FIT_ERRORS:
            continue
        prediction = calibrate(prediction, held_out[choice.model], [values[o : o + holdout] for o in origins])
        return ForecastFit(
            model=choice.model,
            holdout_mase=choice.mase,
            holdout_points=holdout,
            candidates=tuple(ranked),
            lag=lag,
            fallback_reason=fallback,
            training_points=int(_training_tail(values, lag).size),
            prediction=prediction,
        )
    reasons = "; ".join(f"{s.model}: {s.error}" for s in scores if s.error)
    raise ForecastFailed(f"no model could forecast this series ({reasons or 'every refit failed'})")


_FIT_ERRORS = (ValueError, np.linalg.LinAlgError, ZeroDivisionError, OverflowError)


def _predict(model: Model, history: FloatArray, lag: int, horizon: int) -> Prediction:
    """``model``'s forecast from the training tail of ``history``; ValueError when it is not finite."""
    prediction = model(_training_tail(history, lag), lag, horizon)
    if not _usable(prediction):
        raise ValueError("the fit gave forecasts that are not finite numbers")
    return prediction


def calibrate(prediction: Prediction, held_out: Sequence[Prediction], actual: Sequence[FloatArray]) -> Prediction:
    """``prediction`` with each interval widened (never narrowed) so that it
    would have covered its share of the held-out points: split-conformal
    calibration of the model's own interval widths. Model intervals assume
    the model is right; on real series they are often too narrow."""
    parts = vars(prediction).copy()
    for level, low, high in ((0.8, "lower_80", "upper_80"), (0.95, "lower_95", "upper_95")):
        ratios = []
        for p, truth in zip(held_out, actual, strict=True):
            below = truth < p.mean
            half = np.where(below, p.mean - vars(p)[low], vars(p)[high] - p.mean)
            ratios.append(np.abs(truth - p.mean) / np.maximum(half, 1e-12 * (1 + np.abs(p.mean))))
        scores = np.concatenate(ratios)
        rank = min(1.0, math.ceil((scores.size + 1) * level) / scores.size)
        factor = float(np.quantile(scores, rank))
        if factor > 1:
            parts[low] = prediction.mean - factor * (prediction.mean - parts[low])
            parts[high] = prediction.mean + factor * (parts[high] - prediction.mean)
    return Prediction(**parts)


def combine(predictions: Sequence[Prediction]) -> Prediction:
    """The equal-weight combination: the mean of the forecasts and of their
    interval ends (quantile averaging, "Vincentization")."""
    return Prediction(*(np.mean([vars(p)[part] for p in predictions], axis=0) for part in vars(predictions[0])))


def _choose_lag(train: FloatArray, lags: Sequence[int]) -> tuple[int, str]:
    """The shortest period with two full cycles before the held-out tail (0 and why not, otherwise)."""
    if not lags:
        return 0, ""
    usable = sorted(lag for lag in set(lags) if lag >= 2 and train.size >= 2 * lag)
    if usable:
        return usable[0], ""
    shortest = min(lags)
    if shortest < 2:
        return 0, f"the period is {shortest} step(s); a seasonal model needs at least 2"
    return 0, (
        f"a seasonal model needs two full cycles ({2 * shortest} points) before the held-out tail; "
        f"there are {train.size}: forecast without the period"
    )


@dataclass(frozen=True)
class SeriesForecast:
    """A forecast of a dataset's series: the fit, its time grid and how it was made."""

    fit: ForecastFit
    timestamps_us: IntArray  # of the forecast steps
    step_us: int
    periods_s: tuple[int, ...]
    periods_origin: str
    regularisation: str


def forecast_series(
    timestamps_us: IntArray,
    values: FloatArray,
    horizon: int,
    periods_s: Sequence[int] = (),
    declared_origin: str = seasonal.DECLARED,
) -> SeriesForecast:
    """Forecast ``horizon`` steps after the series: regularised onto its step
    (:func:`seasonal.regularise`), periods declared or detected like the
    seasonal anomalies (:func:`seasonal.detect_periods`)."""
    try:
        series = seasonal.regularise(timestamps_us, values)
    except seasonal.SeasonalFailed as e:
        raise ForecastFailed(str(e).replace("for a decomposition", "for a forecast")) from e
    if periods_s:
        periods, origin = tuple(sorted({int(p) for p in periods_s})), declared_origin
    else:
        periods = tuple(seasonal.detect_periods(series)) if series.values.size >= MIN_POINTS else ()
        origin = "detected" if periods else "none detected"
    lags = [round(p * _US / series.step_us) for p in periods]
    fit = forecast_values(series.values, lags, horizon)
    used = tuple(p for p, lag in zip(periods, lags, strict=True) if lag == fit.lag) if fit.lag else ()
    last = int(series.timestamps_us[-1])
    steps = last + series.step_us * np.arange(1, horizon + 1, dtype=np.int64)
    return SeriesForecast(fit, steps, series.step_us, used[:1], origin, series.description)
