"""Loading one dataset's points into numpy: load_points vs pandas.read_sql and fetchall.

Starts a throwaway PostgreSQL (through the local stack, without the web app),
fills one dataset with N points in SQL, then reads them back as numpy arrays
four ways in the same run:

- **load_points** (analytics_svc.points.store): binary COPY of the dataset's
  chunk rows, pcodec-decoded into numpy (no Python object per point), the
  chunks split over two connections reading one exported snapshot;
- **load_points on one connection**: the same with ``readers=1``, to show what
  the second connection adds;
- **pandas.read_sql** (the issue's baseline): a SELECT of the same points in
  the one-row-per-point layout (the store's before its chunks) through pandas
  on a psycopg2 connection, the DataFrame's columns taken as arrays;
- **fetchall**: a plain psycopg2 SELECT, rows turned into arrays afterwards
  (what an ORM or ``pandas.read_sql`` does underneath).

Run: ./mesh bench load_points [--points 10000000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
import warnings
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg2

from analytics_svc import schema
from analytics_svc.points import store
from local_stack.stack import Stack, StackSettings, resolve_ports
from mesh_runtime.database import connect

LOAD_POINTS, ONE_READER = "load_points (binary COPY chunks, 2 connections)", "load_points on 1 connection"
READ_SQL, FETCHALL = "pandas.read_sql", "fetchall"
ROUNDS = 3  # the machine may be shared: keep each way's best round


# The one-row-per-point layout the baselines read (the store's before its chunks).
ROW_TABLE = "point_rows"


def fill(dsn: str, n: int) -> str:
    """A dataset with n minute-spaced random points, made in SQL in the row layout and
    analyzed, and stored by the point store too; its id."""
    dataset_id = str(uuid.uuid4())
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO dataset (id, name, description, unit, labels, point_count, create_time, update_time)"
            " VALUES (%s, %s, '', '', '{}', 0, now(), now())",
            (dataset_id, f"bench-{dataset_id[:8]}"),
        )
        cur.execute(
            f"CREATE TABLE {ROW_TABLE} (dataset_id uuid NOT NULL, ts timestamptz NOT NULL,"
            " value double precision NOT NULL, PRIMARY KEY (dataset_id, ts))"
        )
        cur.execute(
            f"INSERT INTO {ROW_TABLE} (dataset_id, ts, value) SELECT %s,"  # noqa: S608
            " timestamptz '2020-01-01' + g * interval '1 minute', random() * 100"
            " FROM generate_series(0, %s - 1) AS g",
            (dataset_id, n),
        )
    db = connect(dsn, max_connections=1)
    schema.bind(db)
    with db.connection_context():
        ts, values = by_fetchall(dsn, dataset_id)
        for start in range(0, n, 1_000_000):
            store.append_points(dataset_id, ts[start : start + 1_000_000], values[start : start + 1_000_000])
    # Statistics as autovacuum would soon gather them: without, the planner
    # expects a few rows and sorts the 10M on disk instead of walking the index.
    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"VACUUM ANALYZE {ROW_TABLE}")
            # Write the fill's dirty pages out now, not in the background of the first timed round.
            cur.execute("CHECKPOINT")
    finally:
        conn.close()
    return dataset_id


SELECT_POINTS = (
    f"SELECT (extract(epoch FROM ts) * 1e6)::bigint AS ts, value FROM {ROW_TABLE}"  # noqa: S608
    " WHERE dataset_id = %s ORDER BY ts"
)


def by_read_sql(dsn: str, dataset_id: str) -> tuple[np.ndarray, np.ndarray]:
    with psycopg2.connect(dsn) as conn, warnings.catch_warnings():
        # pandas warns that it only tests SQLAlchemy connections and sqlite3; a
        # psycopg2 connection works (DBAPI cursor), and keeps SQLAlchemy out.
        warnings.filterwarnings("ignore", "pandas only supports SQLAlchemy", UserWarning)
        frame = pd.read_sql(SELECT_POINTS, conn, params=(dataset_id,))
    return frame["ts"].to_numpy(np.int64), frame["value"].to_numpy(np.float64)


def by_fetchall(dsn: str, dataset_id: str) -> tuple[np.ndarray, np.ndarray]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(SELECT_POINTS, (dataset_id,))
        rows = cur.fetchall()
    ts = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    values = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
    return ts, values


async def run(n: int) -> None:
    load_before = os.getloadavg()[0]  # others' work on a shared machine
    with tempfile.TemporaryDirectory() as scratch:
        zero = {f.name: 0 for f in fields(StackSettings) if f.name.endswith("_port")}
        settings = resolve_ports(StackSettings(state_dir=Path(scratch), web=False, **zero))
        stack = Stack(settings, console=None)
        print("starting a throwaway stack...", flush=True)
        await stack.start()
        try:
            dsn = stack.database_url("analytics")
            print(f"filling one dataset with {n:,} points...", flush=True)
            dataset_id = fill(dsn, n)
            db = connect(dsn, max_connections=1)
            schema.bind(db)

            def with_store(readers: int) -> tuple[np.ndarray, np.ndarray]:
                with db.connection_context():
                    return store.load_points(dataset_id, readers=readers)

            ways = {
                LOAD_POINTS: lambda: with_store(2),
                ONE_READER: lambda: with_store(1),
                READ_SQL: lambda: by_read_sql(dsn, dataset_id),
                FETCHALL: lambda: by_fetchall(dsn, dataset_id),
            }
            timings: dict[str, float] = {}
            expected: tuple[np.ndarray, np.ndarray] | None = None
            for _ in range(ROUNDS):  # alternate, keep the best of each
                for name, way in ways.items():
                    started = time.perf_counter()
                    ts, values = way()
                    timings[name] = min(timings.get(name, 1e9), time.perf_counter() - started)
                    if expected is None:
                        expected = ts, values
                    assert ts.size == n and np.array_equal(ts, expected[0]) and np.array_equal(values, expected[1])
                    del ts, values  # free 10M rows' worth before the next way runs
        finally:
            await stack.stop()
    print(
        f"\nReading {n:,} points of one dataset into numpy, best of {ROUNDS}; load average"
        f" {load_before:.1f} on {os.cpu_count()} CPUs before the run\n"
    )
    print("| way | seconds | points/s | vs pandas.read_sql | vs fetchall |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in timings.items():
        print(
            f"| {name} | {seconds:.2f} | {n / seconds:,.0f} | {timings[READ_SQL] / seconds:.1f}x"
            f" | {timings[FETCHALL] / seconds:.1f}x |"
        )
    print(
        f"\nload_points is {timings[READ_SQL] / timings[LOAD_POINTS]:.1f}x as fast as pandas.read_sql"
        f" ({timings[READ_SQL] / timings[ONE_READER]:.1f}x on one connection)"
        f" and {timings[FETCHALL] / timings[LOAD_POINTS]:.1f}x as fast as fetchall"
    )


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
