"""Anomaly event quality: precision, recall and F1 per method, against ground truth.

Two sets of series, every method on each in the same run:

1. ``./mesh sample-data``'s series (sample_data.series: level, trend, daily
   and weekly cycles, noise, spikes and dips of 8-12 x (daily amplitude +
   noise) whose positions the generator returns). An event is a true
   positive when an injected anomaly lies within it (one step of slack
   either side); recall = injected anomalies found / injected anomalies.
2. Real labelled series we did not generate: the Numenta Anomaly Benchmark's
   realKnownCause series (NYC taxi demand, machine temperature, EC2 CPU and
   latency, ambient temperature, rogue agent key presses), read from the
   folder ``ANOMALY_BENCH_NAB_DIR`` names (a clone of
   https://github.com/numenta/NAB: data/*.csv and labels/combined_windows.json),
   never committed here. Without it that part is skipped with a message
   saying how to get it. An event is a true positive when it overlaps a
   labelled incident window; recall = windows with at least one event /
   windows; "false" = events outside every window, per series.

Methods:

- seasonal: the anomalies kind's default (analytics_svc.analyses.compute),
  with its default parameters: the same for every series;
- global: the kind's ANOMALY_METHOD_GLOBAL (one median/MAD z-score);
- baseline: plain STL (statsmodels' defaults: non-robust, the daily period,
  seasonal window 7; loess jumps of ~10% for the trend and low-pass
  smoothers, for speed) with a robust z-score of the residuals > 3.5,
  adjacent flagged points as one event. (statsmodels 0.15's robust=True
  absorbed lone spikes into the seasonal component, residual ~0 at the
  spike: the earlier baseline, built with it, found 27% of the sample's
  injected spikes.) Irregular series are put on a grid first, as the
  seasonal method does (analytics_svc.analyses.seasonal.regularise).

Duplicate timestamps in a CSV keep the last value (what an upsert stores).

Run: ./mesh bench anomaly_quality [--days 28 --interval 120 --seeds 3]
     ANOMALY_BENCH_NAB_DIR=/path/to/NAB ./mesh bench anomaly_quality
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from statsmodels.tsa.seasonal import STL

from analytics_svc.analyses import compute, seasonal
from mesh.analytics.v1 import analysis_pb2 as apb
from sample_data import series as sample

END = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
NAB_ENV = "ANOMALY_BENCH_NAB_DIR"
NAB_SET = "realKnownCause"
BASELINE_Z = 3.5

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
# (timestamps, values) -> events as (first, last) timestamps in microseconds
Method = Callable[[Ints, Floats], list[tuple[int, int]]]


def baseline_events(timestamps_us: Ints, values: Floats) -> list[tuple[int, int]]:
    """Plain STL (daily period) + robust z > 3.5: (first, last) time of each run of adjacent flagged points."""
    grid = seasonal.regularise(timestamps_us, values)
    period = max(2, round(86_400_000_000 / grid.step_us))
    # statsmodels' defaults, with the trend and low-pass loess evaluated every
    # ~10% of their window (without jumps a minute-level fit takes minutes).
    jump = max(1, period // 10)
    fit = STL(grid.values, period=period, trend_jump=jump, low_pass_jump=jump).fit()
    residual = np.asarray(fit.resid)
    centre = np.median(residual)
    mad = np.median(np.abs(residual - centre))
    flagged = np.flatnonzero(np.abs(residual - centre) > BASELINE_Z * 1.4826 * mad)
    if flagged.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(flagged) > 1)
    starts = np.concatenate([[flagged[0]], flagged[breaks + 1]])
    ends = np.concatenate([flagged[breaks], [flagged[-1]]])
    stamps = grid.timestamps_us
    return [(int(stamps[a]), int(stamps[b])) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def kind_events(method: int) -> Method:
    """The anomalies kind with ``method`` and default parameters."""

    def run(timestamps_us: Ints, values: Floats) -> list[tuple[int, int]]:
        parameters = apb.AnalysisParameters(anomaly_method=method)  # type: ignore[arg-type]
        report = compute.anomaly_report(parameters, timestamps_us, values)
        return [(e.start_us, e.end_us) for e in report.events]

    return run


METHODS: dict[str, Method] = {
    "seasonal": kind_events(apb.ANOMALY_METHOD_SEASONAL),
    "global": kind_events(apb.ANOMALY_METHOD_GLOBAL),
    "baseline STL+z": baseline_events,
}


@dataclass
class Tally:
    """Counts of one method over a set of series."""

    true_events: int = 0
    found: int = 0
    events: int = 0
    truth: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    def line(self, name: str, series: int) -> str:
        precision = self.true_events / self.events if self.events else 0.0
        recall = self.found / self.truth if self.truth else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return (
            f"{name:16} {self.events:7d} {precision:9.3f} {recall:7.3f} {f1:6.3f} "
            f"{self.seconds / max(series, 1):9.3f}" + (f"  failed: {'; '.join(self.failures)}" if self.failures else "")
        )


HEADER = f"{'method':16} {'events':>7} {'precision':>9} {'recall':>7} {'F1':>6} {'s/series':>9}"


def timed(method: Method, timestamps_us: Ints, values: Floats, tally: Tally, name: str) -> list[tuple[int, int]]:
    started = time.perf_counter()
    try:
        events = method(timestamps_us, values)
    except compute.AnalysisFailed as e:
        tally.failures.append(f"{name}: {e}")
        events = []
    tally.seconds += time.perf_counter() - started
    return events


def sample_part(days: int, interval: int, seeds: int) -> None:
    points = days * 86_400 // interval
    tallies = {name: Tally() for name in METHODS}
    for kind in sample.KINDS:
        for seed in range(seeds):
            generated = sample.generate(kind, points, END, float(interval), seed)
            ts, truth = generated.timestamps_us, generated.anomaly_indices
            for name, method in METHODS.items():
                tally = tallies[name]
                events = timed(method, ts, generated.values, tally, f"{kind.name}/{seed}")
                firsts = np.searchsorted(ts, [a for a, _ in events]).tolist()
                lasts = np.searchsorted(ts, [b for _, b in events]).tolist()
                spans = list(zip(firsts, lasts, strict=True))
                tally.true_events += sum(any(a - 1 <= t <= b + 1 for t in truth) for a, b in spans)
                tally.found += sum(any(a - 1 <= t <= b + 1 for a, b in spans) for t in truth)
                tally.events += len(events)
                tally.truth += int(truth.size)
    count = len(sample.KINDS) * seeds
    print(f"sample series: {count} of {points} points ({days} days, one every {interval} s)")
    print(HEADER)
    for name, tally in tallies.items():
        print(tally.line(name, count))


def read_nab_series(path: Path) -> tuple[Ints, Floats]:
    """A NAB CSV (timestamp,value; UTC-naive times) as epoch µs and values, sorted, duplicates keeping the last."""
    raw = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=None, encoding="utf-8")
    stamps = np.array([np.datetime64(str(row[0]).replace(" ", "T"), "us") for row in raw]).astype(np.int64)
    values = np.array([float(row[1]) for row in raw], dtype=np.float64)
    order = np.argsort(stamps, kind="stable")
    stamps, values = stamps[order], values[order]
    last = np.concatenate([stamps[1:] != stamps[:-1], [True]])
    return stamps[last], values[last]


def _us(text: str) -> int:
    return int(np.datetime64(text.replace(" ", "T"), "us").astype(np.int64))


def nab_part(folder: Path) -> None:
    windows_file = folder / "labels" / "combined_windows.json"
    labels = json.loads(windows_file.read_text())
    names = sorted(k for k in labels if k.startswith(NAB_SET + "/"))
    tallies = {name: Tally() for name in METHODS}
    rows = []
    for key in names:
        ts, values = read_nab_series(folder / "data" / key)
        windows = [(_us(a), _us(b)) for a, b in labels[key]]
        row = [key.split("/", 1)[1].removesuffix(".csv")[:34], f"{ts.size:6d}", f"{len(windows):2d}"]
        for name, method in METHODS.items():
            tally = tallies[name]
            events = timed(method, ts, values, tally, key)
            true_events = sum(any(a <= we and b >= ws for ws, we in windows) for a, b in events)
            found = sum(any(a <= we and b >= ws for a, b in events) for ws, we in windows)
            tally.true_events += true_events
            tally.found += found
            tally.events += len(events)
            tally.truth += len(windows)
            row.append(f"{found}/{len(windows)} {len(events) - true_events:5d}")
        rows.append(row)
    print(f"\nNAB {NAB_SET}: {len(names)} series, {sum(len(labels[k]) for k in names)} labelled incident windows")
    print(f"{'series':34} {'points':>6} {'win':>3}  " + "  ".join(f"{n[:12]:>12}" for n in METHODS))
    print(f"{'':34} {'':6} {'':3}  " + "  ".join(f"{'found false':>12}" for _ in METHODS))
    for row in rows:
        print(f"{row[0]:34} {row[1]} {row[2]:>3}  " + "  ".join(f"{cell:>12}" for cell in row[3:]))
    print(HEADER)
    for name, tally in tallies.items():
        print(tally.line(name, len(names)))
    seasonal_f1, baseline_f1 = (_f1(tallies[n]) for n in ("seasonal", "baseline STL+z"))
    if baseline_f1:
        print(f"seasonal event F1 / baseline event F1: {seasonal_f1 / baseline_f1:.2f}x")


def _f1(tally: Tally) -> float:
    precision = tally.true_events / tally.events if tally.events else 0.0
    recall = tally.found / tally.truth if tally.truth else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--interval", type=int, default=120, help="seconds between points")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    sample_part(args.days, args.interval, args.seeds)
    folder = os.environ.get(NAB_ENV, "").strip()
    if not folder:
        print(
            f"\nreal labelled series skipped: {NAB_ENV} is not set. To measure them: "
            "git clone https://github.com/numenta/NAB /some/where && "
            f"{NAB_ENV}=/some/where ./mesh bench anomaly_quality"
        )
        return
    path = Path(folder)
    if not (path / "labels" / "combined_windows.json").is_file() or not (path / "data" / NAB_SET).is_dir():
        print(
            f"\nreal labelled series skipped: {NAB_ENV}={folder} has no labels/combined_windows.json and "
            f"data/{NAB_SET}/; it should be a clone of https://github.com/numenta/NAB"
        )
        return
    nab_part(path)


if __name__ == "__main__":
    main()
