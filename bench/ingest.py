"""Ingest rate of IngestPoints, as a ratio to a raw COPY of the same points.

Starts a throwaway local stack (PostgreSQL, the services) in a temporary
folder, then loads the same N points into three fresh datasets:

- **raw COPY**: psycopg2 ``COPY FROM STDIN`` straight into a table of the
  one-row-per-point layout the store had before its chunks (the baseline);
- **IngestPoints**: the real path a client takes — gRPC client stream in
  batches of 100,000, validation, per-point checks, COPY into a staging table,
  upsert, dataset counters — end to end;
- **peewee insert_many**: the ORM's bulk insert, for comparison (on a
  smaller share of the points, rate scaled).

Run: ./mesh bench ingest [--points 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import secrets
import tempfile
import time
import uuid
from dataclasses import fields
from pathlib import Path

import grpc
import numpy as np
import peewee
import psycopg2

from local_stack.stack import Stack, StackSettings, resolve_ports
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from mesh.auth.v1 import auth_service_pb2, auth_service_pb2_grpc

BATCH = 100_000
# The one-row-per-point layout the baselines write into (the store's before its chunks).
ROW_TABLE = "point_rows"
ROW_TABLE_SQL = (
    f"CREATE TABLE {ROW_TABLE} (dataset_id uuid NOT NULL REFERENCES dataset (id) ON DELETE CASCADE,"
    " ts timestamptz NOT NULL, value double precision NOT NULL, PRIMARY KEY (dataset_id, ts))"
)


def points(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n minute-spaced timestamps (epoch µs) and noisy values."""
    ts = 1_700_000_000_000_000 + np.arange(n, dtype=np.int64) * 60_000_000
    return ts, np.random.default_rng(1).normal(100, 15, n)


def raw_copy(dsn: str, dataset_id: str, ts: np.ndarray, vs: np.ndarray) -> float:
    """Seconds for COPY of the points (text format), formatting included."""
    started = time.perf_counter()
    stamps = np.datetime_as_string(ts.astype("datetime64[us]"), unit="us")
    text = "".join(f"{dataset_id}\t{s}Z\t{v!r}\n" for s, v in zip(stamps, vs.tolist(), strict=True))
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.copy_expert(f"COPY {ROW_TABLE} (dataset_id, ts, value) FROM STDIN", io.StringIO(text))
    return time.perf_counter() - started


def ingest(address: str, token: str, dataset_id: str, ts: np.ndarray, vs: np.ndarray) -> float:
    """Seconds for IngestPoints of the points, end to end."""

    def batches():  # type: ignore[no-untyped-def]
        for start in range(0, ts.size, BATCH):
            yield pb.IngestPointsRequest(
                dataset_id=dataset_id,
                timestamps_us=ts[start : start + BATCH].tolist(),
                values=vs[start : start + BATCH].tolist(),
            )

    started = time.perf_counter()
    with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        reply = pb_grpc.AnalyticsServiceStub(channel).IngestPoints(
            batches(), timeout=600, metadata=(("authorization", f"Bearer {token}"),)
        )
    assert reply.accepted_count == ts.size, reply
    return time.perf_counter() - started


def insert_many(dsn: str, dataset_id: str, ts: np.ndarray, vs: np.ndarray) -> float:
    """Seconds for peewee insert_many of the points, in chunks of 10,000."""
    params = psycopg2.extensions.parse_dsn(dsn)
    db = peewee.PostgresqlDatabase(params.pop("dbname"), **params)

    class Point(peewee.Model):
        dataset_id = peewee.UUIDField()
        ts = peewee.DateTimeField()
        value = peewee.DoubleField()

        class Meta:
            database = db
            table_name = ROW_TABLE
            primary_key = False

    stamps = ts.astype("datetime64[us]").astype(object)
    rows = [{"dataset_id": dataset_id, "ts": s, "value": v} for s, v in zip(stamps, vs.tolist(), strict=True)]
    started = time.perf_counter()
    with db.atomic():
        for start in range(0, len(rows), 10_000):
            Point.insert_many(rows[start : start + 10_000]).execute()
    db.close()
    return time.perf_counter() - started


async def run(n: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        zero = {f.name: 0 for f in fields(StackSettings) if f.name.endswith("_port")}
        settings = resolve_ports(StackSettings(state_dir=Path(scratch), web=False, **zero))
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
            with grpc.insecure_channel(address) as channel:
                token = auth_service_pb2_grpc.AuthServiceStub(channel).Login(
                    auth_service_pb2.LoginRequest(username=admin[0], password=admin[1]), timeout=10
                ).session.access_token
                stub = pb_grpc.AnalyticsServiceStub(channel)
                meta = (("authorization", f"Bearer {token}"),)
                ids = [
                    stub.CreateDataset(
                        pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"bench-{uuid.uuid4().hex[:8]}")),
                        timeout=10,
                        metadata=meta,
                    ).dataset.id
                    for _ in range(3)
                ]
            with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
                cur.execute(ROW_TABLE_SQL)
            ts, vs = points(n)
            small = max(n // 5, 1000)
            seconds = {
                "raw COPY (psycopg2)": raw_copy(dsn, ids[0], ts, vs),
                "IngestPoints (gRPC, end to end)": await asyncio.to_thread(ingest, address, token, ids[1], ts, vs),
            }
            rates = {name: n / s for name, s in seconds.items()}
            rates["peewee insert_many"] = small / insert_many(dsn, ids[2], ts[:small], vs[:small])
        finally:
            await stack.stop()
    baseline = rates["raw COPY (psycopg2)"]
    print(f"\nIngest of {n:,} points into one dataset (insert_many on {small:,})\n")
    print("| path | points/s | vs raw COPY |")
    print("|---|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} | {rate / baseline:.0%} |")


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.points < 10_000:
        parser.error("--points must be at least 10000")
    asyncio.run(run(args.points))


if __name__ == "__main__":
    main()
