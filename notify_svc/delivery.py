"""Sending the queued e-mails: claim due deliveries, render, send, record.

Deliveries are claimed from the database with ``FOR UPDATE SKIP LOCKED`` and
a short lease that the claiming replica renews (a heartbeat, every third of
the lease) for as long as it holds the delivery, however long SMTP takes: so
replicas share the work, and a delivery whose sender died is taken again
within one lease (NOTIFY_LEASE_SECONDS) of its last renewal. A failed attempt is retried with exponential
backoff (and jitter) until NOTIFY_MAX_ATTEMPTS, then the delivery is dead. The
loop wakes when the consumer queued something and otherwise polls for due
retries, so it survives restarts: the state is all in the table.

Sending is at least once, with a Message-ID that is the same for every
attempt at one (event, subscription), across retries, replicas and restarts.
The claim records the attempt (attempts + 1, lease) before the first SMTP
command, and the 250 is recorded right after it arrives (batched with the
others that finished meanwhile: one UPDATE). A process that dies between the
two leaves the one window no SMTP client can close: the delivery is sent
again after its lease, with the same Message-ID, and its attempts show the
interruption. A receiver that drops repeated Message-IDs (mailpit with
MP_IGNORE_DUPLICATE_IDS, our catcher with --ignore-duplicate-ids) then keeps
exactly one copy.

Each attempt is a span (``deliver e-mail``) with the SMTP send under it. A
delivery this replica's consumer just queued continues its event's trace (the
consumer hands the events' span contexts over with the ids, kept in memory
for the last ``_TRACES_KEPT`` events); a retry after a restart or on another
replica continues it too, from the ``traceparent`` kept with the event row.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.headerregistry import Address

from google.protobuf.message import DecodeError
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode

from mesh.events.v1 import events_pb2
from mesh_runtime.backoff import backoff_seconds
from mesh_runtime.database import BlockingRunner
from mesh_runtime.errors import Unavailable
from mesh_runtime.telemetry import span_context_of
from notify_svc import email_message, links, store
from notify_svc import metrics as email_metrics
from notify_svc.mailer import Mailer, PermanentSmtpError

logger = logging.getLogger("notify.delivery")

# Old sent and dead deliveries are forgotten this often (the first time a minute after start).
_PRUNE_EVERY_SECONDS = 3600.0
# Span contexts of the events last received, by event id (deliveries join their traces).
_TRACES_KEPT = 4096

_tracer = trace.get_tracer("notify_svc.delivery")


@dataclass(frozen=True)
class DeliveryPolicy:
    """How e-mails are sent and retried."""

    owner: str
    sender: Address
    web_base_url: str
    rest_base_url: str
    link_secret: str
    connections: int = 4
    max_attempts: int = 10
    retry_base: float = 2.0
    retry_max: float = 600.0
    lease_seconds: float = 10.0
    # How long an outcome is retried while the database is away. Recording is
    # conditional on still holding the lease, so waiting longer is always safe.
    record_patience_seconds: float = 30.0
    poll_seconds: float = 1.0
    retention_days: float = 30.0

    def retry_in(self, attempts: int) -> float | None:
        """Seconds until the next attempt after ``attempts`` failed ones; None: give up."""
        if attempts >= self.max_attempts:
            return None
        return backoff_seconds(attempts - 1, self.retry_base, self.retry_max)


class SentRecorder:
    """Records sent e-mails in batches: whatever completes while one batch is
    being written goes into the next, so a burst costs one UPDATE per batch."""

    def __init__(self, runner: BlockingRunner, owner: str, patience: float) -> None:
        self.runner = runner
        self.owner = owner
        self.patience = patience
        self._pending: list[tuple[tuple[uuid.UUID, str, str], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def sent(self, delivery_id: uuid.UUID, email: str, subject: str) -> None:
        """Record one sent e-mail; returns once it is written (or given up on)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(((delivery_id, email, subject), done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await done

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            deadline = time.monotonic() + self.patience
            pause = 0.2
            while True:
                try:
                    await self.runner.run(store.mark_sent_many, self.owner, [row for row, _ in batch])
                    break
                except Unavailable:
                    if time.monotonic() > deadline:
                        # Its lease runs out and it is sent again: the duplicate case.
                        logger.error("could not record sent e-mails", extra={"count": len(batch)})
                        break
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 2.0)
                except Exception:
                    logger.exception("recording sent e-mails failed")
                    break
            for _, done in batch:
                if not done.done():
                    done.set_result(None)


class Dispatcher:
    """Sends due deliveries until stopped."""

    def __init__(self, runner: BlockingRunner, mailer: Mailer, policy: DeliveryPolicy) -> None:
        self.runner = runner
        self.mailer = mailer
        self.policy = policy
        self._wake = asyncio.Event()
        # Deliveries this replica's consumer just queued: claimed by id first.
        self._fresh: collections.deque[uuid.UUID] = collections.deque()
        # Claimed ahead of the SMTP connections, so a connection never waits for a claim.
        self.capacity = 2 * policy.connections
        self.recorder = SentRecorder(runner, policy.owner, policy.record_patience_seconds)
        # Deliveries this replica holds (claimed, outcome not yet recorded): their
        # leases are renewed. Those whose lease was found taken over are "lost".
        self._held: set[uuid.UUID] = set()
        self._lost: set[uuid.UUID] = set()
        self._traces: collections.OrderedDict[str, SpanContext] = collections.OrderedDict()

    def wake(self, queued: Sequence[uuid.UUID] = (), traces: Mapping[str, SpanContext] | None = None) -> None:
        """New deliveries are queued: send them now instead of at the next poll.
        ``traces``: the span context of each event they were queued for, by event id."""
        for event_id, span_context in (traces or {}).items():
            if span_context.is_valid:
                self._traces[event_id] = span_context
                self._traces.move_to_end(event_id)
        while len(self._traces) > _TRACES_KEPT:
            self._traces.popitem(last=False)
        self._fresh.extend(queued)
        self._wake.set()

    async def _claim(self, limit: int) -> list[store.Claimed]:
        """Fresh deliveries by id while there are any; otherwise whatever is due
        (retries, and deliveries of replicas that died or are busy)."""
        while self._fresh:
            ids = [self._fresh.popleft() for _ in range(min(limit, len(self._fresh)))]
            claimed = await self.runner.run(store.claim_ids, self.policy.owner, ids, self.policy.lease_seconds)
            if claimed:
                return claimed
        return await self.runner.run(store.claim_due, self.policy.owner, limit, self.policy.lease_seconds)

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and send due deliveries until ``stop`` is set; finish those in hand."""
        tasks: set[asyncio.Task[None]] = set()
        stopping = asyncio.ensure_future(stop.wait())
        released = asyncio.Event()  # set once nothing is held any more
        renewing = asyncio.create_task(self._renew_leases(released))
        next_prune = time.monotonic() + _PRUNE_EVERY_SECONDS / 60
        try:
            while not stop.is_set():
                if time.monotonic() > next_prune:
                    next_prune = time.monotonic() + _PRUNE_EVERY_SECONDS
                    await self._prune()
                free = self.capacity - len(tasks)
                if free < max(1, self.policy.connections // 2) and tasks:
                    await asyncio.wait({*tasks, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    continue
                self._wake.clear()
                try:
                    claimed = await self._claim(free)
                except Unavailable:
                    claimed = []
                except Exception:
                    logger.exception("claiming deliveries failed")
                    claimed = []
                for delivery in claimed:
                    task = asyncio.create_task(self.attempt(delivery))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if len(claimed) < free and not self._fresh:
                    waker = asyncio.ensure_future(self._wake.wait())
                    await asyncio.wait(
                        {waker, stopping}, timeout=self.policy.poll_seconds, return_when=asyncio.FIRST_COMPLETED
                    )
                    waker.cancel()
        finally:
            stopping.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            released.set()
            await renewing

    async def _renew_leases(self, released: asyncio.Event) -> None:
        """Keep the leases of the deliveries held here until ``released``."""
        interval = self.policy.lease_seconds / 3
        failing = False
        while not released.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(released.wait(), interval)
            ids = list(self._held)
            if not ids or released.is_set():
                continue
            try:
                kept = await self.runner.run(store.renew_leases, self.policy.owner, ids, self.policy.lease_seconds)
            except Exception as exc:  # noqa: BLE001 - the next beat tries again; the leases may lapse
                if not failing:
                    logger.warning("cannot renew e-mail leases", extra={"count": len(ids), "error": str(exc)})
                failing = True
                continue
            failing = False
            self._lost.update(i for i in ids if i not in kept and i in self._held)

    async def _prune(self) -> None:
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=self.policy.retention_days)
        try:
            gone = await self.runner.run(store.prune, cutoff)
        except Exception as exc:  # noqa: BLE001 - housekeeping; tried again later
            logger.warning("pruning old deliveries failed", extra={"error": str(exc)})
            return
        if gone:
            logger.info("pruned old deliveries", extra={"count": gone, "before": cutoff.isoformat()})

    def _message(self, delivery: store.Claimed) -> email_message.OutgoingEmail:
        if delivery.payload is not None:
            event = events_pb2.Event.FromString(delivery.payload)
            context = email_message.event_context(event)
            result_url = links.result_url(self.policy.web_base_url, email_message.result_id(event))
        elif delivery.event_id.startswith("test-"):
            context, result_url = email_message.context_of_test_email(), ""
        else:
            raise ValueError(f"event {delivery.event_id} is not stored")
        return email_message.build_message(
            context=context,
            sender=self.policy.sender,
            recipient=email_message.address(delivery.email, delivery.display_name),
            links=email_message.Links(
                result_url=result_url,
                unsubscribe_url=links.unsubscribe_url(
                    self.policy.rest_base_url, self.policy.link_secret, delivery.subscription_id
                ),
                unsubscribe_page_url=links.unsubscribe_page_url(
                    self.policy.web_base_url, self.policy.link_secret, delivery.subscription_id
                ),
            ),
            event_id=delivery.event_id,
            subscription_id=delivery.subscription_id,
        )

    async def _record(self, fn: object, *args: object) -> None:
        """Record an outcome, retrying for a while when the database is away."""
        deadline = time.monotonic() + self.policy.record_patience_seconds
        pause = 0.2
        while True:
            try:
                await self.runner.run(fn, *args)  # type: ignore[arg-type]
                return
            except Unavailable:
                if time.monotonic() > deadline:
                    logger.error("could not record a delivery outcome; it will be retried", extra={"id": str(args[0])})
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)

    async def attempt(self, delivery: store.Claimed) -> None:
        """One attempt at one claimed delivery, its outcome recorded; its lease is
        renewed until then."""
        self._held.add(delivery.id)
        # The event's span: handed over by this replica's consumer, else as kept with the event.
        event_span = self._traces.get(delivery.event_id) or span_context_of(delivery.traceparent)
        parent = trace.set_span_in_context(NonRecordingSpan(event_span)) if event_span is not None else None
        try:
            with _tracer.start_as_current_span(
                "deliver e-mail",
                context=parent,
                attributes={
                    "mesh.delivery.id": str(delivery.id),
                    "mesh.delivery.attempt": delivery.attempts,
                    "messaging.message.id": delivery.event_id,
                },
            ):
                await self._attempt(delivery)
        finally:
            self._held.discard(delivery.id)
            self._lost.discard(delivery.id)

    async def _attempt(self, delivery: store.Claimed) -> None:
        owner = self.policy.owner
        try:
            message = self._message(delivery)
        except (email_message.UnsendableAddress, ValueError, DecodeError) as exc:
            logger.warning("delivery cannot be sent", extra={"id": str(delivery.id), "error": str(exc)})
            await self._record(store.mark_failed, delivery.id, owner, f"cannot be sent: {exc}", None)
            email_metrics.DEAD.inc()
            return
        subject = message.subject
        if delivery.id in self._lost:
            # Its lease lapsed (the database was away) and another replica took it.
            logger.info("delivery taken over by another replica", extra={"id": str(delivery.id)})
            return
        try:
            await self.mailer.send(message)
        except PermanentSmtpError as exc:
            trace.get_current_span().set_status(Status(StatusCode.ERROR, "refused"))
            await self._record(store.mark_failed, delivery.id, owner, f"refused: {exc}", None, subject)
            email_metrics.DEAD.inc()
        except Exception as exc:  # noqa: BLE001 - any SMTP or network failure is retried
            retry_in = self.policy.retry_in(delivery.attempts)
            (email_metrics.DEAD if retry_in is None else email_metrics.FAILED).inc()
            error = f"{type(exc).__name__}: {exc}".strip()
            trace.get_current_span().set_status(Status(StatusCode.ERROR, error[:200]))
            logger.warning(
                "sending failed",
                extra={"id": str(delivery.id), "attempts": delivery.attempts, "error": error, "retry_in": retry_in},
            )
            await self._record(store.mark_failed, delivery.id, owner, error, retry_in, subject)
        else:
            email_metrics.SENT.inc()
            await self.recorder.sent(delivery.id, delivery.email, subject)

    async def send_test(self, subscription_id: str) -> store.DeliveryRow:
        """Queue a test e-mail to a subscription, try it once now, return its delivery."""
        delivery_id: uuid.UUID = await self.runner.run(
            store.queue_test_delivery, subscription_id, self.policy.owner, self.policy.lease_seconds
        )
        claimed = await self.runner.run(store.claimed, delivery_id)
        if claimed is not None:
            await self.attempt(claimed)
        return await self.runner.run(store.get_delivery, delivery_id)
