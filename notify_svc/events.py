"""What notify consumes from NATS: analysis events, through one durable
JetStream pull consumer every notify replica shares.

Each pulled batch is recorded (events stored, one delivery queued per
matching subscription, under the unique (event, subscription) key) in one
transaction, and only then acknowledged; a redelivered event queues nothing
new. While recording is slow (the database is away) the messages get
in-progress signals, so JetStream does not hand them to another replica. An
unreadable event is recorded as a dead delivery and acknowledged; an event
that keeps failing is naked with a delay and, on its last delivery, recorded
as dead and acknowledged. When the NATS connection or the consumer goes away,
the loop reconnects and declares the consumer again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import nats.errors
import nats.js.errors
from google.protobuf.message import DecodeError
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import trace

from mesh.events.v1 import events_pb2
from mesh_runtime import streams
from mesh_runtime.database import BlockingRunner
from mesh_runtime.errors import Unavailable
from mesh_runtime.metrics import count_redelivery, refresh_consumer_gauges
from mesh_runtime.telemetry import start_consumer_span, traceparent
from notify_svc import metrics as notify_metrics
from notify_svc import store

logger = logging.getLogger("notify.events")

EVENT_TYPES = {
    "result_succeeded": store.RESULT_SUCCEEDED,
    "result_failed": store.RESULT_FAILED,
    "anomaly_detected": store.ANOMALY_DETECTED,
}
# Event ids go into headers and URLs: keep them to a safe alphabet.
_EVENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
FETCH_TIMEOUT_SECONDS = 1.0


class UnreadableEvent(ValueError):
    """A message that is not a usable mesh.events.v1.Event."""

    def __init__(self, event_id: str, reason: str) -> None:
        super().__init__(reason)
        self.event_id = event_id


@dataclass(frozen=True)
class ConsumerPolicy:
    """The durable consumer's settings."""

    name: str = "notify-email"
    max_deliver: int = 8
    backoff: tuple[float, ...] = (5.0, 15.0, 30.0, 60.0, 120.0)
    fetch_batch: int = 100

    def config(self) -> ConsumerConfig:
        """The JetStream consumer configuration, every limit explicit."""
        if self.max_deliver <= len(self.backoff):
            raise ValueError("NOTIFY_MAX_DELIVER must be larger than the number of backoff steps")
        return ConsumerConfig(
            durable_name=self.name,
            description="notify: e-mails about analysis events",
            ack_policy=AckPolicy.EXPLICIT,
            # A new (or re-created) consumer reads the whole stream: events
            # recorded before queue nothing new, so nothing is mailed twice.
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=f"{streams.EVENT_SUBJECT_PREFIX}>",
            ack_wait=self.backoff[0],
            backoff=list(self.backoff),
            max_deliver=self.max_deliver,
            max_ack_pending=max(1000, 10 * self.fetch_batch),
            max_waiting=512,
        )


def _fallback_id(msg: Msg) -> str:
    header = (msg.headers or {}).get("Nats-Msg-Id", "")
    if _EVENT_ID.match(header):
        return header
    try:
        return f"stream-seq-{msg.metadata.sequence.stream}"
    except Exception:  # noqa: BLE001 - a message without JetStream metadata
        return "unknown"


def read_event(msg: Msg) -> store.IncomingEvent:
    """The event in a message; UnreadableEvent when it is not one."""
    try:
        event = events_pb2.Event.FromString(msg.data)
    except DecodeError as exc:
        raise UnreadableEvent(_fallback_id(msg), f"not a mesh.events.v1.Event: {exc}") from None
    if not _EVENT_ID.match(event.event_id):
        raise UnreadableEvent(_fallback_id(msg), f"missing or unusable event_id {event.event_id[:80]!r}")
    which = event.WhichOneof("payload")
    if which is None:
        raise UnreadableEvent(event.event_id, "the event has no payload")
    payload = getattr(event, which)
    if not payload.result_id or not payload.dataset_id:
        raise UnreadableEvent(event.event_id, f"{which} without result_id or dataset_id")
    return store.IncomingEvent(
        event_id=event.event_id,
        event_type=EVENT_TYPES[which],
        dataset_id=payload.dataset_id,
        anomaly_count=int(getattr(payload, "anomaly_count", 0)),
        result_id=payload.result_id,
        payload=msg.data,
    )


def _deliveries_so_far(msg: Msg) -> int:
    try:
        return int(msg.metadata.num_delivered)
    except Exception:  # noqa: BLE001
        return 1


class EventConsumer:
    """Pulls events and queues their deliveries until stopped."""

    def __init__(
        self,
        runner: BlockingRunner,
        nats_url: str,
        policy: ConsumerPolicy,
        on_queued: Callable[[list[uuid.UUID], Mapping[str, trace.SpanContext]], None] = lambda ids, traces: None,
    ) -> None:
        self.runner = runner
        self.nats_url = nats_url
        self.policy = policy
        self.config = policy.config()
        self.on_queued = on_queued
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self.js: JetStreamContext | None = None  # once connected

    async def refresh_gauges(self) -> None:
        """Set the JetStream gauges of the consumer (once connected)."""
        if self.js is not None:
            await refresh_consumer_gauges(self.js, streams.EVENTS_STREAM, self.policy.name)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is finished first."""
        self._stop = stop
        nc: NatsClient = await streams.connect(self.nats_url, "notify")
        try:
            while not stop.is_set():
                try:
                    js = nc.jetstream()
                    await streams.wait_for_streams(js, timeout=30)
                    await self._declare(js)
                    self.js = js
                    subscription = await js.pull_subscribe_bind(
                        durable=self.policy.name, stream=streams.EVENTS_STREAM
                    )
                    self.ready.set()
                    try:
                        await self._consume(subscription, stop)
                    finally:
                        with contextlib.suppress(Exception):
                            await subscription.unsubscribe()
                except Exception as exc:  # noqa: BLE001 - NATS away or consumer lost: start over
                    logger.warning("event consumer restarting", extra={"error": f"{type(exc).__name__}: {exc}"})
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1.0)
        finally:
            with contextlib.suppress(Exception):
                await nc.close()

    async def _declare(self, js: JetStreamContext) -> None:
        try:
            await js.add_consumer(streams.EVENTS_STREAM, self.config)
        except nats.js.errors.BadRequestError as exc:
            # Exists with settings that cannot change in place (e.g. the deliver policy).
            await js.consumer_info(streams.EVENTS_STREAM, self.policy.name)
            logger.warning("keeping the existing consumer's settings", extra={"error": str(exc)})

    async def _consume(self, subscription: JetStreamContext.PullSubscription, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                msgs = await subscription.fetch(self.policy.fetch_batch, timeout=FETCH_TIMEOUT_SECONDS)
            except (TimeoutError, nats.errors.TimeoutError):
                failures = 0
                continue
            except (nats.errors.Error, nats.js.errors.Error, OSError) as exc:
                failures += 1
                if failures >= 3:
                    raise
                logger.warning("fetching events failed", extra={"error": f"{type(exc).__name__}: {exc}"})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
                continue
            failures = 0
            await self.handle(msgs)

    async def _keep_alive(self, msgs: Sequence[Msg]) -> None:
        """Tell JetStream the messages are being worked on, until cancelled."""
        interval = max(0.2, self.policy.backoff[0] / 3)
        while True:
            await asyncio.sleep(interval)
            for msg in msgs:
                with contextlib.suppress(Exception):
                    await msg.in_progress()

    async def handle(self, msgs: Sequence[Msg]) -> None:
        """Record a batch of messages, then acknowledge each as its outcome
        dictates; each message is a span of the trace that sent it."""
        for msg in msgs:
            count_redelivery(msg, streams.EVENTS_STREAM, self.policy.name)
        spans = {
            id(msg): start_consumer_span(
                "event received", msg.headers, {"messaging.system": "nats", "messaging.destination.name": msg.subject}
            )
            for msg in msgs
        }
        try:
            await self._handle(msgs, spans)
        finally:
            for span in spans.values():
                span.end()

    async def _handle(self, msgs: Sequence[Msg], spans: dict[int, trace.Span]) -> None:
        events: list[tuple[Msg, store.IncomingEvent]] = []
        unreadable: list[tuple[Msg, UnreadableEvent]] = []
        for msg in msgs:
            try:
                event = read_event(msg)
                # Kept with the event: its e-mails join this trace on any replica, after any restart.
                event = replace(event, traceparent=traceparent(spans[id(msg)].get_span_context()))
                events.append((msg, event))
            except UnreadableEvent as exc:
                unreadable.append((msg, exc))
        # Each event's span, by event id, handed over before its deliveries are
        # recorded: they continue its trace even when the sender's poll claims
        # them before the wake below.
        self.on_queued([], {event.event_id: spans[id(msg)].get_span_context() for msg, event in events})
        keep_alive = asyncio.create_task(self._keep_alive(msgs))
        queued: list[uuid.UUID] = []
        try:
            outcomes = await self._record(events, unreadable, queued)
        finally:
            keep_alive.cancel()
        if queued:
            self.on_queued(queued, {})
        for msg, outcome in outcomes:
            spans[id(msg)].set_attribute("mesh.outcome", str(outcome))
            with contextlib.suppress(Exception):
                if outcome == "ack":
                    await msg.ack()
                elif outcome == "nak":
                    await msg.nak(delay=self._nak_delay(msg))

    def _nak_delay(self, msg: Msg) -> float:
        steps = self.policy.backoff
        return steps[min(len(steps) - 1, _deliveries_so_far(msg) - 1)]

    async def _until_recorded(self, fn: Callable[..., object], *args: object) -> object:
        """Run a store call, waiting out database outages (messages stay in progress)."""
        pause = 0.2
        while True:
            try:
                return await self.runner.run(fn, *args)  # type: ignore[arg-type]
            except Unavailable:
                if self._stop.is_set():
                    raise  # stopping: leave the batch unacknowledged; it is redelivered
                logger.warning("database unavailable; events wait")
                await asyncio.sleep(pause)
                pause = min(2.0, pause * 2)

    async def _record(
        self,
        events: list[tuple[Msg, store.IncomingEvent]],
        unreadable: list[tuple[Msg, UnreadableEvent]],
        queued: list[uuid.UUID],
    ) -> list[tuple[Msg, str]]:
        """Record the batch; return what to do with each message ("ack" or
        "nak") and add the ids of the deliveries queued to ``queued``."""
        outcomes: list[tuple[Msg, str]] = []
        for msg, exc in unreadable:
            logger.warning("unreadable event recorded as dead", extra={"event_id": exc.event_id, "error": str(exc)})
            await self._until_recorded(store.record_unreadable_event, exc.event_id, str(exc))
            notify_metrics.DEAD_EVENTS.inc()
            outcomes.append((msg, "ack"))
        if not events:
            return outcomes
        try:
            queued += await self._until_recorded(store.record_events, [e for _, e in events])  # type: ignore[arg-type]
            return outcomes + [(msg, "ack") for msg, _ in events]
        except Exception:  # noqa: BLE001 - one bad event must not hold up the others
            logger.exception("recording a batch failed; recording its events one by one")
        for msg, event in events:
            try:
                queued += await self._until_recorded(store.record_events, [event])  # type: ignore[arg-type]
                outcomes.append((msg, "ack"))
            except Exception as exc:  # noqa: BLE001
                if _deliveries_so_far(msg) >= self.policy.max_deliver:
                    await self._until_recorded(
                        store.record_unreadable_event, event.event_id, f"failed {self.policy.max_deliver} times: {exc}"
                    )
                    notify_metrics.DEAD_EVENTS.inc()
                    outcomes.append((msg, "ack"))
                else:
                    outcomes.append((msg, "nak"))
        return outcomes
