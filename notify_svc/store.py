"""Peewee models, migrations and queries of the notify service.

Tables: ``subscription`` (who wants which e-mail), ``event`` (each event
received, kept to render its e-mails) and ``delivery`` (one row per e-mail:
the unique key (event_id, subscription_id) makes a redelivered event a no-op,
and status / attempts / next_attempt_time / lease drive the sending and its
retries, so they survive restarts and are shared by replicas).

All functions here block; callers run them through a BlockingRunner.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import peewee
from playhouse.postgres_ext import ArrayField, DateTimeTZField

from mesh.notify.v1 import subscription_pb2
from mesh_runtime.database import Migration, save_changes, utc_now
from mesh_runtime.errors import AlreadyExists, FailedPrecondition, NotFound

database_proxy = peewee.DatabaseProxy()

# Event types and delivery statuses as stored: the values of the mesh.notify.v1 enums.
RESULT_SUCCEEDED = subscription_pb2.EVENT_TYPE_RESULT_SUCCEEDED
RESULT_FAILED = subscription_pb2.EVENT_TYPE_RESULT_FAILED
ANOMALY_DETECTED = subscription_pb2.EVENT_TYPE_ANOMALY_DETECTED
QUEUED, SENT = subscription_pb2.DELIVERY_STATUS_QUEUED, subscription_pb2.DELIVERY_STATUS_SENT
FAILED, DEAD = subscription_pb2.DELIVERY_STATUS_FAILED, subscription_pb2.DELIVERY_STATUS_DEAD


class BaseModel(peewee.Model):
    """Models of this service live in its own database."""

    class Meta:
        database = database_proxy


class SubscriptionRow(BaseModel):
    """Someone who wants e-mail about analysis results."""

    id = peewee.UUIDField(primary_key=True, default=uuid.uuid4)
    email = peewee.TextField()
    display_name = peewee.TextField(default="")
    create_time = DateTimeTZField(default=utc_now, index=True)
    # Empty: every dataset / every event type.
    dataset_ids = ArrayField(peewee.TextField, default=list, index=False)
    event_types = ArrayField(peewee.IntegerField, default=list, index=False)
    min_anomaly_count = peewee.IntegerField(default=0)
    update_time = DateTimeTZField(default=utc_now)
    # Set by the e-mail's unsubscribe link: no more e-mail, delivery log kept.
    disabled = peewee.BooleanField(default=False)

    class Meta:
        table_name = "subscription"


# One subscription per address, whatever its letter case.
SubscriptionRow.add_index(
    SubscriptionRow.index(
        peewee.fn.lower(SubscriptionRow.email), unique=True, name="subscription_email_lower"
    )
)


class EventRow(BaseModel):
    """An event as received, kept so its e-mails can be (re)rendered."""

    event_id = peewee.TextField(primary_key=True)
    event_type = peewee.IntegerField()
    payload = peewee.BlobField()
    create_time = DateTimeTZField(default=utc_now)
    # The W3C traceparent of the span that received it: its e-mails join that
    # trace on any replica, after any restart.
    traceparent = peewee.TextField(default="")

    class Meta:
        table_name = "event"


class DeliveryRow(BaseModel):
    """One e-mail about one event to one subscription (or a dead unreadable event)."""

    id = peewee.UUIDField(primary_key=True, default=uuid.uuid4)
    event_id = peewee.TextField()
    subscription = peewee.ForeignKeyField(
        SubscriptionRow, null=True, on_delete="CASCADE", column_name="subscription_id", index=False
    )
    event_type = peewee.IntegerField(default=0)
    status = peewee.IntegerField(default=QUEUED)
    attempts = peewee.IntegerField(default=0)
    last_error = peewee.TextField(default="")
    email = peewee.TextField(default="")
    subject = peewee.TextField(default="")
    result_id = peewee.TextField(default="")
    create_time = DateTimeTZField(default=utc_now)
    update_time = DateTimeTZField(default=utc_now)
    next_attempt_time = DateTimeTZField(null=True)
    sent_time = DateTimeTZField(null=True)
    # The replica sending it right now, until lease_until.
    lease_owner = peewee.TextField(null=True)
    lease_until = DateTimeTZField(null=True)

    class Meta:
        table_name = "delivery"


def _create_subscriptions(db: peewee.Database) -> None:
    db.execute_sql(
        "CREATE TABLE subscription (id uuid PRIMARY KEY, email text NOT NULL,"
        " display_name text NOT NULL DEFAULT '', create_time timestamptz NOT NULL)"
    )
    db.execute_sql("CREATE INDEX subscription_create_time ON subscription (create_time)")
    db.execute_sql("CREATE UNIQUE INDEX subscription_email_lower ON subscription (lower(email))")


def _create_deliveries(db: peewee.Database) -> None:
    for statement in (
        "ALTER TABLE subscription ADD COLUMN dataset_ids text[] NOT NULL DEFAULT '{}',"
        " ADD COLUMN event_types integer[] NOT NULL DEFAULT '{}',"
        " ADD COLUMN min_anomaly_count integer NOT NULL DEFAULT 0,"
        " ADD COLUMN update_time timestamptz NOT NULL DEFAULT now()",
        "CREATE TABLE event (event_id text PRIMARY KEY, event_type integer NOT NULL,"
        " payload bytea NOT NULL, create_time timestamptz NOT NULL DEFAULT now())",
        "CREATE TABLE delivery ("
        " id uuid PRIMARY KEY, event_id text NOT NULL,"
        " subscription_id uuid REFERENCES subscription (id) ON DELETE CASCADE,"
        " event_type integer NOT NULL DEFAULT 0, status integer NOT NULL,"
        " attempts integer NOT NULL DEFAULT 0, last_error text NOT NULL DEFAULT '',"
        " email text NOT NULL DEFAULT '', subject text NOT NULL DEFAULT '',"
        " result_id text NOT NULL DEFAULT '',"
        " create_time timestamptz NOT NULL, update_time timestamptz NOT NULL,"
        " next_attempt_time timestamptz, sent_time timestamptz,"
        " lease_owner text, lease_until timestamptz)",
        # The idempotency key: one e-mail per (event, subscription) ...
        "CREATE UNIQUE INDEX delivery_event_subscription ON delivery (event_id, subscription_id)",
        # ... and one dead record per unreadable event.
        "CREATE UNIQUE INDEX delivery_unreadable_event ON delivery (event_id) WHERE subscription_id IS NULL",
        "CREATE INDEX delivery_due ON delivery (next_attempt_time) WHERE status IN (1, 3)",
        "CREATE INDEX delivery_newest ON delivery (create_time DESC, id DESC)",
        "CREATE INDEX delivery_subscription ON delivery (subscription_id, create_time DESC)",
    ):
        db.execute_sql(statement)


def _delivery_fillfactor(db: peewee.Database) -> None:
    # Room on each page, so claiming a delivery (lease columns only) is a HOT
    # update that adds no index entries.
    db.execute_sql("ALTER TABLE delivery SET (fillfactor = 70)")


def _subscription_disabled(db: peewee.Database) -> None:
    db.execute_sql("ALTER TABLE subscription ADD COLUMN disabled boolean NOT NULL DEFAULT false")


def _event_traceparent(db: peewee.Database) -> None:
    db.execute_sql("ALTER TABLE event ADD COLUMN traceparent text NOT NULL DEFAULT ''")


MIGRATIONS = [
    Migration(1, "create subscription table", _create_subscriptions),
    Migration(2, "subscription filters, event and delivery tables", _create_deliveries),
    Migration(3, "delivery pages keep room for HOT updates", _delivery_fillfactor),
    Migration(4, "subscriptions disabled by the unsubscribe link", _subscription_disabled),
    Migration(5, "events keep the trace context their e-mails continue", _event_traceparent),
]


def bind(db: peewee.Database) -> None:
    """Point this module's models at ``db``."""
    database_proxy.initialize(db)


# --- subscriptions --------------------------------------------------------------

UPDATABLE_FIELDS = ("email", "display_name", "dataset_ids", "event_types", "min_anomaly_count", "disabled")

UNSUBSCRIBED_ERROR = "not sent: the subscription is disabled (its recipient unsubscribed)"
"""The delivery log's last_error of an e-mail a disabled subscription never got."""


def _key(subscription_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(subscription_id)
    except ValueError:
        raise NotFound("subscription", subscription_id) from None


def create_subscription(
    email: str,
    display_name: str,
    dataset_ids: Sequence[str] = (),
    event_types: Sequence[int] = (),
    min_anomaly_count: int = 0,
) -> SubscriptionRow:
    """Insert a subscription; AlreadyExists when the address has one."""
    try:
        with database_proxy.atomic():
            return SubscriptionRow.create(
                email=email,
                display_name=display_name,
                dataset_ids=sorted({d.lower() for d in dataset_ids}),
                event_types=sorted(set(event_types)),
                min_anomaly_count=min_anomaly_count,
            )
    except peewee.IntegrityError:
        raise AlreadyExists("subscription", email) from None


def get_subscription(subscription_id: str) -> SubscriptionRow:
    """The subscription with this id; NotFound if there is none."""
    row = SubscriptionRow.get_or_none(SubscriptionRow.id == _key(subscription_id))
    if row is None:
        raise NotFound("subscription", subscription_id)
    return row


def update_subscription(subscription_id: str, changes: dict[str, Any]) -> SubscriptionRow:
    """Set the given fields (a subset of UPDATABLE_FIELDS); NotFound, or
    AlreadyExists when the new address is subscribed already."""
    unknown = set(changes) - set(UPDATABLE_FIELDS)
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    if "dataset_ids" in changes:
        changes["dataset_ids"] = sorted({d.lower() for d in changes["dataset_ids"]})
    if "event_types" in changes:
        changes["event_types"] = sorted(set(changes["event_types"]))
    try:
        with database_proxy.atomic():
            row = get_subscription(subscription_id)
            save_changes(row, changes)
            if changes.get("disabled"):
                _drop_pending(row.id)
            return row
    except peewee.IntegrityError:
        raise AlreadyExists("subscription", str(changes.get("email"))) from None


def delete_subscription(subscription_id: str) -> SubscriptionRow:
    """Delete a subscription and (ON DELETE CASCADE) its deliveries; NotFound if absent."""
    with database_proxy.atomic():
        row = get_subscription(subscription_id)
        row.delete_instance()
        return row


def disable_subscription(subscription_id: str) -> SubscriptionRow:
    """Disable a subscription (no more e-mail; deliveries kept); NotFound if absent."""
    with database_proxy.atomic():
        row = get_subscription(subscription_id)
        if not row.disabled:
            save_changes(row, {"disabled": True})
        _drop_pending(row.id)
        return row


def _drop_pending(subscription_id: uuid.UUID) -> None:
    """Give up the subscription's deliveries still waiting to be sent (queued or
    to be retried, not held by a sender), with UNSUBSCRIBED_ERROR in the log.
    Those held right now are given up when their sender records the outcome
    of a claim (see ``_claimed``)."""
    now = utc_now()
    DeliveryRow.update(
        status=DEAD, last_error=UNSUBSCRIBED_ERROR, update_time=now, next_attempt_time=None
    ).where(
        (DeliveryRow.subscription == subscription_id)
        & DeliveryRow.status.in_([QUEUED, FAILED])
        & (DeliveryRow.lease_until.is_null() | (DeliveryRow.lease_until < now))
    ).execute()


def list_subscriptions(
    limit: int, after: tuple[dt.datetime, uuid.UUID] | None
) -> list[SubscriptionRow]:
    """Up to ``limit`` subscriptions, newest first, after the (create_time, id) key."""
    query: Any = SubscriptionRow.select().order_by(
        SubscriptionRow.create_time.desc(), SubscriptionRow.id.desc()
    )
    if after is not None:
        query = query.where(
            peewee.Tuple(SubscriptionRow.create_time, SubscriptionRow.id) < peewee.Tuple(*after)
        )
    return list(query.limit(limit))


# --- events and deliveries ---------------------------------------------------------


@dataclass(frozen=True)
class IncomingEvent:
    """What matching needs from an event, and its bytes for rendering later."""

    event_id: str
    event_type: int
    dataset_id: str
    anomaly_count: int
    result_id: str
    payload: bytes
    traceparent: str = ""


_MATCH_AND_QUEUE = """
INSERT INTO delivery (id, event_id, subscription_id, event_type, status, attempts, email, result_id,
                      create_time, update_time, next_attempt_time)
SELECT gen_random_uuid(), e.event_id, s.id, e.event_type, 1, 0, s.email, e.result_id, now(), now(), now()
FROM unnest(%s::text[], %s::integer[], %s::text[], %s::bigint[], %s::text[])
       AS e(event_id, event_type, dataset_id, anomaly_count, result_id)
JOIN subscription s
  ON (cardinality(s.dataset_ids) = 0 OR e.dataset_id = ANY (s.dataset_ids))
 AND (cardinality(s.event_types) = 0 OR e.event_type = ANY (s.event_types))
 AND (e.event_type = 2 OR e.anomaly_count >= s.min_anomaly_count)
 AND NOT s.disabled
ON CONFLICT (event_id, subscription_id) DO NOTHING
RETURNING id
"""


def record_events(events: Sequence[IncomingEvent]) -> list[uuid.UUID]:
    """Store the events and queue one delivery per matching subscription, in
    one transaction; an event seen before queues nothing new. Returns the ids
    of the deliveries queued."""
    if not events:
        return []
    with database_proxy.atomic():
        EventRow.insert_many(
            [
                {
                    "event_id": e.event_id,
                    "event_type": e.event_type,
                    "payload": e.payload,
                    "traceparent": e.traceparent,
                }
                for e in events
            ]
        ).on_conflict_ignore().execute()
        cursor = database_proxy.execute_sql(
            _MATCH_AND_QUEUE,
            (
                [e.event_id for e in events],
                [e.event_type for e in events],
                [e.dataset_id.lower() for e in events],
                [e.anomaly_count for e in events],
                [e.result_id for e in events],
            ),
        )
        return [uuid.UUID(str(row[0])) for row in cursor.fetchall()]


def record_unreadable_event(event_id: str, error: str) -> None:
    """Record an event that cannot be read as a dead delivery (once per event id)."""
    now = utc_now()
    DeliveryRow.insert(
        id=uuid.uuid4(),
        event_id=event_id,
        subscription=None,
        status=DEAD,
        last_error=error[:1000],
        create_time=now,
        update_time=now,
    ).on_conflict_ignore().execute()


def queue_test_delivery(subscription_id: str, owner: str, lease_seconds: float) -> uuid.UUID:
    """Queue a test e-mail to a subscription, held by ``owner`` to send it now;
    FailedPrecondition when the subscription is disabled."""
    row = get_subscription(subscription_id)
    if row.disabled:
        raise FailedPrecondition(
            f"subscription {row.id} is disabled (its recipient unsubscribed), so it gets no e-mail,"
            " test e-mails included; enable it first (UpdateSubscription with update_mask \"disabled\")"
        )
    now = utc_now()
    delivery = DeliveryRow.create(
        event_id=f"test-{uuid.uuid4()}",
        subscription=row.id,
        status=QUEUED,
        attempts=1,
        email=row.email,
        create_time=now,
        update_time=now,
        next_attempt_time=now,
        lease_owner=owner,
        lease_until=now + dt.timedelta(seconds=lease_seconds),
    )
    return uuid.UUID(str(delivery.id))


@dataclass(frozen=True)
class Claimed:
    """A delivery taken for one attempt, with what rendering it needs."""

    id: uuid.UUID
    event_id: str
    subscription_id: uuid.UUID
    attempts: int
    email: str
    display_name: str
    payload: bytes | None
    traceparent: str = ""


_CLAIM = """
WITH due AS (
  SELECT id FROM delivery
  WHERE status IN (1, 3) AND next_attempt_time <= now()
    AND (lease_until IS NULL OR lease_until < now())
  ORDER BY next_attempt_time
  LIMIT %s
  FOR UPDATE SKIP LOCKED)
UPDATE delivery d
SET lease_owner = %s, lease_until = now() + %s * interval '1 second',
    attempts = d.attempts + 1, update_time = now()
FROM due WHERE d.id = due.id
RETURNING d.id
"""

_CLAIMED = """
SELECT d.id, d.event_id, d.subscription_id, d.attempts, s.email, s.display_name, e.payload, s.disabled,
       coalesce(e.traceparent, '')
FROM delivery d
JOIN subscription s ON s.id = d.subscription_id
LEFT JOIN event e ON e.event_id = d.event_id
WHERE d.id = ANY (%s::uuid[])
"""


_GIVE_UP_UNSUBSCRIBED = """
UPDATE delivery
SET status = 4, last_error = %s, update_time = now(), next_attempt_time = NULL, lease_until = NULL
WHERE id = ANY (%s::uuid[])
"""


def _claimed(ids: Sequence[uuid.UUID]) -> list[Claimed]:
    """The claimed deliveries with what rendering them needs; those of a
    disabled subscription are given up instead (never sent), in the claim's
    transaction, so an unsubscribe wins over any delivery not yet claimed."""
    cursor = database_proxy.execute_sql(_CLAIMED, ([str(i) for i in ids],))
    rows = cursor.fetchall()
    unsubscribed = [str(r[0]) for r in rows if r[7]]
    if unsubscribed:
        database_proxy.execute_sql(_GIVE_UP_UNSUBSCRIBED, (UNSUBSCRIBED_ERROR, unsubscribed))
    return [
        Claimed(
            id=uuid.UUID(str(r[0])),
            event_id=r[1],
            subscription_id=uuid.UUID(str(r[2])),
            attempts=r[3],
            email=r[4],
            display_name=r[5],
            payload=bytes(r[6]) if r[6] is not None else None,
            traceparent=r[8],
        )
        for r in rows
        if not r[7]
    ]


_CLAIM_IDS = """
UPDATE delivery
SET lease_owner = %s, lease_until = now() + %s * interval '1 second',
    attempts = attempts + 1, update_time = now()
WHERE id = ANY (%s::uuid[]) AND status IN (1, 3) AND next_attempt_time <= now()
  AND (lease_until IS NULL OR lease_until < now())
RETURNING id
"""


def claim_ids(owner: str, ids: Sequence[uuid.UUID], lease_seconds: float) -> list[Claimed]:
    """Take these deliveries (just queued by this replica) for ``lease_seconds``,
    those still due and held by nobody; each claim counts as an attempt.

    By primary key, so a burst never walks the due-index past the entries of
    deliveries already sent."""
    with database_proxy.atomic():
        cursor = database_proxy.execute_sql(_CLAIM_IDS, (owner, lease_seconds, [str(i) for i in ids]))
        claimed_ids = [uuid.UUID(str(r[0])) for r in cursor.fetchall()]
        return _claimed(claimed_ids) if claimed_ids else []


def claim_due(owner: str, limit: int, lease_seconds: float) -> list[Claimed]:
    """Take up to ``limit`` deliveries that are due and held by nobody, for
    ``lease_seconds``; each claim counts as an attempt."""
    with database_proxy.atomic():
        cursor = database_proxy.execute_sql(_CLAIM, (limit, owner, lease_seconds))
        ids = [uuid.UUID(str(r[0])) for r in cursor.fetchall()]
        return _claimed(ids) if ids else []


def claimed(delivery_id: uuid.UUID) -> Claimed | None:
    """A delivery (already held by the caller) with what rendering it needs;
    None when it is gone or its subscription was disabled meanwhile."""
    with database_proxy.atomic():
        rows = _claimed([delivery_id])
    return rows[0] if rows else None


_RENEW = """
UPDATE delivery SET lease_until = now() + %s * interval '1 second'
WHERE id = ANY (%s::uuid[]) AND lease_owner = %s AND status IN (1, 3)
RETURNING id
"""


def renew_leases(owner: str, ids: Sequence[uuid.UUID], lease_seconds: float) -> set[uuid.UUID]:
    """Extend ``owner``'s leases on these deliveries by ``lease_seconds`` from now;
    returns those still held (the others were taken over or are finished)."""
    cursor = database_proxy.execute_sql(_RENEW, (lease_seconds, [str(i) for i in ids], owner))
    return {uuid.UUID(str(r[0])) for r in cursor.fetchall()}


_MARK_SENT = """
UPDATE delivery d
SET status = 2, email = v.email, subject = v.subject, last_error = '', sent_time = now(),
    update_time = now(), next_attempt_time = NULL, lease_until = NULL
FROM unnest(%s::uuid[], %s::text[], %s::text[]) AS v(id, email, subject)
WHERE d.id = v.id AND d.lease_owner = %s
"""


def mark_sent_many(owner: str, sent: Sequence[tuple[uuid.UUID, str, str]]) -> None:
    """Record several (delivery id, address, subject) as accepted by the SMTP
    server, in one statement; lease_owner stays, naming the replica that sent it."""
    database_proxy.execute_sql(
        _MARK_SENT,
        ([str(i) for i, _, _ in sent], [e for _, e, _ in sent], [s for _, _, s in sent], owner),
    )


def mark_failed(
    delivery_id: uuid.UUID, owner: str, error: str, retry_in: float | None, subject: str = ""
) -> None:
    """Record a failed attempt: retried after ``retry_in`` seconds, or dead when None."""
    now = utc_now()
    changes: dict[str, Any] = {
        "status": FAILED if retry_in is not None else DEAD,
        "last_error": error[:1000],
        "update_time": now,
        "next_attempt_time": now + dt.timedelta(seconds=retry_in) if retry_in is not None else None,
        "lease_owner": None,
        "lease_until": None,
    }
    if subject:
        changes["subject"] = subject
    DeliveryRow.update(**changes).where(
        (DeliveryRow.id == delivery_id) & (DeliveryRow.lease_owner == owner)
    ).execute()


def prune(older_than: dt.datetime) -> int:
    """Forget sent and dead deliveries, and events without a delivery still
    pending, recorded before ``older_than``; return how many deliveries went.

    Safe for the idempotency key as long as ``older_than`` is beyond the events
    stream's retention: such events cannot be delivered by JetStream again."""
    with database_proxy.atomic():
        gone = (
            DeliveryRow.delete()
            .where((DeliveryRow.create_time < older_than) & (DeliveryRow.status.in_([SENT, DEAD])))
            .execute()
        )
        database_proxy.execute_sql(
            "DELETE FROM event e WHERE e.create_time < %s"
            " AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.event_id = e.event_id)",
            (older_than,),
        )
    return int(gone)


def get_delivery(delivery_id: uuid.UUID) -> DeliveryRow:
    """One delivery; NotFound if there is none."""
    row = DeliveryRow.get_or_none(DeliveryRow.id == delivery_id)
    if row is None:
        raise NotFound("delivery", str(delivery_id))
    return row


def list_deliveries(
    limit: int,
    after: tuple[dt.datetime, uuid.UUID] | None,
    *,
    subscription_id: str = "",
    event_id: str = "",
    status: int = 0,
) -> list[DeliveryRow]:
    """Up to ``limit`` deliveries matching the filters, newest first, after the
    (create_time, id) key."""
    query: Any = DeliveryRow.select().order_by(DeliveryRow.create_time.desc(), DeliveryRow.id.desc())
    if subscription_id:
        query = query.where(DeliveryRow.subscription == uuid.UUID(subscription_id))
    if event_id:
        query = query.where(DeliveryRow.event_id == event_id)
    if status:
        query = query.where(DeliveryRow.status == status)
    if after is not None:
        query = query.where(peewee.Tuple(DeliveryRow.create_time, DeliveryRow.id) < peewee.Tuple(*after))
    return list(query.limit(limit))
