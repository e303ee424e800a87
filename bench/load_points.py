"""Loading one dataset's points into numpy: binary COPY vs fetchall.

Starts a throwaway PostgreSQL (through the local stack, without the web app),
fills one dataset with N points in SQL, then reads them back as numpy arrays
two ways in the same run:

- **load_points** (analytics_svc.store): ``COPY ... TO STDOUT WITH BINARY``
  parsed by a numpy dtype, no Python object per row;
- **fetchall** (the baseline): a plain psycopg2 SELECT, rows turned into
  arrays afterwards — what an ORM or ``pandas.read_sql`` does underneath.

Run: ./mesh bench load_points [--points 10000000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from dataclasses import fields
from pathlib import Path

import numpy as np
import psycopg2

from analytics_svc import store
from mesh_cli import infra
from mesh_cli.stack import Stack, StackSettings, resolve_ports
from mesh_runtime.database import connect


def fill(dsn: str, n: int) -> str:
    """A dataset with n minute-spaced random points, made in SQL; its id."""
    dataset_id = str(uuid.uuid4())
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO dataset (id, name, description, unit, labels, point_count, create_time, update_time)"
            " VALUES (%s, %s, '', '', '{}', %s, now(), now())",
            (dataset_id, f"bench-{dataset_id[:8]}", n),
        )
        cur.execute(
            "INSERT INTO point (dataset_id, ts, value) SELECT %s,"
            " timestamptz '2020-01-01' + g * interval '1 minute', random() * 100"
            " FROM generate_series(0, %s - 1) AS g",
            (dataset_id, n),
        )
    return dataset_id


def by_fetchall(dsn: str, dataset_id: str) -> tuple[np.ndarray, np.ndarray]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT (extract(epoch FROM ts) * 1e6)::bigint, value FROM point WHERE dataset_id = %s ORDER BY ts",
            (dataset_id,),
        )
        rows = cur.fetchall()
    ts = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    values = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
    return ts, values


async def run(n: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        zero = {f.name: 0 for f in fields(StackSettings) if f.name.endswith("_port")}
        settings = resolve_ports(StackSettings(state_dir=Path(scratch), web=False, **zero))
        stack = Stack(settings, console=None)
        print("starting a throwaway stack...", flush=True)
        await stack.start()
        try:
            dsn = infra.postgres_dsn(settings.postgres_port, "analytics")
            print(f"filling one dataset with {n:,} points...", flush=True)
            dataset_id = fill(dsn, n)
            db = connect(dsn, max_connections=1)
            store.bind(db)
            timings: dict[str, float] = {}
            for _ in range(2):  # alternate, keep the best of each
                with db.connection_context():
                    started = time.perf_counter()
                    ts, values = store.load_points(dataset_id)
                    timings["load_points (binary COPY)"] = min(
                        timings.get("load_points (binary COPY)", 1e9), time.perf_counter() - started
                    )
                started = time.perf_counter()
                ts2, values2 = by_fetchall(dsn, dataset_id)
                timings["fetchall"] = min(timings.get("fetchall", 1e9), time.perf_counter() - started)
            assert ts.size == ts2.size == n and np.array_equal(ts, ts2) and np.array_equal(values, values2)
        finally:
            await stack.stop()
    base = timings["fetchall"]
    print(f"\nReading {n:,} points of one dataset into numpy, best of 2\n")
    print("| way | seconds | points/s | speed-up |")
    print("|---|---:|---:|---:|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds:.2f} | {n / seconds:,.0f} | {base / seconds:.1f}x |")


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    args = parser.parse_args()
    if args.points < 10_000:
        parser.error("--points must be at least 10000")
    asyncio.run(run(args.points))


if __name__ == "__main__":
    main()
