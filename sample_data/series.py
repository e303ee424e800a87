"""Sample series: a level, a linear trend, a daily and a weekly cycle,
Gaussian noise and a few injected anomalies (spikes and dips of 8-12
standard deviations), reproducible from a seed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

DAY_S = 86_400.0


@dataclass(frozen=True)
class SeriesKind:
    """What a sample series looks like."""

    name: str
    description: str
    unit: str
    level: float
    trend_per_day: float
    daily: float
    weekly: float
    noise: float


KINDS = (
    SeriesKind("cpu-load", "CPU load of the web tier", "%", 45.0, 0.3, 15.0, 4.0, 3.0),
    SeriesKind("orders-per-minute", "Orders placed per minute", "1/min", 120.0, 1.5, 60.0, 20.0, 8.0),
    SeriesKind("latency-ms", "p50 API latency", "ms", 85.0, -0.2, 10.0, 3.0, 4.0),
    SeriesKind("temperature", "Server room temperature", "°C", 21.0, 0.01, 1.5, 0.3, 0.2),
)


@dataclass(frozen=True)
class Series:
    """Generated points and where the anomalies were put."""

    timestamps_us: np.ndarray
    values: np.ndarray
    anomaly_indices: np.ndarray


def generate(kind: SeriesKind, points: int, end: dt.datetime, interval_s: float, seed: int) -> Series:
    """``points`` values of ``kind`` ending at ``end``, one every ``interval_s`` seconds."""
    rng = np.random.default_rng(seed)
    seconds = np.arange(points, dtype=np.float64) * interval_s
    start_us = int(end.timestamp() * 1e6) - int(seconds[-1] * 1e6)
    timestamps = start_us + (seconds * 1e6).astype(np.int64)
    values = (
        kind.level
        + kind.trend_per_day * seconds / DAY_S
        + kind.daily * np.sin(2 * np.pi * seconds / DAY_S)
        + kind.weekly * np.sin(2 * np.pi * seconds / (7 * DAY_S))
        + rng.normal(0.0, kind.noise, points)
    )
    count = max(1, points // 5000)
    anomalies = np.sort(rng.choice(points, size=min(count, points), replace=False))
    signs = rng.choice([-1.0, 1.0], size=anomalies.size)
    values[anomalies] += signs * rng.uniform(8, 12, anomalies.size) * (kind.daily + kind.noise)
    return Series(timestamps, values, anomalies)
