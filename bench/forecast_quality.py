"""Forecast quality: MASE, 80%/95% interval coverage and MSIS of the forecast
kind, against seasonal naive and Holt-Winters computed in the same run.

Series:

- ``./mesh sample-data``'s four kinds (sample_data.series: level, trend,
  daily and weekly cycles, noise, injected spikes), 28 days at one point
  every 10 minutes by default (period 144 steps, horizon one day);
- real seasonal series shipped with statsmodels (``statsmodels.datasets``,
  no download): Mauna Loa CO2 (weekly, 1958-2001, gaps interpolated; period
  52, horizon 52), euro-area electrical equipment orders (monthly,
  1995-2016; period 12, horizon 12), El Niño sea surface temperatures
  (monthly, 1950-2010; period 12, horizon 12) and yearly sunspot numbers
  (1700-2008; the ~11-year cycle as period 11, horizon 11).

Each series is cut at ``--windows`` rolling origins, one horizon apart at
its end; at each origin every method sees only the points before it and
forecasts the horizon. Methods:

- kind: ``analytics_svc.analyses.forecast.forecast_values``, the forecast
  kind's model choice on held-out tails of the training part, with its
  calibrated intervals;
- seasonal naive: the last cycle repeated (intervals from the in-sample
  seasonal differences, widening with each cycle ahead);
- Holt-Winters: statsmodels' ETSModel, additive error, trend and season,
  its analytic intervals.

MASE: mean absolute error over the in-sample seasonal naive mean absolute
error of the training part (Hyndman & Koehler 2006); coverage: share of the
held-out points inside the 80% / 95% intervals; MSIS: the mean scaled
interval score of the 95% interval (M4 competition), lower is better. Every
figure is averaged over the origins.

Run: ./mesh bench forecast_quality [--windows 3 --interval 600 --days 28 --seed 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.datasets.co2
import statsmodels.datasets.elec_equip
import statsmodels.datasets.elnino
import statsmodels.datasets.sunspots

from analytics_svc.analyses import forecast
from sample_data import series as sample

END = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


@dataclass(frozen=True)
class BenchSeries:
    """A series, its seasonal period and the horizon forecast at each origin (in steps)."""

    name: str
    values: np.ndarray
    period: int
    horizon: int


def real_series() -> list[BenchSeries]:
    """The statsmodels data sets, as regular numpy series."""
    co2 = statsmodels.datasets.co2.load_pandas().data["co2"].interpolate().bfill().to_numpy(np.float64)
    elec = statsmodels.datasets.elec_equip.load().data.iloc[:, 0].to_numpy(np.float64)
    elnino = statsmodels.datasets.elnino.load_pandas().data.iloc[:, 1:].to_numpy(np.float64).ravel()
    sunspots = statsmodels.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(np.float64)
    return [
        BenchSeries("co2 (weekly)", co2, 52, 52),
        BenchSeries("elec_equip (monthly)", elec, 12, 12),
        BenchSeries("elnino (monthly)", elnino[~pd.isna(elnino)], 12, 12),
        BenchSeries("sunspots (yearly)", sunspots, 11, 11),
    ]


def sample_series(days: int, interval_s: int, seed: int) -> list[BenchSeries]:
    """``./mesh sample-data``'s kinds, one point every ``interval_s`` seconds."""
    points = days * 86_400 // interval_s
    period = 86_400 // interval_s
    return [
        BenchSeries(
            f"sample {kind.name}", sample.generate(kind, points, END, float(interval_s), seed).values, period, period
        )
        for kind in sample.KINDS
    ]


def kind_method(history: np.ndarray, period: int, horizon: int) -> forecast.Prediction:
    return forecast.forecast_values(history, [period], horizon).prediction


def seasonal_naive(history: np.ndarray, period: int, horizon: int) -> forecast.Prediction:
    return forecast.seasonal_naive(history, period, horizon)


def holt_winters(history: np.ndarray, period: int, horizon: int) -> forecast.Prediction:
    return forecast.holt_winters(history[-max(forecast.MAX_TRAINING_POINTS, 12 * period) :], period, horizon)


METHODS: dict[str, Callable[[np.ndarray, int, int], forecast.Prediction]] = {
    "kind": kind_method,
    "seasonal naive": seasonal_naive,
    "Holt-Winters": holt_winters,
}


def msis(actual: np.ndarray, p: forecast.Prediction, scale: float, alpha: float = 0.05) -> float:
    """Mean scaled interval score of the (1 - alpha) interval."""
    low, high = p.lower_95, p.upper_95
    score = (high - low) + 2 / alpha * (low - actual) * (actual < low) + 2 / alpha * (actual - high) * (actual > high)
    return float(np.mean(score) / scale)


def evaluate(series: BenchSeries, windows: int) -> dict[str, dict[str, float]]:
    """Per method: MASE, coverage 80/95, MSIS averaged over the origins, and seconds per forecast."""
    n, h, m = series.values.size, series.horizon, series.period
    figures: dict[str, dict[str, list[float]]] = {name: {} for name in METHODS}
    for k in range(windows, 0, -1):
        origin = n - k * h
        history, actual = series.values[:origin], series.values[origin : origin + h]
        scale = float(np.mean(np.abs(history[m:] - history[:-m])))
        for name, method in METHODS.items():
            started = time.perf_counter()
            p = method(history, m, h)
            elapsed = time.perf_counter() - started
            row = figures[name]
            row.setdefault("mase", []).append(float(np.mean(np.abs(actual - p.mean))) / scale)
            row.setdefault("cover80", []).append(float(np.mean((actual >= p.lower_80) & (actual <= p.upper_80))))
            row.setdefault("cover95", []).append(float(np.mean((actual >= p.lower_95) & (actual <= p.upper_95))))
            row.setdefault("msis", []).append(msis(actual, p, scale))
            row.setdefault("seconds", []).append(elapsed)
    return {name: {key: float(np.mean(v)) for key, v in row.items()} for name, row in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=3, help="rolling origins per series")
    parser.add_argument("--days", type=int, default=28, help="days of each sample series")
    parser.add_argument("--interval", type=int, default=600, help="seconds between sample points")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    all_series = sample_series(args.days, args.interval, args.seed) + real_series()
    print(f"{args.windows} rolling origins per series; 95%/80% coverage pooled per series, MSIS of the 95% interval")
    header = f"{'series':26} {'method':15} {'MASE':>6} {'cov80':>6} {'cov95':>6} {'MSIS':>7} {'s/fc':>6}"
    print(header)
    met_mase, met_cover = [], []
    for series in all_series:
        results = evaluate(series, args.windows)
        for name, r in results.items():
            print(
                f"{series.name:26} {name:15} {r['mase']:6.3f} {r['cover80']:6.2f} {r['cover95']:6.2f} "
                f"{r['msis']:7.2f} {r['seconds']:6.2f}"
            )
        best_baseline = min(results["seasonal naive"]["mase"], results["Holt-Winters"]["mase"])
        met_mase.append(
            (series.name, results["kind"]["mase"] <= best_baseline, results["kind"]["mase"] / best_baseline)
        )
        met_cover.append((series.name, results["kind"]["cover95"] >= 0.9))
    print()
    for (name, ok, ratio), (_, covered) in zip(met_mase, met_cover, strict=True):
        print(
            f"{name:26} MASE vs the better baseline: {ratio:5.3f} ({'met' if ok else 'NOT met'}); "
            f"95% coverage >= 0.9: {'met' if covered else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
