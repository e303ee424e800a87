"""Bench: one analysis of 100M points in bounded memory, against the in-memory computation.

    ./mesh bench analysis_scale                      # 100M points (the README's figures)
    ./mesh bench analysis_scale --points 10000000    # smaller, quicker
    ./mesh bench analysis_scale --dask               # the chunk work on a local Dask cluster too

A throwaway PostgreSQL; a dataset of N points a minute apart (daily and weekly
cycles, a trend, noise, injected spikes) written through the point store, with
progress. Then, each in a fresh process whose peak RSS (VmHWM) is measured:

1. the big analysis: a report (summary, quantiles, histogram, trend with its
   HAC uncertainty, global anomalies) of all N points over chunks, at the
   default ANALYTICS_ANALYSIS_MEMORY_MB. Goal: peak RSS <= 1 GB.
2. the baseline, same run: the in-memory computation of a sample (the first
   S points, default 2M) and the chunked computation of the same sample with
   a budget that forces chunks (batches of ~100k points). Their numbers must be
   equal (exact figures to 1e-9 relative) or within the stated error
   (quantiles and anomaly median/MAD: the KLL rank error; the rank of each
   approximate value is checked against the sorted sample).

Reported: points/s and peak RSS of each, bytes of RSS per point, and the
chunked/in-memory ratios. Figures measured under load are labelled with the
load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psycopg2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MINUTE_US = 60_000_000
START_US = 1_600_000_000_000_000
WRITE_BATCH = 2_000_000
GOAL_RSS_MB = 1024


def series(first: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points ``first`` .. ``first + n`` of the bench series: a minute apart around 100, daily and
    weekly cycles, a trend of +5 every 100M points, Gaussian noise of 1, and a spike of +-80
    every 100,003 points (far enough out for the global method)."""
    i = np.arange(first, first + n, dtype=np.int64)
    t = i.astype(np.float64) * 60.0
    rng = np.random.default_rng(first)
    values = (
        100.0
        + 10.0 * np.sin(2 * np.pi * t / 86_400)
        + 5.0 * np.sin(2 * np.pi * t / (7 * 86_400))
        + 5e-8 * i
        + rng.normal(0.0, 1.0, n)
    )
    spikes = i % 100_003 == 50_000
    values[spikes] += np.where(i[spikes] % 2 == 0, 80.0, -80.0)
    return START_US + i * MINUTE_US, values


# --- the analysis process -------------------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    """Run one analysis in this process; print its figures, time and peak RSS as JSON."""
    from analytics_svc import schema
    from analytics_svc.analyses import chunked, compute
    from analytics_svc.analyses.distributed import DaskCluster
    from analytics_svc.points import store
    from mesh.analytics.v1 import analysis_pb2 as apb
    from mesh_runtime.database import connect

    db = connect(args.dsn, max_connections=4)
    schema.bind(db)
    parameters = apb.AnalysisParameters(anomaly_method=apb.ANOMALY_METHOD_GLOBAL)
    kind = apb.ANALYSIS_KIND_REPORT
    started = time.perf_counter()
    with db.connection_context():
        if args.mode == "memory":
            ts, values = store.load_points(args.dataset, None, args.end)
            outcome = compute.run(kind, parameters, ts, values)
            del ts, values
        else:
            cluster = DaskCluster(args.dask) if args.dask else None
            budget = chunked.Budget.of(args.memory_mb, cluster)
            outcome = chunked.execute(kind, parameters, args.dataset, None, args.end, None, budget)
            if cluster is not None:
                cluster.close()
    seconds = time.perf_counter() - started
    out = outcome.output
    figures = {
        "seconds": seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "count": out.summary.count,
        "mean": out.summary.mean,
        "std": out.summary.std,
        "min": out.summary.min,
        "max": out.summary.max,
        "quantiles": {str(q.level): q.value for q in out.quantiles},
        "histogram": list(out.histogram.counts),
        "slope": out.trend.slope_per_second,
        "intercept": out.trend.intercept,
        "r_squared": out.trend.r_squared,
        "slope_std_error": out.trend.uncertainty.slope_std_error,
        "p_value": out.trend.uncertainty.p_value,
        "median": out.anomalies.median,
        "mad": out.anomalies.mad,
        "events": out.anomalies.anomaly_count,
        "flagged": out.anomalies.flagged_point_count,
        "computation": {
            "mode": out.computation.mode,
            "exact": out.computation.exact,
            "rank_error": out.computation.quantile_rank_error,
            "batch_points": out.computation.batch_points,
            "passes": out.computation.passes,
            "parts": out.computation.parts,
        },
    }
    print(json.dumps(figures))


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def analyse(dsn: str, dataset: str, mode: str, memory_mb: int, end: int | None = None,
            dask: str = "") -> dict[str, Any]:  # fmt: skip
    argv = [sys.executable, __file__, "--child", "--dsn", dsn, "--dataset", dataset, "--mode", mode,
            "--memory-mb", str(memory_mb)]  # fmt: skip
    if end is not None:
        argv += ["--end", str(end)]
    if dask:
        argv += ["--dask", dask]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"analysis process failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- set-up --------------------------------------------------------------------------------------


def start_postgres(state: Path) -> tuple[subprocess.Popen[bytes], str]:
    from local_stack import infra
    from local_stack.ports import free_port
    from local_stack.processes import as_user

    port = free_port()
    user = infra.prepare_postgres(state / "postgres")
    spec = infra.postgres_spec(state / "postgres", port, user, fast=True)
    process = subprocess.Popen(list(spec.argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               **as_user(user))  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            infra.postgres_ready(port)
            break
        except psycopg2.OperationalError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.terminate()
                raise SystemExit("PostgreSQL did not start") from None
            time.sleep(0.2)
    infra.ensure_databases(port, ["analytics"])
    return process, infra.postgres_dsn(port, "analytics")


def ingest(dsn: str, n: int) -> str:
    """A new dataset with the first ``n`` points of the series; its id."""
    from analytics_svc import schema
    from analytics_svc.datasets import store as dataset_store
    from analytics_svc.points import store
    from mesh_runtime.database import open_database

    db = open_database(dsn, schema.MIGRATIONS, setting_name="bench", pool_size=2, bind=schema.bind)
    with db.connection_context():
        dataset = dataset_store.create_dataset(dataset_store.NewDataset(name=f"scale-{uuid.uuid4().hex[:8]}"))
        started = time.perf_counter()
        for first in range(0, n, WRITE_BATCH):
            ts, values = series(first, min(WRITE_BATCH, n - first))
            store.append_points(str(dataset.id), ts, values)
            done = first + ts.size
            rate = done / (time.perf_counter() - started)
            print(f"\r  ingested {done:,} of {n:,} points ({rate / 1e6:.2f}M pts/s, "
                  f"{(n - done) / rate:.0f} s left)   ", end="", flush=True)  # fmt: skip
        print(flush=True)
    db.close_all()
    return str(dataset.id)


# --- comparison ----------------------------------------------------------------------------------


def compare(memory: dict[str, Any], chunks: dict[str, Any], sample: np.ndarray) -> list[str]:
    """What differs between the in-memory and the chunked figures beyond the stated error."""
    problems = []
    for name in ("count", "mean", "std", "min", "max", "slope", "intercept", "r_squared", "slope_std_error"):
        if not np.isclose(memory[name], chunks[name], rtol=1e-9, atol=1e-12):
            problems.append(f"{name}: {memory[name]!r} in memory, {chunks[name]!r} over chunks")
    if memory["histogram"] != chunks["histogram"]:
        problems.append("histogram counts differ")
    error = chunks["computation"]["rank_error"]
    ordered = np.sort(sample)
    for level, value in chunks["quantiles"].items():
        rank = np.searchsorted(ordered, value, side="left") / ordered.size
        high = np.searchsorted(ordered, value, side="right") / ordered.size
        if not (rank - error <= float(level) <= high + error):
            problems.append(f"quantile {level}: value {value} has rank {rank:.5f}, beyond the error {error:.5f}")
    rank = np.searchsorted(ordered, chunks["median"]) / ordered.size
    if abs(rank - 0.5) > error:
        problems.append(f"median rank {rank:.5f}")
    if (memory["events"], memory["flagged"]) != (chunks["events"], chunks["flagged"]):
        problems.append(f"events: {memory['events']} in memory, {chunks['events']} over chunks")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100_000_000, help="points of the big analysis")
    parser.add_argument("--sample", type=int, default=2_000_000, help="points compared with the in-memory path")
    parser.add_argument("--memory-mb", type=int, default=256, help="ANALYTICS_ANALYSIS_MEMORY_MB of the big run")
    parser.add_argument("--dask", nargs="?", const="local", default="", help="also run on a local Dask cluster")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--end", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="analysis-scale-") as scratch:
        print("starting a throwaway PostgreSQL...", flush=True)
        postgres, dsn = start_postgres(Path(scratch))
        try:
            print(f"writing {args.points:,} points...", flush=True)
            dataset = ingest(dsn, args.points)
            sample_end = START_US + args.sample * MINUTE_US
            print(f"baseline: the first {args.sample:,} points in memory and over chunks...", flush=True)
            memory = analyse(dsn, dataset, "memory", args.memory_mb, sample_end)
            # A budget that forces chunks on the sample: batches of ~100k points.
            small = analyse(dsn, dataset, "chunks", 16, sample_end)
            problems = compare(memory, small, series(0, args.sample)[1])
            print(f"the whole {args.points:,} points over chunks ({args.memory_mb} MB)...", flush=True)
            big = analyse(dsn, dataset, "chunks", args.memory_mb)
            on_dask = None
            if args.dask:
                on_dask = _on_dask(dsn, dataset, args)
        finally:
            postgres.terminate()
            postgres.wait(30)
    _report(args, memory, small, big, on_dask, problems, load_before)
    if problems or big["peak_rss_mb"] > GOAL_RSS_MB:
        raise SystemExit(1)


def _on_dask(dsn: str, dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    from distributed import LocalCluster

    os.environ["ANALYTICS_DATABASE_URL"] = dsn  # the Dask workers' own configuration
    os.environ["ANALYTICS_ANALYSIS_MEMORY_MB"] = str(args.memory_mb)
    print("the same on a local Dask cluster (2 worker processes)...", flush=True)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        return analyse(dsn, dataset, "chunks", args.memory_mb, dask=cluster.scheduler_address)


def _report(args: argparse.Namespace, memory: dict[str, Any], small: dict[str, Any], big: dict[str, Any],
            on_dask: dict[str, Any] | None, problems: list[str], load_before: float) -> None:  # fmt: skip
    load = max(load_before, os.getloadavg()[0])
    print(f"\nanalysis_scale (report kind, global anomalies; load average {load:.1f} on {os.cpu_count()} cores)")
    rows = [
        ("in memory, sample", args.sample, memory),
        ("over chunks, sample (16 MB)", args.sample, small),
        (f"all ({args.memory_mb} MB)", args.points, big),
    ]
    if on_dask is not None:
        rows.append(("on Dask (2 workers), all", args.points, on_dask))
    print(f"{'run':<34} {'points':>13} {'seconds':>8} {'M pts/s':>8} {'peak RSS MB':>12} {'passes':>6} mode")
    for name, n, r in rows:
        print(f"{name:<34} {n:>13,} {r['seconds']:>8.1f} {n / r['seconds'] / 1e6:>8.2f} "
              f"{r['peak_rss_mb']:>12.0f} {r['computation']['passes']:>6} {r['computation']['mode']}")  # fmt: skip
    per_point_memory = memory["peak_rss_mb"] * 2**20 / args.sample
    print(f"in memory: {per_point_memory:.0f} B of RSS a point: {args.points:,} points would need "
          f"~{per_point_memory * args.points / 2**30:.1f} GB; over chunks they took {big['peak_rss_mb']:.0f} MB "
          f"({big['peak_rss_mb'] / (per_point_memory * args.points / 2**20):.3f}x)")  # fmt: skip
    print(f"speed over chunks / in memory: {args.points / big['seconds'] / (args.sample / memory['seconds']):.2f}x")
    print(f"peak RSS {big['peak_rss_mb']:.0f} MB: goal <= {GOAL_RSS_MB} MB "
          f"{'met' if big['peak_rss_mb'] <= GOAL_RSS_MB else 'NOT met'}")  # fmt: skip
    print(f"events found over all points: {big['events']} ({big['flagged']} flagged points); "
          f"in the sample {memory['events']} in memory, {small['events']} over chunks")  # fmt: skip
    if on_dask is not None:
        same = all(np.isclose(big[k], on_dask[k], rtol=1e-9) for k in ("mean", "std", "slope", "slope_std_error"))
        same = same and big["histogram"] == on_dask["histogram"] and big["events"] == on_dask["events"]
        print(f"Dask equals in-process on exact figures: {'yes' if same else 'NO'}")
    print(f"sample, chunks vs in memory: {'equal within the stated error' if not problems else 'DIFFERENT'} "
          f"(rank error {small['computation']['rank_error']:.5f})")  # fmt: skip
    for problem in problems:
        print(f"  {problem}")


if __name__ == "__main__":
    main()
