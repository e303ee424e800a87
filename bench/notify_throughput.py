"""E-mails per second from event published to message in the SMTP catcher,
and latency at light load, against raw SMTP sends as the baseline.

Starts its own PostgreSQL, NATS (JetStream), mail catcher (dropping repeated
Message-IDs, as ./mesh up starts it) and one notify process in a temporary
folder, then:

- **raw SMTP** (baseline): the same number of pre-rendered e-mails (each with
  its own Message-ID) sent straight to the catcher over the same number of
  SMTP connections (smtplib): the ceiling of the catcher on this machine;
- **notify, burst**: N events to S matching subscriptions published at once
  (Nats-Msg-Id = event id); time from the first publish until the catcher
  holds all N x S e-mails: consume, record deliveries, claim, render
  (Jinja2 text + HTML), send, record the outcome;
- **notify, light load**: events published one at a time at a steady rate to
  one subscription; latency = catcher arrival time - publish time.

Run: ./mesh bench notify_throughput [--events 1000] [--subscriptions 3] [--connections 4]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import secrets
import smtplib
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg2

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "gen" / "python")]

from local_stack import infra  # noqa: E402
from local_stack.paths import ROOT  # noqa: E402
from local_stack.ports import free_port  # noqa: E402
from local_stack.processes import ManagedProcess, ProcessSpec, wait_until  # noqa: E402
from local_stack.stack import grpc_serving  # noqa: E402
from mesh.events.v1 import events_pb2  # noqa: E402
from mesh_runtime import streams  # noqa: E402
from mesh_runtime.auth_keys import KeyFolder  # noqa: E402
from notify_svc import email_message, links  # noqa: E402


def event(dataset_id: str) -> events_pb2.Event:
    return events_pb2.Event(
        event_id=str(uuid.uuid4()),
        source="bench",
        result_succeeded=events_pb2.ResultSucceeded(
            result_id=str(uuid.uuid4()),
            dataset_id=dataset_id,
            dataset_name="orders per minute",
            kind="summary",
            key_numbers=[
                events_pb2.KeyNumber(name=n, value=v) for n, v in (("count", 1440), ("mean", 12.5), ("max", 40))
            ],
            anomaly_count=2,
            anomalies=[events_pb2.AnomalyPoint(timestamp_us=1_700_000_000_000_000, value=99.5, score=7.25)] * 2,
            insight="Orders were flat apart from two spikes on Monday morning.",
            unit="1/min",
        ),
    )


class Rig:
    def __init__(self, root: Path, connections: int) -> None:
        self.root = root
        self.connections = connections
        self.pg_port, self.nats_port, self.nats_mon = free_port(), free_port(), free_port()
        self.smtp_port, self.mail_port, self.notify_port = free_port(), free_port(), free_port()
        self.processes: list[ManagedProcess] = []

    @property
    def mail_api(self) -> str:
        return f"http://127.0.0.1:{self.mail_port}"

    @property
    def dsn(self) -> str:
        return infra.postgres_dsn(self.pg_port, "notify")

    async def _start(self, spec: ProcessSpec, ready: object, what: str) -> None:
        process = ManagedProcess(spec, self.root / "logs", None, 0)
        self.processes.append(process)
        await process.start()
        await wait_until(ready, timeout=120, what=what, process=process)  # type: ignore[arg-type]

    async def start(self) -> None:
        user = await asyncio.to_thread(infra.prepare_postgres, self.root / "pg")
        await self._start(
            infra.postgres_spec(self.root / "pg", self.pg_port, user), lambda: infra.postgres_ready(self.pg_port), "pg"
        )
        await asyncio.to_thread(infra.ensure_databases, self.pg_port, ["notify"])
        await self._start(
            infra.nats_spec(self.root / "nats", self.nats_port, self.nats_mon),
            lambda: infra.nats_ready(self.nats_mon),
            "nats",
        )
        await self._start(
            ProcessSpec("mail", [sys.executable, "-m", "mail_catcher", "--smtp-port", str(self.smtp_port),
                                 "--http-port", str(self.mail_port), "--max-messages", "100000",
                                 "--ignore-duplicate-ids"]),
            lambda: infra.http_ok(f"{self.mail_api}/readyz"),
            "mail catcher",
        )
        keys = KeyFolder(self.root / "auth")
        keys.ensure()
        env = {
            "AUTH_JWKS_FILE": str(keys.jwks),
            "NOTIFY_GRPC_PORT": str(self.notify_port),
            "NOTIFY_DATABASE_URL": self.dsn,
            "NATS_URL": f"nats://127.0.0.1:{self.nats_port}",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp_port),
            "NOTIFY_LINK_SECRET": secrets.token_urlsafe(32),
            "NOTIFY_SMTP_CONNECTIONS": str(self.connections),
            "MESH_LOG_LEVEL": "warning",
        }
        await self._start(
            ProcessSpec("notify", [sys.executable, "-m", "notify_svc"], env=env, cwd=ROOT),
            lambda: grpc_serving(f"127.0.0.1:{self.notify_port}"),
            "notify",
        )

    async def stop(self) -> None:
        for process in reversed(self.processes):
            await process.stop()

    def subscribe(self, count: int, dataset_id: str) -> None:
        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cur:
            for i in range(count):
                cur.execute(
                    "INSERT INTO subscription (id, email, display_name, create_time, dataset_ids)"
                    " VALUES (%s, %s, 'Bench', now(), %s)",
                    (str(uuid.uuid4()), f"bench-{i}-{uuid.uuid4().hex[:6]}@example.com", [dataset_id]),
                )

    def mail_count(self) -> int:
        return int(httpx.get(f"{self.mail_api}/api/v1/info", timeout=30).json()["Messages"])

    def clear_mail(self) -> None:
        httpx.delete(f"{self.mail_api}/api/v1/messages", timeout=30).raise_for_status()


def raw_smtp(rig: Rig, count: int) -> float:
    """Seconds to send ``count`` rendered e-mails straight to the catcher."""
    sample = event(str(uuid.uuid4()))
    sub_id = uuid.uuid4()
    message = email_message.build_message(
        context=email_message.event_context(sample),
        sender=email_message.sender_address("Analytics Mesh <notify@localhost>"),
        recipient=email_message.address("raw@example.com", "Raw"),
        links=email_message.Links(
            links.result_url("http://w", "r"), links.unsubscribe_url("http://r", "s" * 32, sub_id)
        ),
        event_id=sample.event_id,
        subscription_id=sub_id,
    )
    # Each copy its own Message-ID, or the catcher would keep only the first.
    head, _, body = message.data.partition(message.message_id.encode())
    rendered = [head + f"<raw-{n}@localhost>".encode() + body for n in range(count)]

    def worker(batch: list[bytes]) -> None:
        with smtplib.SMTP("127.0.0.1", rig.smtp_port, timeout=30) as client:
            for data in batch:
                client.sendmail(message.envelope_from, [message.envelope_to], data)

    batches = [rendered[i :: rig.connections] for i in range(rig.connections)]
    started = time.perf_counter()
    with ThreadPoolExecutor(rig.connections) as pool:
        list(pool.map(worker, batches))
    return time.perf_counter() - started


async def publish(nats_url: str, events: list[events_pb2.Event]) -> dict[str, float]:
    """Publish events (500 in flight); return each event's publish time (epoch seconds)."""
    nc = await streams.connect(nats_url, "bench")
    js = nc.jetstream()
    await streams.wait_for_streams(js)
    sent: dict[str, float] = {}
    gate = asyncio.Semaphore(500)

    async def one(e: events_pb2.Event) -> None:
        async with gate:
            sent[e.event_id] = time.time()
            await js.publish(streams.event_subject(e), e.SerializeToString(), headers={"Nats-Msg-Id": e.event_id})

    await asyncio.gather(*(one(e) for e in events))
    await nc.close()
    return sent


def wait_for_mail(rig: Rig, count: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while rig.mail_count() < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {rig.mail_count()} of {count} e-mails arrived")
        time.sleep(0.02)


async def light_load(rig: Rig, count: int, rate: float) -> list[float]:
    """Latencies (seconds) of ``count`` events published at ``rate`` per second to one subscription."""
    dataset = str(uuid.uuid4())
    await asyncio.to_thread(rig.subscribe, 1, dataset)
    await asyncio.to_thread(rig.clear_mail)
    nc = await streams.connect(f"nats://127.0.0.1:{rig.nats_port}", "bench-light")
    js = nc.jetstream()
    published: dict[str, float] = {}
    for _ in range(count):
        e = event(dataset)
        published[e.event_id] = time.time()
        await js.publish(streams.event_subject(e), e.SerializeToString(), headers={"Nats-Msg-Id": e.event_id})
        await asyncio.sleep(1 / rate)
    await nc.close()
    await asyncio.to_thread(wait_for_mail, rig, count)
    messages = httpx.get(f"{rig.mail_api}/api/v1/messages", params={"limit": 0}, timeout=30).json()["messages"]
    latencies = []
    for m in messages:
        detail = httpx.get(f"{rig.mail_api}/api/v1/message/{m['ID']}/headers", timeout=30).json()
        event_id = detail["X-Mesh-Event-Id"][0]
        arrived = dt.datetime.fromisoformat(m["Created"].replace("Z", "+00:00")).timestamp()
        latencies.append(arrived - published[event_id])
    return latencies


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--subscriptions", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--light-events", type=int, default=200)
    parser.add_argument("--light-rate", type=float, default=20.0, help="events per second at light load")
    args = parser.parse_args()
    total = args.events * args.subscriptions
    with tempfile.TemporaryDirectory(prefix="notify-bench-") as tmp:
        root = Path(tmp)
        rig = Rig(root, args.connections)
        try:
            print("starting PostgreSQL, NATS, mail catcher and notify...", flush=True)
            await rig.start()

            raw_seconds = await asyncio.to_thread(raw_smtp, rig, total)
            await asyncio.to_thread(rig.clear_mail)

            dataset = str(uuid.uuid4())
            await asyncio.to_thread(rig.subscribe, args.subscriptions, dataset)
            events = [event(dataset) for _ in range(args.events)]
            started = time.perf_counter()
            await publish(f"nats://127.0.0.1:{rig.nats_port}", events)
            await asyncio.to_thread(wait_for_mail, rig, total)
            notify_seconds = time.perf_counter() - started

            latencies = await light_load(rig, args.light_events, args.light_rate)
        finally:
            await rig.stop()

    print()
    print(f"{args.events} events x {args.subscriptions} subscriptions = {total} e-mails, "
          f"{args.connections} SMTP connections")
    print()
    print("| path | e-mails/s | vs raw SMTP |")
    print("|---|---:|---:|")
    print(f"| raw SMTP (smtplib, pre-rendered) | {total / raw_seconds:,.0f} | 100% |")
    print(f"| notify, event published to e-mail in catcher | {total / notify_seconds:,.0f} "
          f"| {raw_seconds / notify_seconds:.0%} |")
    print()
    print(f"light load ({args.light_events} events at {args.light_rate:g}/s, 1 subscription): "
          f"p50 {quantile(latencies, 0.5) * 1000:.0f} ms, p99 {quantile(latencies, 0.99) * 1000:.0f} ms, "
          f"mean {statistics.fmean(latencies) * 1000:.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
