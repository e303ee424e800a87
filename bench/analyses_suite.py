"""The analysis suite's cost over the bare numpy work it does, on one big series.

Both sides run on the same in-memory arrays (10M points by default): the
suite is analytics_svc.analyses.numeric with its input checks and result objects; the
baseline is the same numpy operations written inline (EWMA uses the module's
own scan, since numpy has none). Rounds alternate so drift hits both alike;
the best of each is compared.

Run: ./mesh bench analyses_suite [--points 10000000 --rounds 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from analytics_svc.analyses import numeric

QS = [0.05, 0.25, 0.5, 0.75, 0.95]


def make_series(points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A minute-spaced noisy series with one spike, and a second series on every other timestamp."""
    rng = np.random.default_rng(0)
    ts = 1_700_000_000_000_000 + np.arange(points, dtype=np.int64) * 60_000_000
    values = rng.normal(100, 15, points)
    values[points // 3] = 1000.0
    other_ts = ts[::2].copy()
    return ts, values, other_ts, rng.normal(0, 1, other_ts.size)


def suite_of(ts: np.ndarray, vs: np.ndarray, ts_b: np.ndarray, vb: np.ndarray) -> Callable[[], None]:
    def run() -> None:
        numeric.summary(vs)
        numeric.quantiles(vs, QS)
        numeric.histogram(vs, bins=50)
        numeric.linear_trend(ts, vs)
        numeric.moving_average(vs, 100)
        numeric.ewma(vs, 0.05)
        numeric.robust_anomalies(ts, vs)
        numeric.correlate(ts, vs, ts_b, vb)

    return run


def bare_of(ts: np.ndarray, vs: np.ndarray, ts_b: np.ndarray, vb: np.ndarray) -> Callable[[], None]:
    def run() -> None:
        mean = vs.mean()
        centred = vs - mean
        np.dot(centred, centred)
        vs.min()
        vs.max()
        np.quantile(vs, QS)
        np.histogram(vs, bins=50)
        x = (ts - ts[0]).astype(np.float64) / 1e6
        xc = x - x.mean()
        np.dot(xc, xc)
        np.dot(xc, centred)
        sums = np.cumsum(centred)
        (sums[100:] - sums[:-100]) / 100
        numeric._ewma_scan(vs, 0.05)
        median = np.median(vs)
        deviation = np.abs(vs - median)
        np.flatnonzero(deviation > 3.5 * np.median(deviation) / 0.6745)
        _, ia, ib = np.intersect1d(ts, ts_b, assume_unique=True, return_indices=True)
        np.corrcoef(vs[ia], vb[ib])

    return run


def best_of(run: Callable[[], None], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    """Parse arguments, run both sides alternately, print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.points < 1000 or args.rounds < 1:
        parser.error("--points must be at least 1000 and --rounds at least 1")
    data = make_series(args.points)
    sides = {"bare numpy": bare_of(*data), "analyses suite": suite_of(*data)}
    best = {name: float("inf") for name in sides}
    for _ in range(2):
        for name, run in sides.items():
            best[name] = min(best[name], best_of(run, args.rounds))
    print(f"All analyses on {args.points:,} points in memory, best of {2 * args.rounds} runs\n")
    print("| side | seconds |")
    print("|---|---:|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds:.3f} |")
    print(f"\nanalyses suite = {best['analyses suite'] / best['bare numpy']:.2f}x the bare numpy time")


if __name__ == "__main__":
    main()
