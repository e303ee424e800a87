"""Anomaly event quality: precision, recall and F1 per method, against ground truth.

The series are ``./mesh sample-data``'s (sample_data.series: level, trend,
daily and weekly cycles, noise, spikes and dips of 8-12 x (daily amplitude +
noise) whose positions the generator returns). Methods, all in the same run:

- seasonal: the anomalies kind's default (analytics_svc.analyses.compute);
- global: the kind's ANOMALY_METHOD_GLOBAL (one median/MAD z-score);
- baseline: plain STL (statsmodels defaults, robust, the daily period; loess
  jumps of ~10% for speed) with a
  robust z-score of the residuals > 3.5, adjacent flagged points as one event.

An event is a true positive when an injected anomaly lies within it (one
step of slack either side); precision = true events / events, recall =
injected anomalies found / injected anomalies.

Real labelled series (a public benchmark such as NAB) are not read yet: the
bench says so and reports the sample series only.

Run: ./mesh bench anomaly_quality [--days 28 --interval 120 --seeds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np
from statsmodels.tsa.seasonal import STL

from analytics_svc.analyses import compute
from mesh.analytics.v1 import analysis_pb2 as apb
from sample_data import series as sample

END = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


def baseline_events(values: np.ndarray, period: int) -> list[tuple[int, int]]:
    """Plain STL + robust z > 3.5: (first, last) index of each run of adjacent flagged points."""
    # statsmodels' defaults, with the loess smoothers evaluated every ~10% of
    # their window (without jumps a minute-level fit takes minutes).
    jump = max(1, period // 10)
    fit = STL(values, period=period, robust=True, seasonal_jump=1, trend_jump=jump, low_pass_jump=jump).fit()
    residual = np.asarray(fit.resid)
    mad = np.median(np.abs(residual - np.median(residual)))
    flagged = np.flatnonzero(np.abs(residual - np.median(residual)) > 3.5 * 1.4826 * mad)
    if flagged.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(flagged) > 1)
    starts = np.concatenate([[flagged[0]], flagged[breaks + 1]])
    ends = np.concatenate([flagged[breaks], [flagged[-1]]])
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def kind_events(method: int, ts: np.ndarray, values: np.ndarray) -> list[tuple[int, int]]:
    report = compute.anomaly_report(apb.AnalysisParameters(anomaly_method=method), ts, values)  # type: ignore[arg-type]
    first = np.searchsorted(ts, [e.start_us for e in report.events])
    last = np.searchsorted(ts, [e.end_us for e in report.events])
    return list(zip(first.tolist(), last.tolist(), strict=True))


def score(events: list[tuple[int, int]], truth: np.ndarray) -> tuple[int, int, int]:
    """(events containing an injected anomaly, injected anomalies found, events)."""
    hits = sum(any(a - 1 <= t <= b + 1 for t in truth) for a, b in events)
    found = sum(any(a - 1 <= t <= b + 1 for a, b in events) for t in truth)
    return hits, found, len(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--interval", type=int, default=120, help="seconds between points")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    points = args.days * 86_400 // args.interval
    methods = {
        "seasonal": lambda ts, v: kind_events(apb.ANOMALY_METHOD_SEASONAL, ts, v),
        "global": lambda ts, v: kind_events(apb.ANOMALY_METHOD_GLOBAL, ts, v),
        "baseline STL+z": lambda ts, v: baseline_events(v, 86_400 // args.interval),
    }
    totals: dict[str, list[float]] = {name: [0, 0, 0, 0, 0.0] for name in methods}  # hits, found, events, truth, s
    for kind in sample.KINDS:
        for seed in range(args.seeds):
            generated = sample.generate(kind, points, END, float(args.interval), seed)
            for name, method in methods.items():
                started = time.perf_counter()
                events = method(generated.timestamps_us, generated.values)
                elapsed = time.perf_counter() - started
                hits, found, count = score(events, generated.anomaly_indices)
                total = totals[name]
                total[0] += hits
                total[1] += found
                total[2] += count
                total[3] += int(generated.anomaly_indices.size)
                total[4] += elapsed
    series = len(sample.KINDS) * args.seeds
    print(f"{series} sample series of {points} points ({args.days} days, one every {args.interval} s)")
    print(f"{'method':16} {'events':>7} {'precision':>9} {'recall':>7} {'F1':>6} {'s/series':>9}")
    for name, (all_hits, all_found, all_events, truth, seconds) in totals.items():
        precision = all_hits / all_events if all_events else 0.0
        recall = all_found / truth if truth else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        print(f"{name:16} {int(all_events):7d} {precision:9.3f} {recall:7.3f} {f1:6.3f} {seconds / series:9.3f}")
    print("real labelled series: not read yet (a public benchmark such as NAB); sample series only")


if __name__ == "__main__":
    main()
