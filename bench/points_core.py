"""The time-series core against its peers on the same points: ingest, bytes on disk,
a 1,000-bucket query and a full load, all measured in one run.

Generates N points of one series, 60 s apart (daily and weekly cycles, a
trend, Gaussian noise), twice: at full float64 precision ("full") and rounded
to 3 decimals ("r3", what sensors send). Starts a throwaway local stack
(PostgreSQL, the services) and, for each variant, runs side by side:

- **our store** (analytics_svc.points): ``IngestPoints`` over gRPC in batches
  of 100,000, end to end; the storage layer alone (``append_points`` from
  numpy arrays to committed chunks, in batches of 100,000 and of 1,000,000,
  each batch its own transaction, committed with fsync on: the throwaway
  stack's PostgreSQL runs with fsync and synchronous_commit on, as in
  production; the issue's target for it is STORAGE_TARGET); bytes on disk of
  ``point_chunk`` (table, index, TOAST) as written and after ``VACUUM FULL``;
  the 1,000-bucket query (``QueryPoints`` over gRPC, one-week steps over all
  points: count, min, max, mean; and ``query_buckets``, the store alone);
  ``load_points`` of all points;
- **PostgreSQL, one row per point** (the store's layout before its chunks):
  a raw psycopg2 binary COPY into it (the ingest baseline), its bytes on disk,
  the same buckets with ``date_bin ... GROUP BY``, the previous
  ``load_points``' read of that layout (binary COPY of bytea-aggregated rows
  over two connections on one snapshot: the load baseline), and
  ``pandas.read_sql``;
- **DuckDB** in-process (a bench-only dependency): ``INSERT`` from a
  DataFrame and ``CHECKPOINT``, its file size, the ``time_bucket`` query.

Timings are the best of a few rounds (the machine may be shared); the load
average before the run is printed beside them.

Run: ./mesh bench points_core [--points 10000000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import queue
import secrets
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import duckdb
import grpc
import numpy as np
import pandas as pd
import psycopg2
from google.protobuf import duration_pb2

from analytics_svc import schema
from analytics_svc.points import store
from analytics_svc.points.pgcopy import Appender
from local_stack.stack import Stack, StackSettings, resolve_ports
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2, points_pb2
from mesh.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from mesh_runtime.database import connect

BATCH = 100_000
# Issue 22: the storage layer alone (numpy arrays to committed chunks) stores at least this many points/s.
STORAGE_TARGET = 5_000_000
ROUNDS = 3
SECOND = 1_000_000
WEEK = 7 * 86_400 * SECOND
START_US = 946_684_800 * SECOND  # 2000-01-01T00:00:00Z
POSTGRES_EPOCH_US = 946_684_800 * SECOND


def series(n: int, decimals: int | None) -> tuple[np.ndarray, np.ndarray]:
    """n points a minute apart around 100 (daily and weekly cycles, a trend of +5 over the
    span, Gaussian noise of 1), rounded if asked. Full precision, its noise floor is
    about 6.0 bytes a point: the noise spans 2^48 steps of a double between 64 and 128."""
    ts = START_US + np.arange(n, dtype=np.int64) * 60 * SECOND
    t = np.arange(n, dtype=np.float64) * 60.0
    rng = np.random.default_rng(7)
    values = (
        100.0
        + 10.0 * np.sin(2 * np.pi * t / 86_400)
        + 5.0 * np.sin(2 * np.pi * t / (7 * 86_400))
        + 5.0 * t / max(t[-1], 1.0)
        + rng.normal(0.0, 1.0, n)
    )
    return ts, values if decimals is None else np.round(values, decimals)


def best(fn: Callable[[], Any], rounds: int = ROUNDS) -> tuple[float, Any]:
    """The fastest of ``rounds`` calls (seconds) and the last result."""
    fastest, result = float("inf"), None
    for _ in range(rounds):
        started = time.perf_counter()
        result = fn()
        fastest = min(fastest, time.perf_counter() - started)
    return fastest, result


# --- PostgreSQL, one row per point -------------------------------------------------

# A binary COPY row of (uuid, timestamptz, float8).
_ROW = np.dtype([
    ("fields", ">i2"), ("id_len", ">i4"), ("id", "V16"), ("ts_len", ">i4"), ("ts", ">i8"),
    ("value_len", ">i4"), ("value", ">f8"),
])  # fmt: skip


def row_copy(dsn: str, dataset_id: str, ts: np.ndarray, values: np.ndarray) -> float:
    """Seconds for a raw psycopg2 binary COPY of the points into the row layout, formatting included."""
    started = time.perf_counter()
    rows = np.empty(ts.size, _ROW)
    rows["fields"], rows["id_len"], rows["ts_len"], rows["value_len"] = 3, 16, 8, 8
    rows["id"] = np.frombuffer(uuid.UUID(dataset_id).bytes, "V16")[0]
    rows["ts"] = ts - POSTGRES_EPOCH_US
    rows["value"] = values
    data = b"PGCOPY\n\xff\r\n\x00" + bytes(8) + rows.tobytes() + b"\xff\xff"
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.copy_expert("COPY point_rows (dataset_id, ts, value) FROM STDIN WITH BINARY", io.BytesIO(data), 1 << 20)
    conn.close()
    return time.perf_counter() - started


def date_bin(dsn: str, dataset_id: str) -> int:
    """The 1,000-bucket query over the row layout; the number of buckets."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT date_bin('7 days', ts, timestamptz '1970-01-01Z'), count(*), min(value), max(value), avg(value)"
            " FROM point_rows WHERE dataset_id = %s GROUP BY 1 ORDER BY 1",
            (dataset_id,),
        )
        rows = cur.fetchall()
    conn.close()
    return len(rows)


def previous_load(dsn: str, dataset_id: str, first_us: int, last_us: int) -> tuple[np.ndarray, np.ndarray]:
    """The previous load_points' read of the row layout: the time span cut in 8 ranges,
    read by two connections on one exported snapshot, each range as binary COPY rows of
    262,144 points aggregated into one bytea of (timestamptz, float8) pairs."""
    pair = np.dtype([("ts", ">i8"), ("value", ">f8")])
    bounds = [first_us + (last_us + 1 - first_us) * i // 8 for i in range(9)]
    ranges: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in range(8):
        ranges.put(i)
    results: list[list[np.ndarray]] = [[] for _ in range(8)]

    def drain(cur: Any) -> None:
        while True:
            try:
                i = ranges.get_nowait()
            except queue.Empty:
                return
            lo, hi = bounds[i], bounds[i + 1]
            while lo < hi:
                messages: list[bytes] = []
                cur.copy_expert(
                    cur.mogrify(
                        "COPY (SELECT string_agg(timestamptz_send(ts) || float8send(value), ''::bytea ORDER BY ts)"
                        " FROM (SELECT ts, value FROM point_rows WHERE dataset_id = %s"
                        " AND ts >= to_timestamp(%s) + %s * interval '1 microsecond'"
                        " AND ts < to_timestamp(%s) + %s * interval '1 microsecond' ORDER BY ts LIMIT 262144) c)"
                        " TO STDOUT WITH BINARY",
                        [dataset_id, *divmod(lo, SECOND), *divmod(hi, SECOND)],
                    ).decode(),
                    Appender(messages),
                )
                data = memoryview(b"".join(messages))[:-2]
                length = int.from_bytes(data[21:25], "big", signed=True)
                if length <= 0:
                    break
                chunk = np.frombuffer(data, pair, count=length // 16, offset=25)
                results[i].append(chunk)
                if chunk.size < 262_144:
                    break
                lo = int(chunk["ts"][-1]) + POSTGRES_EPOCH_US + 1

    leader = psycopg2.connect(dsn)
    leader.set_session(isolation_level="REPEATABLE READ", readonly=True)
    with leader.cursor() as cur:
        cur.execute("SELECT pg_export_snapshot()")
        (snapshot,) = cur.fetchone()

        def helper() -> None:
            conn = psycopg2.connect(dsn)
            conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
            with conn.cursor() as other:
                other.execute("SET TRANSACTION SNAPSHOT %s", (snapshot,))
                drain(other)
            conn.close()

        thread = threading.Thread(target=helper)
        thread.start()
        drain(cur)
        thread.join()
    leader.close()
    chunks = [chunk for part in results for chunk in part]
    total = sum(c.size for c in chunks)
    ts, values = np.empty(total, np.int64), np.empty(total, np.float64)
    at = 0
    for chunk in chunks:
        ts[at : at + chunk.size] = chunk["ts"]
        ts[at : at + chunk.size] += POSTGRES_EPOCH_US
        values[at : at + chunk.size] = chunk["value"]
        at += chunk.size
    return ts, values


def read_sql(dsn: str, dataset_id: str) -> tuple[np.ndarray, np.ndarray]:
    with psycopg2.connect(dsn) as conn, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "pandas only supports SQLAlchemy", UserWarning)
        frame = pd.read_sql(
            "SELECT (extract(epoch FROM ts) * 1000000)::bigint AS ts, value FROM point_rows"
            " WHERE dataset_id = %s ORDER BY ts",
            conn,
            params=(dataset_id,),
        )
    conn.close()
    return frame["ts"].to_numpy(np.int64), frame["value"].to_numpy(np.float64)


# --- our store ------------------------------------------------------------------------


def ingest(address: str, token: str, dataset_id: str, ts: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Seconds for IngestPoints of the points in batches of 100,000, end to end, and the
    seconds of it the client spent building the requests (on the same cores)."""
    building = 0.0

    def batches() -> Iterator[pb.IngestPointsRequest]:
        nonlocal building
        for start in range(0, ts.size, BATCH):
            began = time.perf_counter()
            request = pb.IngestPointsRequest(
                dataset_id=dataset_id,
                timestamps_us=ts[start : start + BATCH].tolist(),
                values=values[start : start + BATCH].tolist(),
            )
            building += time.perf_counter() - began
            yield request

    started = time.perf_counter()
    with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        reply = pb_grpc.AnalyticsServiceStub(channel).IngestPoints(
            batches(), timeout=600, metadata=(("authorization", f"Bearer {token}"),)
        )
    assert reply.accepted_count == ts.size, reply
    return time.perf_counter() - started, building


def query_points(stub: pb_grpc.AnalyticsServiceStub, token: str, dataset_id: str) -> pb.QueryPointsResponse:
    """QueryPoints over gRPC: the dataset's whole range in one-week buckets, count, min, max and mean."""
    return stub.QueryPoints(
        pb.QueryPointsRequest(
            dataset_id=dataset_id,
            step=duration_pb2.Duration(seconds=WEEK // SECOND),
            aggregations=[
                points_pb2.AGGREGATION_COUNT, points_pb2.AGGREGATION_MIN,
                points_pb2.AGGREGATION_MAX, points_pb2.AGGREGATION_MEAN,
            ],
        ),
        timeout=60,
        metadata=(("authorization", f"Bearer {token}"),),
    )  # fmt: skip


def append(dataset_id: str, ts: np.ndarray, values: np.ndarray, batch: int) -> float:
    """Seconds for the storage layer alone: append_points of the points in batches (each its own commit)."""
    started = time.perf_counter()
    for start in range(0, ts.size, batch):
        store.append_points(dataset_id, ts[start : start + batch], values[start : start + batch])
    return time.perf_counter() - started


# --- DuckDB ---------------------------------------------------------------------------


def duck_ingest(path: Path, ts: np.ndarray, values: np.ndarray) -> tuple[float, duckdb.DuckDBPyConnection]:
    """Seconds for INSERT from a DataFrame and CHECKPOINT into a DuckDB file; the open connection."""
    con = duckdb.connect(str(path))
    # TIMESTAMP (UTC by convention), not TIMESTAMPTZ: time_bucket on the latter
    # goes through ICU time zone rules for every row, 100x slower.
    con.execute("CREATE TABLE points (ts TIMESTAMP NOT NULL, value DOUBLE NOT NULL)")
    con.register("frame", pd.DataFrame({"ts": ts.astype("datetime64[us]"), "value": values}))
    started = time.perf_counter()
    con.execute("INSERT INTO points SELECT ts, value FROM frame")
    con.execute("CHECKPOINT")
    return time.perf_counter() - started, con


def duck_buckets(con: duckdb.DuckDBPyConnection) -> int:
    rows = con.execute(
        "SELECT time_bucket(INTERVAL '7 days', ts, TIMESTAMP '1970-01-01 00:00:00') AS b, count(*),"
        " min(value), max(value), avg(value) FROM points GROUP BY b ORDER BY b"
    ).fetchall()
    return len(rows)


# --- the run ----------------------------------------------------------------------------


@dataclass
class Variant:
    """The figures of one variant of the series."""

    name: str
    seconds: dict[str, float] = field(default_factory=dict)
    bytes_per_point: dict[str, float] = field(default_factory=dict)


def _pg_size(dsn: str, table: str) -> int:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_total_relation_size(%s)", (table,))
        (size,) = cur.fetchone()
    conn.close()
    return int(size)


def _sql(dsn: str, *statements: str, drop: tuple[str, ...] = ()) -> None:
    """Delete the datasets ``drop`` (and their points), then run each statement outside a transaction."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        if drop:
            cur.execute("DELETE FROM point_rows WHERE dataset_id::text = ANY(%s)", (list(drop),))
            cur.execute("DELETE FROM dataset WHERE id::text = ANY(%s)", (list(drop),))
        for statement in statements:
            cur.execute(statement)
    conn.close()


async def run(n: int) -> None:
    load_before = os.getloadavg()[0]
    variants = [Variant("full"), Variant("r3")]
    with tempfile.TemporaryDirectory() as scratch:
        zero = {f.name: 0 for f in fields(StackSettings) if f.name.endswith("_port")}
        settings = resolve_ports(StackSettings(state_dir=Path(scratch), web=False, **zero))  # type: ignore[arg-type]
        admin = ("bench-admin", secrets.token_urlsafe(16))
        stack = Stack(
            settings,
            console=None,
            extra_env={"AUTH_BOOTSTRAP_ADMIN_USERNAME": admin[0], "AUTH_BOOTSTRAP_ADMIN_PASSWORD": admin[1]},
        )
        print("starting a throwaway stack...", flush=True)
        await stack.start()
        try:
            address = f"127.0.0.1:{settings.analytics_port}"
            dsn = stack.database_url("analytics")
            db = connect(dsn, max_connections=2)
            schema.bind(db)
            _sql(
                dsn,
                # The previous point table without its foreign key: a faster baseline (no check per row).
                "CREATE TABLE point_rows (dataset_id uuid NOT NULL,"
                " ts timestamptz NOT NULL, value double precision NOT NULL, PRIMARY KEY (dataset_id, ts))",
            )
            with grpc.insecure_channel(address) as channel:
                token = auth_service_pb2_grpc.AuthServiceStub(channel).Login(
                    auth_service_pb2.LoginRequest(username=admin[0], password=admin[1]), timeout=10
                ).session.access_token
                stub = pb_grpc.AnalyticsServiceStub(channel)

                def new_dataset() -> str:
                    return str(stub.CreateDataset(
                        pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"bench-{uuid.uuid4().hex[:8]}")),
                        timeout=10, metadata=(("authorization", f"Bearer {token}"),),
                    ).dataset.id)  # fmt: skip

                for variant in variants:
                    print(f"{variant.name}: generating {n:,} points...", flush=True)
                    ts, values = series(n, None if variant.name == "full" else 3)
                    await asyncio.to_thread(_measure, variant, dsn, address, token, new_dataset, ts, values,
                                            Path(scratch))  # fmt: skip
                    del ts, values
            db.close_all()
        finally:
            await stack.stop()
    _report(n, variants, load_before)


def _measure(variant: Variant, dsn: str, address: str, token: str, new_dataset: Callable[[], str],
             ts: np.ndarray, values: np.ndarray, scratch: Path) -> None:  # fmt: skip
    n, s, size = ts.size, variant.seconds, variant.bytes_per_point
    rows_id, grpc_id, layer_id, big_id = new_dataset(), new_dataset(), new_dataset(), new_dataset()
    print(f"{variant.name}: ingest...", flush=True)
    s["row COPY"] = row_copy(dsn, rows_id, ts, values)
    _sql(dsn, "VACUUM ANALYZE point_rows", "CHECKPOINT")
    size["row layout"] = _pg_size(dsn, "point_rows") / n
    with schema.database_proxy.connection_context():
        s["append_points"] = append(layer_id, ts, values, BATCH)
    _sql(dsn, "VACUUM ANALYZE point_chunk")
    size["chunks as written"] = _pg_size(dsn, "point_chunk") / n
    _sql(dsn, "VACUUM FULL ANALYZE point_chunk", "CHECKPOINT")
    size["chunks"] = _pg_size(dsn, "point_chunk") / n
    with schema.database_proxy.connection_context():
        s["append_points 1M"] = append(big_id, ts, values, 1_000_000)
    s["IngestPoints"], s["IngestPoints client"] = ingest(address, token, grpc_id, ts, values)
    _sql(dsn, "VACUUM FULL ANALYZE point_chunk", "CHECKPOINT", drop=(grpc_id, big_id))
    s["DuckDB ingest"], con = duck_ingest(scratch / f"{variant.name}.duckdb", ts, values)
    size["DuckDB"] = (scratch / f"{variant.name}.duckdb").stat().st_size / n

    print(f"{variant.name}: 1,000-bucket query...", flush=True)
    with grpc.insecure_channel(address) as channel:  # warm: one channel, as a chart's client keeps
        stub = pb_grpc.AnalyticsServiceStub(channel)
        s["QueryPoints"], reply = best(lambda: query_points(stub, token, layer_id), 5)
    with schema.database_proxy.connection_context():
        s["query_buckets"], buckets = best(lambda: store.query_buckets(layer_id, int(ts[0]), int(ts[-1]) + 1, WEEK), 5)
    s["date_bin"], date_bins = best(lambda: date_bin(dsn, rows_id))
    s["DuckDB time_bucket"], duck_bins = best(lambda: duck_buckets(con), 5)
    got = len(reply.buckets.start_times_us)
    assert sum(reply.buckets.count) == n and got == buckets.start_us.size == date_bins == duck_bins, (
        got, date_bins, duck_bins)  # fmt: skip
    variant.seconds["buckets"] = float(got)
    con.close()

    print(f"{variant.name}: loading all points...", flush=True)
    with schema.database_proxy.connection_context():
        s["load_points"], loaded = best(lambda: store.load_points(layer_id))
    assert np.array_equal(loaded[0], ts) and loaded[1].tobytes() == values.tobytes()
    del loaded
    s["previous load_points"], loaded = best(lambda: previous_load(dsn, rows_id, int(ts[0]), int(ts[-1])))
    assert np.array_equal(loaded[0], ts) and np.array_equal(loaded[1], values)
    del loaded
    s["pandas.read_sql"], loaded = best(lambda: read_sql(dsn, rows_id), 1)
    assert np.array_equal(loaded[0], ts)
    del loaded
    _sql(dsn, "VACUUM FULL point_rows", "VACUUM FULL point_chunk", drop=(rows_id, layer_id))


def _report(n: int, variants: list[Variant], load_before: float) -> None:
    print(f"\n{n:,} points a minute apart, per variant; best of {ROUNDS} (queries of 5); load average"
          f" {load_before:.1f} on {os.cpu_count()} CPUs before the run\n")  # fmt: skip
    print("| measure | " + " | ".join(v.name for v in variants) + " |")
    print("|---|" + "---:|" * len(variants))

    def line(label: str, cell: Callable[[Variant], str]) -> None:
        print(f"| {label} | " + " | ".join(cell(v) for v in variants) + " |")

    line("ingest: IngestPoints over gRPC, batches of 100k (pts/s)", lambda v: f"{n / v.seconds['IngestPoints']:,.0f}")
    line("ingest: of which the client building requests (s)", lambda v: f"{v.seconds['IngestPoints client']:.1f}")
    line(f"ingest: storage layer, batches of 100k, vs the target of {STORAGE_TARGET:,} pts/s",
         lambda v: _against(n / v.seconds["append_points"], STORAGE_TARGET))  # fmt: skip
    line(f"ingest: storage layer, batches of 1M, vs the target of {STORAGE_TARGET:,} pts/s",
         lambda v: _against(n / v.seconds["append_points 1M"], STORAGE_TARGET))  # fmt: skip
    line("ingest: storage layer (100k / 1M) vs raw COPY",
         lambda v: f"{v.seconds['row COPY'] / v.seconds['append_points']:.1f}x"
                   f" / {v.seconds['row COPY'] / v.seconds['append_points 1M']:.1f}x")  # fmt: skip
    line("ingest: raw psycopg2 binary COPY, row layout (pts/s)", lambda v: f"{n / v.seconds['row COPY']:,.0f}")
    line("ingest: DuckDB INSERT + CHECKPOINT (pts/s)", lambda v: f"{n / v.seconds['DuckDB ingest']:,.0f}")
    line("IngestPoints vs raw COPY", lambda v: f"{v.seconds['row COPY'] / v.seconds['IngestPoints']:.2f}x")
    line("bytes/point: chunks after VACUUM FULL", lambda v: f"{v.bytes_per_point['chunks']:.2f}")
    line("bytes/point: chunks as written", lambda v: f"{v.bytes_per_point['chunks as written']:.2f}")
    line("bytes/point: row layout", lambda v: f"{v.bytes_per_point['row layout']:.1f}")
    line("bytes/point: DuckDB file", lambda v: f"{v.bytes_per_point['DuckDB']:.2f}")
    line("query: buckets", lambda v: f"{v.seconds['buckets']:,.0f}")
    line("query: QueryPoints over gRPC (ms)", lambda v: f"{v.seconds['QueryPoints'] * 1000:.1f}")
    line("query: query_buckets, the store alone (ms)", lambda v: f"{v.seconds['query_buckets'] * 1000:.1f}")
    line("query: PostgreSQL date_bin, row layout (ms)", lambda v: f"{v.seconds['date_bin'] * 1000:,.0f}")
    line("query: DuckDB time_bucket (ms)", lambda v: f"{v.seconds['DuckDB time_bucket'] * 1000:.1f}")
    line("QueryPoints vs date_bin", lambda v: f"{v.seconds['date_bin'] / v.seconds['QueryPoints']:,.0f}x")
    line("QueryPoints vs DuckDB", lambda v: f"{v.seconds['DuckDB time_bucket'] / v.seconds['QueryPoints']:.1f}x")
    line("load: load_points (pts/s)", lambda v: f"{n / v.seconds['load_points']:,.0f}")
    line("load: previous load_points, row layout (pts/s)", lambda v: f"{n / v.seconds['previous load_points']:,.0f}")
    line("load: pandas.read_sql, row layout (pts/s)", lambda v: f"{n / v.seconds['pandas.read_sql']:,.0f}")
    line("load_points vs previous", lambda v: f"{v.seconds['previous load_points'] / v.seconds['load_points']:.1f}x")


def _against(rate: float, target: float) -> str:
    """A rate beside its target: "5,120,000 (1.02x the target: met)"."""
    return f"{rate:,.0f} ({rate / target:.2f}x the target: {'met' if rate >= target else 'NOT met'})"


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    args = parser.parse_args()
    if args.points < 100_000:
        parser.error("--points must be at least 100000")
    asyncio.run(run(args.points))


if __name__ == "__main__":
    main()
