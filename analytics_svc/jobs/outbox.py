"""The transactional outbox: NATS messages written in the same transaction as
the change they report, published later by the relay.

All functions here block; callers run them through a BlockingRunner or a thread.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import peewee
from playhouse.postgres_ext import BinaryJSONField, DateTimeTZField

from analytics_svc.schema import BaseModel, database_proxy, notify
from mesh_runtime.database import utc_now
from mesh_runtime.telemetry import inject_context

# Channel of the pg_notify sent when outbox rows are written, to wake the relay.
OUTBOX_CHANNEL = "analytics_outbox"


class OutboxRow(BaseModel):
    """A NATS message written in the same transaction as the change it reports."""

    id = peewee.BigAutoField()
    message_id = peewee.TextField()
    subject = peewee.TextField()
    payload = peewee.BlobField()
    # The trace context of the change (traceparent, tracestate), published as
    # NATS headers so the consumers' spans join the trace that wrote the row.
    headers = BinaryJSONField(default=dict, index=False)
    # Results' event rows wait here for their insight (see finish_result).
    result_id = peewee.UUIDField(null=True)
    create_time = DateTimeTZField(default=utc_now)
    available_time = DateTimeTZField(default=utc_now)
    publish_time = DateTimeTZField(null=True)
    attempts = peewee.IntegerField(default=0)

    class Meta:
        table_name = "outbox"


OutboxRow.add_index(
    OutboxRow.index(OutboxRow.available_time, OutboxRow.id, name="outbox_unpublished").where(
        OutboxRow.publish_time.is_null()
    )
)


OutboxRow.add_index(
    OutboxRow.index(OutboxRow.result_id, name="outbox_result").where(OutboxRow.result_id.is_null(False))
)


OutboxRow.add_index(OutboxRow.index(OutboxRow.publish_time, name="outbox_published"))


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to publish: its NATS subject, Nats-Msg-Id and body."""

    subject: str
    message_id: str
    payload: bytes


def add_to_outbox(
    messages: Iterable[OutgoingMessage], result_id: uuid.UUID | None = None, delay: dt.timedelta | None = None
) -> None:
    """Queue messages for the relay inside the caller's transaction, and wake
    it; each row keeps the current trace context."""
    available = utc_now() + (delay or dt.timedelta(0))
    headers = dict(inject_context({}))
    rows = [
        {
            "message_id": m.message_id,
            "subject": m.subject,
            "payload": m.payload,
            "headers": headers,
            "result_id": result_id,
            "available_time": available,
        }
        for m in messages
    ]
    if rows:
        OutboxRow.insert_many(rows).execute()
        notify(OUTBOX_CHANNEL, "")


def due_outbox_rows(limit: int) -> list[OutboxRow]:
    """Unpublished, available rows in order, locked for the caller's transaction
    (rows another relay holds are skipped)."""
    query = (
        OutboxRow.select()
        .where(OutboxRow.publish_time.is_null() & (OutboxRow.available_time <= utc_now()))
        .order_by(OutboxRow.available_time, OutboxRow.id)
        .limit(limit)
        .for_update(skip_locked=True)
    )
    return list(query)


def mark_published(ids: Sequence[int]) -> None:
    """Record that rows were accepted by JetStream."""
    if ids:
        OutboxRow.update(publish_time=utc_now()).where(OutboxRow.id.in_(list(ids))).execute()


def mark_attempted(ids: Sequence[int]) -> None:
    """Count a failed publishing attempt of rows."""
    if ids:
        OutboxRow.update(attempts=OutboxRow.attempts + 1).where(OutboxRow.id.in_(list(ids))).execute()


def prune_outbox(older_than: dt.timedelta) -> int:
    """Delete rows published longer ago than ``older_than``."""
    return int(OutboxRow.delete().where(OutboxRow.publish_time < utc_now() - older_than).execute())


def pending_outbox_count() -> int:
    """Rows not yet published (for health and tests)."""
    return int(OutboxRow.select().where(OutboxRow.publish_time.is_null()).count())


def outbox_backlog(now: dt.datetime | None = None) -> tuple[int, int, float]:
    """Unpublished outbox rows due now and held for later, and the age in
    seconds of the oldest due one (blocking: a database thread). One query
    on the partial index of unpublished rows."""
    now = now or utc_now()
    cursor = database_proxy.execute_sql(
        "SELECT count(*) FILTER (WHERE available_time <= %s), count(*) FILTER (WHERE available_time > %s),"
        " min(available_time) FILTER (WHERE available_time <= %s) FROM outbox WHERE publish_time IS NULL",
        (now, now, now),
    )
    due, held, oldest = cursor.fetchone()
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return int(due), int(held), age


def release_events(result_id: uuid.UUID, payloads: dict[str, bytes]) -> None:
    """Let a result's held-back events go out now, with new bodies for those
    whose message id is in ``payloads`` (the insight added)."""
    for message_id, payload in payloads.items():
        OutboxRow.update(payload=payload).where(
            (OutboxRow.message_id == message_id) & OutboxRow.publish_time.is_null()
        ).execute()
    OutboxRow.update(available_time=utc_now()).where(
        (OutboxRow.result_id == result_id) & OutboxRow.publish_time.is_null()
    ).execute()
    notify(OUTBOX_CHANNEL, "")
