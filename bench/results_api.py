"""GetResult and ListResults under load, as a ratio to a bare grpc.aio echo server.

Starts a throwaway PostgreSQL in a temporary folder, fills ``analysis_result``
with N results (1,000,000 by default) across D datasets in SQL — mixed kinds,
mostly succeeded, some with anomalies, each succeeded one holding the stored
output of a real report (``compute.run`` on a day of minute points) — then
VACUUM ANALYZE. Two servers answer the same calls:

- **analytics service**: ``python -m analytics_svc``, exactly as the local
  stack runs it (full interceptor chain, access log at info level to a file,
  token verification, protovalidate, the database pool and its query
  threads), called with a signed viewer token;
- the same with its read caches off (``ANALYTICS_RESULT_CACHE_MB=0``,
  ``ANALYTICS_PAGE_CACHE_MB=0``): every call reads PostgreSQL, as under
  constant change (the caches drop a dataset's pages and results whenever
  anything in it changes);
- **bare grpc.aio echo** (the baseline): a plain ``grpc.aio.server()`` in its
  own process whose servicer answers GetResult and ListResults with a canned
  response — the very bytes the analytics service returned for one of the
  same requests — so both move the same messages.

Fairness on a 2-core machine: one client process (one grpc.aio channel,
C calls in flight, the same requests and token metadata) measures them all; each
server runs in a process of its own and only one is under load at a time
(they alternate, twice each, after a warm-up that makes each distinct call
once, so the measurements see a steady state); the analytics service's
PostgreSQL shares the same cores, as it would on one box. Calls:

- GetResult of random result ids;
- ListResults of one random dataset, filtered by has_anomalies = true or by
  one random kind (alternately), page_size 50, default order (newest first).

Run: ./mesh bench results_api [--results 1000000 --datasets 100 --concurrency 32 --seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import psycopg2
from grpc_health.v1 import health, health_pb2_grpc

from analytics_svc.analyses import compute
from analytics_svc.conversions import output_to_stored
from local_stack import infra
from local_stack.paths import ROOT
from local_stack.ports import free_port
from local_stack.processes import ManagedProcess, wait_until
from local_stack.stack import grpc_serving
from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.auth.v1 import access_pb2
from mesh_runtime.auth import Principal
from mesh_runtime.auth_keys import KeyFolder, TokenSigner
from mesh_runtime.server import MAX_MESSAGE_BYTES

Metadata = tuple[tuple[str, str], ...]
ECHO, OURS, UNCACHED = "bare grpc.aio echo", "analytics service", "analytics service, caches off"
INSIGHT = (
    "Values held steady around 100 for most of the day, with a slight upward drift of about 2 per hour. "
    "Three short spikes stood out in the afternoon, each more than five times the usual spread; "
    "they look like isolated bursts rather than a change of level."
)


def report_outputs() -> tuple[bytes, bytes, int]:
    """The stored output of a real report with a few anomalies, the same
    without anomalies, and the anomaly count of the first."""
    rng = np.random.default_rng(7)
    ts = 1_764_000_000_000_000 + np.arange(1440, dtype=np.int64) * 60_000_000
    values = 100 + np.linspace(0, 48, ts.size) + rng.uniform(-5, 5, ts.size)
    values[[700, 905, 1100]] += [60, -55, 70]
    outcome = compute.run(apb.ANALYSIS_KIND_REPORT, apb.AnalysisParameters(), ts, values)
    assert 0 < outcome.anomaly_count < 10, outcome.anomaly_count
    calm = apb.ResultOutput()
    calm.CopyFrom(outcome.output)
    calm.anomalies.anomaly_count = 0
    del calm.anomalies.anomalies[:]
    return output_to_stored(outcome.output), output_to_stored(calm), outcome.anomaly_count


# Per row g: dataset g mod D; kind, anomalies independent of the dataset;
# about 1% failed, 0.6% pending or running, the rest succeeded.
FILL_RESULTS = """
INSERT INTO analysis_result (
    id, dataset_id, dataset_name, kind, parameters, status, error, requested_by,
    create_time, start_time, end_time, enqueue_time, attempts, window_start, window_end,
    anomaly_count, output, insight_status, insight_text, insight_provider, insight_model,
    insight_error, insight_attempts, insight_update_time)
SELECT gen_random_uuid(), ds.ids[1 + mod(g, %(datasets)s)], ds.names[1 + mod(g, %(datasets)s)],
    1 + mod(g / %(datasets)s, 5), '{}'::jsonb, s.status,
    CASE WHEN s.status = 4 THEN 'the dataset has no points in the analysed window' ELSE '' END,
    'bench', t.created,
    CASE WHEN s.status > 1 THEN t.created + interval '1 second' END,
    CASE WHEN s.status > 2 THEN t.created + interval '2 seconds' END,
    t.created, CASE WHEN s.status > 1 THEN 1 ELSE 0 END,
    CASE WHEN s.status = 3 THEN t.created - interval '1 day' END,
    CASE WHEN s.status = 3 THEN t.created END,
    CASE WHEN a.anomalous THEN %(anomaly_count)s ELSE 0 END,
    CASE WHEN s.status <> 3 THEN NULL WHEN a.anomalous THEN %(anomalous)s ELSE %(calm)s END,
    CASE WHEN s.status = 3 THEN 2 ELSE 0 END,
    CASE WHEN s.status = 3 THEN %(insight)s ELSE '' END,
    CASE WHEN s.status = 3 THEN 'offline' ELSE '' END,
    CASE WHEN s.status = 3 THEN 'offline-summary' ELSE '' END,
    '', CASE WHEN s.status = 3 THEN 1 ELSE 0 END,
    CASE WHEN s.status = 3 THEN t.created + interval '3 seconds' END
FROM (SELECT array_agg(id ORDER BY name) AS ids, array_agg(name ORDER BY name) AS names FROM dataset) AS ds,
    generate_series(0, %(results)s - 1) AS g,
    LATERAL (SELECT now() - (%(results)s - g) * interval '20 seconds' AS created) AS t,
    LATERAL (SELECT CASE WHEN mod(g, 97) = 0 THEN 4 WHEN mod(g, 331) = 0 THEN 1
                         WHEN mod(g, 337) = 0 THEN 2 ELSE 3 END AS status) AS s,
    LATERAL (SELECT s.status = 3 AND mod(g / %(datasets)s, 7) = 3 AS anomalous) AS a
"""


def fill(dsn: str, results: int, datasets: int) -> None:
    """D datasets and N results in them, made in SQL, then VACUUM ANALYZE."""
    anomalous, calm, anomaly_count = report_outputs()
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO dataset (id, name, description, unit, labels, point_count, create_time, update_time)"
                " SELECT gen_random_uuid(), 'bench-' || lpad(d::text, 4, '0'), '', '1/min', '{}', 1440, now(), now()"
                " FROM generate_series(1, %s) AS d",
                (datasets,),
            )
            cur.execute(
                FILL_RESULTS,
                {
                    "datasets": datasets,
                    "results": results,
                    "anomaly_count": anomaly_count,
                    "anomalous": psycopg2.Binary(anomalous),
                    "calm": psycopg2.Binary(calm),
                    "insight": INSIGHT,
                },
            )
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE dataset, analysis_result")
    finally:
        conn.close()


def requests(dsn: str, datasets: int) -> tuple[list[pb.GetResultRequest], list[pb.ListResultsRequest]]:
    """Random GetResult ids (about 1% of the table) and ListResults filters."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT id::text FROM analysis_result TABLESAMPLE SYSTEM (1)")
        ids = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT id::text FROM dataset")
        dataset_ids = [r[0] for r in cur.fetchall()]
    rng = np.random.default_rng(11)
    rng.shuffle(ids)
    lists = []
    for i in range(5000):
        request = pb.ListResultsRequest(dataset_id=dataset_ids[rng.integers(len(dataset_ids))], page_size=50)
        if i % 2:
            request.kind = apb.AnalysisKind.ValueType(int(rng.integers(1, 6)))
        else:
            request.has_anomalies = True
        lists.append(request)
    return [pb.GetResultRequest(id=i) for i in ids], lists


EXPLAIN_ANOMALOUS = (
    "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM analysis_result WHERE dataset_id = %s AND anomaly_count > 0"
    " ORDER BY create_time DESC, id DESC LIMIT 51"
)
EXPLAIN_KIND = (
    "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM analysis_result WHERE dataset_id = %s AND kind = %s"
    " ORDER BY create_time DESC, id DESC LIMIT 51"
)


def explain(dsn: str, listing: Sequence[pb.ListResultsRequest]) -> None:
    """EXPLAIN ANALYZE of ListResults' query for both filters (as results_store builds it)."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        for request in listing[:2]:
            if request.HasField("has_anomalies"):
                cur.execute(EXPLAIN_ANOMALOUS, (request.dataset_id,))
            else:
                cur.execute(EXPLAIN_KIND, (request.dataset_id, int(request.kind)))
            print("\n".join(r[0] for r in cur.fetchall()) + "\n")


class EchoServicer(pb_grpc.AnalyticsServiceServicer):
    """Answers GetResult and ListResults with canned responses, nothing else."""

    def __init__(self, got: pb.GetResultResponse, listed: pb.ListResultsResponse) -> None:
        self.got, self.listed = got, listed

    async def GetResult(self, request: pb.GetResultRequest, context: Any) -> pb.GetResultResponse:
        return self.got

    async def ListResults(self, request: pb.ListResultsRequest, context: Any) -> pb.ListResultsResponse:
        return self.listed


async def serve_echo(port: int, canned: Path) -> None:
    """The baseline server process: bare grpc.aio, no interceptors (health only to say it is up)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
    )
    got = pb.GetResultResponse.FromString((canned / "get").read_bytes())
    listed = pb.ListResultsResponse.FromString((canned / "list").read_bytes())
    pb_grpc.add_AnalyticsServiceServicer_to_server(EchoServicer(got, listed), server)
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0)


def start_process(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A server process writing its output straight to a file (no pipe through this process)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, env={**os.environ, **env}, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


Call = Callable[[int], Awaitable[Any]]


async def measure(call: Call, seconds: float, concurrency: int, min_calls: int = 0) -> dict[str, float]:
    """Calls per second and latency percentiles of ``call`` at a fixed
    concurrency for ``seconds`` (and at least ``min_calls`` calls)."""
    latencies: list[float] = []
    counter = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal counter
        while time.perf_counter() < deadline or counter < min_calls:
            counter += 1
            started = time.perf_counter()
            await call(counter)
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "qps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
    }


async def run(results: int, datasets: int, concurrency: int, seconds: float, show_plans: bool) -> None:
    load_before = os.getloadavg()[0]  # others' work on a shared machine
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        logs = root / "logs"
        logs.mkdir()
        pg_port, ours_port, uncached_port, echo_port = free_port(), free_port(), free_port(), free_port()
        print("starting a throwaway PostgreSQL...", flush=True)
        user = await asyncio.to_thread(infra.prepare_postgres, root / "pg")
        postgres = ManagedProcess(infra.postgres_spec(root / "pg", pg_port, user, fast=True), logs, None, 0)
        await postgres.start()
        processes: list[subprocess.Popen[bytes]] = []
        try:
            await wait_until(lambda: infra.postgres_ready(pg_port), timeout=120, what="PostgreSQL", process=postgres)
            await asyncio.to_thread(infra.ensure_databases, pg_port, ["analytics"])
            dsn = infra.postgres_dsn(pg_port, "analytics")
            keys = KeyFolder(root / "auth")
            keys.ensure()
            env = {
                "AUTH_JWKS_FILE": str(keys.jwks),
                "AUTH_SIGNING_KEY_FILE": str(keys.signing_key),
                "MESH_GRPC_HOST": "127.0.0.1",
                "ANALYTICS_GRPC_PORT": str(ours_port),
                "ANALYTICS_DATABASE_URL": dsn,
                "LLM_ADDR": "off",
            }
            processes.append(start_process([sys.executable, "-m", "analytics_svc"], env, logs / "analytics.log"))
            ours = f"127.0.0.1:{ours_port}"
            await wait_until(lambda: grpc_serving(ours), timeout=120, what=f"analytics service (log: {logs})")
            uncached_env = {
                **env,
                "ANALYTICS_GRPC_PORT": str(uncached_port),
                "ANALYTICS_RESULT_CACHE_MB": "0",
                "ANALYTICS_PAGE_CACHE_MB": "0",
            }
            processes.append(
                start_process([sys.executable, "-m", "analytics_svc"], uncached_env, logs / "uncached.log")
            )
            uncached = f"127.0.0.1:{uncached_port}"
            await wait_until(lambda: grpc_serving(uncached), timeout=120, what=f"second service (log: {logs})")

            print(f"filling {results:,} results in {datasets} datasets...", flush=True)
            started = time.perf_counter()
            await asyncio.to_thread(fill, dsn, results, datasets)
            print(f"  filled and analyzed in {time.perf_counter() - started:.0f} s", flush=True)
            gets, lists = requests(dsn, datasets)
            if show_plans:
                explain(dsn, lists)

            signer = TokenSigner.from_file(keys.signing_key, "analytics-mesh", "analytics-mesh")
            token = signer.mint(Principal("bench", "bench", access_pb2.ROLE_VIEWER), dt.timedelta(hours=1)).token
            auth: Metadata = (("authorization", f"Bearer {token}"),)
            async with grpc.aio.insecure_channel(ours) as channel:
                stub = pb_grpc.AnalyticsServiceStub(channel)
                for request in gets:  # the echo's answer: a typical (succeeded) result
                    got = await stub.GetResult(request, metadata=auth, timeout=10)
                    if got.result.status == apb.RESULT_STATUS_SUCCEEDED:
                        break
                listed = await stub.ListResults(lists[0], metadata=auth, timeout=10)
            assert len(listed.results) == 50 and listed.next_page_token, "a ListResults page should be full"
            (root / "get").write_bytes(got.SerializeToString())
            (root / "list").write_bytes(listed.SerializeToString())
            processes.append(
                start_process(
                    [sys.executable, str(Path(__file__).resolve()), "--serve-echo", str(echo_port), str(root)],
                    {},
                    logs / "echo.log",
                )
            )
            echo = f"127.0.0.1:{echo_port}"
            await wait_until(lambda: grpc_serving(echo), timeout=60, what=f"echo server (log: {logs})")

            table = await compare(
                {ECHO: echo, OURS: ours, UNCACHED: uncached}, auth, gets, lists, concurrency, seconds
            )
        except BaseException:
            for log in sorted(logs.glob("*.log")):  # the folder goes with the temporary directory
                print(f"--- last lines of {log.name}:", *log.read_text(errors="replace").splitlines()[-15:], sep="\n")
            raise
        finally:
            for process in reversed(processes):
                stop_process(process)
            await postgres.stop()

    sizes = {"GetResult": got.ByteSize(), "ListResults": listed.ByteSize()}
    print(
        f"\n{results:,} results in {datasets} datasets; concurrency {concurrency}; {seconds:g} s per"
        " measurement, the servers alternating twice after a warm-up; load average"
        f" {load_before:.1f} on {os.cpu_count()} CPUs before the run\n"
    )
    print("| call | server | calls/s | p50 ms | p99 ms |")
    print("|---|---|---:|---:|---:|")
    for (rpc, server), row in table.items():
        print(f"| {rpc} | {server} | {row['qps']:.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} |")
    print()
    for rpc in ("GetResult", "ListResults"):
        ratio = table[rpc, OURS]["qps"] / table[rpc, ECHO]["qps"]
        uncached_ratio = table[rpc, UNCACHED]["qps"] / table[rpc, ECHO]["qps"]
        verdict = "meets" if ratio >= 0.5 else "misses"
        print(
            f"{rpc}: the analytics service serves {ratio:.0%} of the echo server's calls/s"
            f" ({verdict} the 50% target), {uncached_ratio:.0%} with its caches off;"
            f" response {sizes[rpc]:,} bytes"
        )


def caller(
    stub: pb_grpc.AnalyticsServiceStub,
    rpc: str,
    gets: list[pb.GetResultRequest],
    lists: list[pb.ListResultsRequest],
    auth: Metadata,
) -> Call:
    """Call number i of ``rpc``: the i-th request of its list, round and round."""
    if rpc == "GetResult":
        return lambda i: stub.GetResult(gets[i % len(gets)], metadata=auth, timeout=30)  # type: ignore[no-any-return]
    return lambda i: stub.ListResults(lists[i % len(lists)], metadata=auth, timeout=30)  # type: ignore[no-any-return]


async def compare(
    servers: dict[str, str],
    auth: Metadata,
    gets: list[pb.GetResultRequest],
    lists: list[pb.ListResultsRequest],
    concurrency: int,
    seconds: float,
) -> dict[tuple[str, str], dict[str, float]]:
    """Each (call, server) measured twice, alternating; the mean of the two."""
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    channels = {name: grpc.aio.insecure_channel(address) for name, address in servers.items()}
    try:
        for rpc in ("GetResult", "ListResults"):
            for round_ in range(3):
                for name, channel in channels.items():
                    call = caller(pb_grpc.AnalyticsServiceStub(channel), rpc, gets, lists, auth)
                    print(f"  {rpc}, {name}{', warm-up' if round_ == 0 else ''}...", flush=True)
                    # The warm-up makes each distinct call once (and runs at least 3 s):
                    # the measurements then see the service's steady state.
                    distinct = len(gets) if rpc == "GetResult" else len(lists)
                    if round_:
                        result = await measure(call, seconds, concurrency)
                    else:
                        result = await measure(call, min(seconds, 3), concurrency, min_calls=distinct)
                    if round_:
                        runs.setdefault((rpc, name), []).append(result)
    finally:
        for channel in channels.values():
            await channel.close()
    return {key: {k: statistics.mean(r[k] for r in rows) for k in rows[0]} for key, rows in runs.items()}


def main() -> None:
    """Parse arguments and run the benchmark (or, internally, the echo server)."""
    if sys.argv[1:2] == ["--serve-echo"]:
        asyncio.run(serve_echo(int(sys.argv[2]), Path(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=1_000_000)
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measurement")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the ListResults queries")
    args = parser.parse_args()
    if args.datasets < 1 or args.results < args.datasets * 400 or args.concurrency < 1 or args.seconds <= 0:
        parser.error("need --datasets >= 1, --results >= 400 per dataset, --concurrency >= 1, --seconds > 0")
    asyncio.run(run(args.results, args.datasets, args.concurrency, args.seconds, args.explain))


if __name__ == "__main__":
    main()
