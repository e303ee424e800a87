"""Events and mailboxes for the notify tests: build mesh.events.v1 events,
publish them to JetStream (Nats-Msg-Id = event id, retried until stored, as
the analytics outbox relay does) and read what arrived at a mail catcher."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import nats.errors
import nats.js.errors

from mesh.events.v1 import events_pb2
from mesh_runtime import streams


def succeeded(
    dataset_id: str,
    *,
    anomaly_count: int = 0,
    dataset_name: str = "orders per minute",
    insight: str = "",
    event_id: str | None = None,
) -> events_pb2.Event:
    """A ResultSucceeded event with key numbers and ``anomaly_count`` anomalies."""
    return events_pb2.Event(
        event_id=event_id or str(uuid.uuid4()),
        source="tests",
        result_succeeded=events_pb2.ResultSucceeded(
            result_id=str(uuid.uuid4()),
            dataset_id=dataset_id,
            dataset_name=dataset_name,
            kind="summary",
            key_numbers=[
                events_pb2.KeyNumber(name="count", value=1440),
                events_pb2.KeyNumber(name="mean", value=12.5),
                events_pb2.KeyNumber(name="max", value=40.25),
            ],
            anomaly_count=anomaly_count,
            anomalies=[
                events_pb2.AnomalyPoint(timestamp_us=1_700_000_000_000_000 + i * 60_000_000, value=99.5 + i, score=7.25)
                for i in range(min(anomaly_count, 10))
            ],
            insight=insight,
            unit="1/min",
        ),
    )


def failed(dataset_id: str, error: str = "the dataset has no points") -> events_pb2.Event:
    """A ResultFailed event."""
    return events_pb2.Event(
        event_id=str(uuid.uuid4()),
        source="tests",
        result_failed=events_pb2.ResultFailed(
            result_id=str(uuid.uuid4()), dataset_id=dataset_id, dataset_name="empty", kind="summary", error=error
        ),
    )


def anomaly(dataset_id: str, count: int) -> events_pb2.Event:
    """An AnomalyDetected event with ``count`` anomalies."""
    return events_pb2.Event(
        event_id=str(uuid.uuid4()),
        source="tests",
        anomaly_detected=events_pb2.AnomalyDetected(
            result_id=str(uuid.uuid4()),
            dataset_id=dataset_id,
            dataset_name="cpu load",
            anomaly_count=count,
            anomalies=[events_pb2.AnomalyPoint(timestamp_us=1_700_000_000_000_000, value=97.0, score=-6.5)],
            threshold=3.5,
            kind="anomalies",
        ),
    )


async def publish_raw(
    nats_url: str, messages: Sequence[tuple[str, str, bytes]], *, deadline: float = 120.0, in_flight: int = 200
) -> None:
    """Publish (subject, msg id, body) triples, each retried until JetStream
    stored it (a copy is dropped by its Nats-Msg-Id); survives a NATS restart."""
    nc = await streams.connect(nats_url, "tests-publisher")
    try:
        js = nc.jetstream()
        await streams.wait_for_streams(js)
        gate = asyncio.Semaphore(in_flight)
        give_up = time.monotonic() + deadline

        async def one(subject: str, msg_id: str, body: bytes) -> None:
            async with gate:
                while True:
                    try:
                        await js.publish(subject, body, headers={"Nats-Msg-Id": msg_id}, timeout=2)
                        return
                    except (nats.errors.Error, nats.js.errors.Error, TimeoutError, OSError):
                        if time.monotonic() > give_up:
                            raise
                        await asyncio.sleep(0.2)

        await asyncio.gather(*(one(*m) for m in messages))
    finally:
        await nc.close()


def publish(nats_url: str, events: Sequence[events_pb2.Event], **options: float) -> None:
    """Publish events as the analytics relay does (blocking)."""
    asyncio.run(
        publish_raw(
            nats_url,
            [(streams.event_subject(e), e.event_id, e.SerializeToString()) for e in events],
            **options,  # type: ignore[arg-type]
        )
    )


def messages_to(mail_api: str, address: str) -> list[dict[str, object]]:
    """Summaries of the messages the catcher holds for ``address``."""
    reply = httpx.get(f"{mail_api}/api/v1/search", params={"query": f"to:{address}", "limit": 0}, timeout=10)
    reply.raise_for_status()
    return list(reply.json()["messages"])


def all_messages(mail_api: str) -> list[dict[str, object]]:
    """Summaries of every message the catcher holds."""
    # Listing parses every message not parsed yet: slow for thousands on a busy machine.
    reply = httpx.get(f"{mail_api}/api/v1/messages", params={"limit": 0}, timeout=180)
    reply.raise_for_status()
    return list(reply.json()["messages"])


def mail_info(mail_api: str) -> dict[str, Any]:
    """The catcher's (or mailpit's) GET /api/v1/info: message count and runtime stats."""
    reply = httpx.get(f"{mail_api}/api/v1/info", timeout=10)
    reply.raise_for_status()
    return dict(reply.json())


def message_count(mail_api: str) -> int:
    """How many messages the catcher holds."""
    return int(mail_info(mail_api)["Messages"])


