"""Schedules, analysis results and the transactional outbox.

The database is the source of truth for every result; NATS only carries work
and news about it:

- A result row is written (pending) together with an outbox row holding its
  job message, in one transaction; the relay publishes the job to the
  ``ANALYSIS_JOBS`` work queue.
- A worker claims a result (pending -> running) with a conditional update, so
  two workers never run it at once; a result whose worker stopped
  heartbeating is handed back to the queue by the sweeper.
- Finishing a result writes its outcome, its events and a ``pg_notify`` (for
  WatchResults) in one transaction.

All functions here block; callers run them through a BlockingRunner or a thread.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import peewee
from playhouse.postgres_ext import BinaryJSONField, DateTimeTZField

from analytics_svc.datasets.store import RESULTS_OF_DATASET_CHANNEL, DatasetRow, get_dataset
from analytics_svc.schema import BaseModel, database_proxy
from mesh_runtime.database import save_changes, utc_now
from mesh_runtime.errors import NotFound

# Result statuses and insight states: the numbers of the proto enums.
PENDING, RUNNING, SUCCEEDED, FAILED = 1, 2, 3, 4
INSIGHT_NONE, INSIGHT_PENDING, INSIGHT_READY, INSIGHT_UNAVAILABLE = 0, 1, 2, 3
# Channel of the pg_notify sent whenever a result is created or changes;
# the payload is "<result id> <dataset id>" (see ``changed_result``).
RESULT_CHANNEL = "analysis_result"
# Channel of the pg_notify sent when outbox rows are written, to wake the relay.
OUTBOX_CHANNEL = "analytics_outbox"


class ScheduleRow(BaseModel):
    """A recurring analysis of one dataset."""

    id = peewee.UUIDField(primary_key=True, default=uuid.uuid4)
    dataset = peewee.ForeignKeyField(DatasetRow, on_delete="CASCADE", column_name="dataset_id", index=False)
    dataset_id: uuid.UUID  # the key behind ``dataset`` (peewee's accessor)
    kind = peewee.SmallIntegerField()
    parameters = BinaryJSONField(default=dict, index=False)
    interval_seconds = peewee.BigIntegerField(null=True)
    cron = peewee.TextField(null=True)
    time_zone = peewee.TextField(default="")
    enabled = peewee.BooleanField(default=True)
    next_run_time = DateTimeTZField(null=True)
    last_run_time = DateTimeTZField(null=True)
    last_result_id = peewee.UUIDField(null=True)
    create_time = DateTimeTZField(default=utc_now)
    update_time = DateTimeTZField(default=utc_now)
    # Why the scheduler disabled it ("" while it works).
    error = peewee.TextField(default="")

    class Meta:
        table_name = "analysis_schedule"
        indexes = (
            # The scheduler's "what is due" scan.
            (("enabled", "next_run_time"), False),
            # ListSchedules by dataset, newest first.
            (("dataset", "create_time", "id"), False),
            (("create_time", "id"), False),
        )


class ResultRow(BaseModel):
    """One run of one analysis; its outcome and its insight."""

    id = peewee.UUIDField(primary_key=True, default=uuid.uuid4)
    dataset = peewee.ForeignKeyField(DatasetRow, on_delete="CASCADE", column_name="dataset_id", index=False)
    dataset_id: uuid.UUID  # the key behind ``dataset`` (peewee's accessor)
    dataset_name = peewee.TextField()
    kind = peewee.SmallIntegerField()
    parameters = BinaryJSONField(default=dict, index=False)
    status = peewee.SmallIntegerField(default=PENDING)
    error = peewee.TextField(default="")
    schedule = peewee.ForeignKeyField(
        ScheduleRow, null=True, on_delete="SET NULL", column_name="schedule_id", index=False
    )
    schedule_id: uuid.UUID | None
    scheduled_time = DateTimeTZField(null=True)
    requested_by = peewee.TextField(default="")
    create_time = DateTimeTZField(default=utc_now)
    start_time = DateTimeTZField(null=True)
    end_time = DateTimeTZField(null=True)
    heartbeat_time = DateTimeTZField(null=True)
    enqueue_time = DateTimeTZField(default=utc_now)
    attempts = peewee.IntegerField(default=0)
    window_start = DateTimeTZField(null=True)
    window_end = DateTimeTZField(null=True)
    anomaly_count = peewee.BigIntegerField(default=0)
    # mesh.analytics.v1.ResultOutput, serialized: parsing it is ~40x cheaper than its JSON.
    output = peewee.BlobField(null=True)
    insight_status = peewee.SmallIntegerField(default=INSIGHT_NONE)
    insight_text = peewee.TextField(default="")
    insight_provider = peewee.TextField(default="")
    insight_model = peewee.TextField(default="")
    insight_error = peewee.TextField(default="")
    insight_attempts = peewee.IntegerField(default=0)
    insight_update_time = DateTimeTZField(null=True)
    insight_next_attempt = DateTimeTZField(null=True)

    class Meta:
        table_name = "analysis_result"
        indexes = (
            # One result per schedule tick, however many schedulers fire it.
            (("schedule", "scheduled_time"), True),
            # An index behind every ListResults filter, each ending in the sort key.
            (("dataset", "create_time", "id"), False),
            # A dataset's results of one kind or status: what its pages filter on.
            (("dataset", "kind", "create_time", "id"), False),
            (("dataset", "status", "create_time", "id"), False),
            (("kind", "create_time", "id"), False),
            (("status", "create_time", "id"), False),
            (("create_time", "id"), False),
        )


# Indexes peewee's tuple syntax cannot declare: a partial index for
# has_anomalies, the start-time sort key, and the sweepers' scans.
ResultRow.add_index(
    ResultRow.index(ResultRow.create_time, ResultRow.id, name="analysis_result_anomalous").where(
        ResultRow.anomaly_count > 0
    )
)
ResultRow.add_index(
    ResultRow.index(
        ResultRow.dataset, ResultRow.create_time, ResultRow.id, name="analysis_result_dataset_anomalous"
    ).where(ResultRow.anomaly_count > 0)
)
START_SORT_KEY = peewee.fn.COALESCE(ResultRow.start_time, peewee.SQL("'infinity'::timestamptz"))
ResultRow.add_index(peewee.ModelIndex(ResultRow, (START_SORT_KEY, ResultRow.id), name="analysis_result_start_sort"))
ResultRow.add_index(
    ResultRow.index(ResultRow.status, ResultRow.heartbeat_time, name="analysis_result_unfinished").where(
        ResultRow.status.in_([PENDING, RUNNING])
    )
)
ResultRow.add_index(
    ResultRow.index(ResultRow.insight_next_attempt, name="analysis_result_insight_due").where(
        ResultRow.insight_status == INSIGHT_PENDING
    )
)


class OutboxRow(BaseModel):
    """A NATS message written in the same transaction as the change it reports."""

    id = peewee.BigAutoField()
    message_id = peewee.TextField()
    subject = peewee.TextField()
    payload = peewee.BlobField()
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


# --- outbox ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to publish: its NATS subject, Nats-Msg-Id and body."""

    subject: str
    message_id: str
    payload: bytes


def add_to_outbox(
    messages: Iterable[OutgoingMessage], result_id: uuid.UUID | None = None, delay: dt.timedelta | None = None
) -> None:
    """Queue messages for the relay inside the caller's transaction, and wake it."""
    available = utc_now() + (delay or dt.timedelta(0))
    rows = [
        {
            "message_id": m.message_id,
            "subject": m.subject,
            "payload": m.payload,
            "result_id": result_id,
            "available_time": available,
        }
        for m in messages
    ]
    if rows:
        OutboxRow.insert_many(rows).execute()
        notify(OUTBOX_CHANNEL, "")


def notify(channel: str, payload: str) -> None:
    """pg_notify, delivered to listeners when the caller's transaction commits."""
    database_proxy.execute_sql("SELECT pg_notify(%s, %s)", (channel, payload))


def notify_result_changed(result_id: uuid.UUID | str) -> None:
    """Tell listeners (when the caller's transaction commits) that a result was
    created or changed, naming its dataset so caches of lists can drop only
    that dataset's pages."""
    database_proxy.execute_sql(
        "SELECT pg_notify(%s, id::text || ' ' || dataset_id::text) FROM analysis_result WHERE id = %s",
        (RESULT_CHANNEL, str(result_id)),
    )


def changed_result(payload: str) -> tuple[str, str | None]:
    """The result id and dataset id of a RESULT_CHANNEL payload (dataset None
    when a sender did not name it)."""
    result_id, _, dataset_id = payload.partition(" ")
    return result_id, dataset_id or None


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


# --- schedules ------------------------------------------------------------------------


def get_schedule(schedule_id: str) -> ScheduleRow:
    """The schedule with ``schedule_id`` and its dataset; NotFound if absent."""
    try:
        key = uuid.UUID(schedule_id)
        return ScheduleRow.select(ScheduleRow, DatasetRow).join(DatasetRow).where(ScheduleRow.id == key).get()
    except (peewee.DoesNotExist, ValueError):
        raise NotFound("schedule", schedule_id) from None


def create_schedule(values: dict[str, Any]) -> ScheduleRow:
    """Insert a schedule for an existing dataset; NotFound for an unknown dataset."""
    with database_proxy.atomic():
        dataset = get_dataset(str(values["dataset_id"]))
        row = ScheduleRow.create(**{k: v for k, v in values.items() if k != "dataset_id"}, dataset=dataset)
    return get_schedule(str(row.id))


def update_schedule(schedule_id: str, changes: dict[str, Any]) -> ScheduleRow:
    """Set fields of a schedule (already validated by the caller)."""
    with database_proxy.atomic():
        row = get_schedule(schedule_id)
        save_changes(row, changes)
    return get_schedule(schedule_id)


def delete_schedule(schedule_id: str) -> str:
    """Delete a schedule (its results stay); return its dataset's id. NotFound if absent."""
    try:
        key = uuid.UUID(schedule_id)
    except ValueError:
        raise NotFound("schedule", schedule_id) from None
    with database_proxy.atomic():
        deleted = ScheduleRow.delete().where(ScheduleRow.id == key).returning(ScheduleRow.dataset).execute()
        dataset_ids = [str(row.dataset_id) for row in deleted]
        if not dataset_ids:
            raise NotFound("schedule", schedule_id)
        # Its results lose their schedule_id (ON DELETE SET NULL) without a notification of their own.
        notify(RESULTS_OF_DATASET_CHANNEL, dataset_ids[0])
    return dataset_ids[0]


def list_schedules(
    dataset_id: str | None, limit: int, after: tuple[dt.datetime, uuid.UUID] | None
) -> list[ScheduleRow]:
    """Schedules newest first, optionally of one dataset, after a page key."""
    query: Any = ScheduleRow.select(ScheduleRow, DatasetRow).join(DatasetRow)
    if dataset_id:
        query = query.where(ScheduleRow.dataset == uuid.UUID(dataset_id))
    if after is not None:
        query = query.where(peewee.Tuple(ScheduleRow.create_time, ScheduleRow.id) < peewee.Tuple(*after))
    return list(query.order_by(ScheduleRow.create_time.desc(), ScheduleRow.id.desc()).limit(limit))


def fail_schedule(schedule_id: uuid.UUID, error: str) -> None:
    """Disable a schedule the scheduler cannot fire, saying why (in the caller's transaction)."""
    ScheduleRow.update(enabled=False, next_run_time=None, error=error, update_time=utc_now()).where(
        ScheduleRow.id == schedule_id
    ).execute()


def due_schedules(now: dt.datetime, limit: int) -> list[ScheduleRow]:
    """Enabled schedules due at ``now``, locked for the caller's transaction;
    schedules another scheduler holds are skipped, so each tick fires once."""
    query = (
        ScheduleRow.select(ScheduleRow, DatasetRow)
        .join(DatasetRow)
        .where(ScheduleRow.enabled & (ScheduleRow.next_run_time <= now))
        .order_by(ScheduleRow.next_run_time)
        .limit(limit)
        .for_update(of=ScheduleRow, skip_locked=True)
    )
    return list(query)


# --- results --------------------------------------------------------------------------


def insert_result(values: dict[str, Any]) -> ResultRow | None:
    """Insert a pending result inside the caller's transaction; None when the
    schedule tick it is for already has one."""
    row_id = (
        ResultRow.insert(**values)
        .on_conflict(conflict_target=[ResultRow.schedule, ResultRow.scheduled_time], action="IGNORE")
        .returning(ResultRow.id)
        .execute()
    )
    ids = [r[0] if isinstance(r, tuple) else r.id for r in row_id] if row_id is not None else []
    if not ids:
        return None
    notify_result_changed(ids[0])
    return ResultRow.get_by_id(ids[0])


def get_result(result_id: str) -> ResultRow:
    """The result with ``result_id``; NotFound if absent."""
    try:
        return ResultRow.get_by_id(uuid.UUID(result_id))
    except (peewee.DoesNotExist, ValueError):
        raise NotFound("result", result_id) from None


def read_result(result_id: str) -> StoredResult:
    """What the API shows of the result with ``result_id``; NotFound if absent."""
    try:
        key = uuid.UUID(result_id)
    except ValueError:
        raise NotFound("result", result_id) from None
    row = database_proxy.execute(ResultRow.select(*_SHOWN_FIELDS).where(ResultRow.id == key)).fetchone()
    if row is None:
        raise NotFound("result", result_id)
    return StoredResult._make(row)


def get_results(ids: Sequence[str]) -> list[ResultRow]:
    """The results with these ids that exist, in no particular order."""
    keys = []
    for raw in ids:
        try:
            keys.append(uuid.UUID(raw))
        except ValueError:
            continue
    if not keys:
        return []
    return list(ResultRow.select().where(ResultRow.id.in_(keys)))


@dataclass(frozen=True)
class ResultFilter:
    """ListResults' filters; None or 0 means "any"."""

    dataset_id: str | None = None
    kind: int = 0
    status: int = 0
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None
    has_anomalies: bool | None = None


class StoredResult(NamedTuple):
    """What the API shows of a stored result, as the driver returns its
    columns (ids as text or UUID, ``parameters`` decoded JSON, ``output``
    bytes-like): reads for GetResult and ListResults skip building models,
    which cost more than the queries."""

    id: Any
    dataset_id: Any
    dataset_name: str
    kind: int
    parameters: dict[str, Any]
    status: int
    error: str
    schedule_id: Any
    scheduled_time: dt.datetime | None
    requested_by: str
    create_time: dt.datetime
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    anomaly_count: int
    output: Any
    insight_status: int
    insight_text: str
    insight_provider: str
    insight_model: str
    insight_error: str
    insight_attempts: int
    insight_update_time: dt.datetime | None


_SHOWN_FIELDS = tuple(ResultRow._meta.columns[name] for name in StoredResult._fields)


def list_results(
    where: ResultFilter, order_by: str, limit: int, after: tuple[dt.datetime, uuid.UUID] | None
) -> list[StoredResult]:
    """One page of results, keyset-paginated on (sort time, id)."""
    field, direction = order_by.split()
    key = ResultRow.create_time if field == "create_time" else START_SORT_KEY
    query: Any = ResultRow.select(*_SHOWN_FIELDS)
    conditions = []
    if where.dataset_id:
        conditions.append(ResultRow.dataset == uuid.UUID(where.dataset_id))
    if where.kind:
        conditions.append(ResultRow.kind == where.kind)
    if where.status:
        conditions.append(ResultRow.status == where.status)
    if where.created_after is not None:
        conditions.append(ResultRow.create_time >= where.created_after)
    if where.created_before is not None:
        conditions.append(ResultRow.create_time < where.created_before)
    if where.has_anomalies is not None:
        conditions.append(ResultRow.anomaly_count > 0 if where.has_anomalies else ResultRow.anomaly_count == 0)
    if after is not None:
        cursor = peewee.Tuple(key, ResultRow.id)
        bound = peewee.Tuple(*after)
        conditions.append(cursor < bound if direction == "desc" else cursor > bound)
    for condition in conditions:
        query = query.where(condition)
    if direction == "desc":
        query = query.order_by(key.desc(), ResultRow.id.desc())
    else:
        query = query.order_by(key.asc(), ResultRow.id.asc())
    cursor = database_proxy.execute(query.limit(limit))
    return [StoredResult._make(row) for row in cursor.fetchall()]


def sort_time(row: ResultRow | StoredResult, order_by: str) -> dt.datetime:
    """The value of the sort key of ``row`` under ``order_by`` (for page tokens)."""
    if order_by.startswith("create_time"):
        return row.create_time  # type: ignore[no-any-return]
    return row.start_time or dt.datetime.max.replace(tzinfo=dt.UTC)


def claim_result(result_id: str, lease: dt.timedelta) -> ResultRow | None:
    """Mark a result running for the calling worker: only a pending result, or
    a running one whose worker stopped heartbeating for ``lease``. None when
    another worker has it or it is finished (or gone)."""
    now = utc_now()
    try:
        key = uuid.UUID(result_id)
    except ValueError:
        return None
    with database_proxy.atomic():
        updated = (
            ResultRow.update(
                status=RUNNING,
                start_time=now,
                heartbeat_time=now,
                attempts=ResultRow.attempts + 1,
            )
            .where(
                (ResultRow.id == key)
                & (
                    (ResultRow.status == PENDING)
                    | ((ResultRow.status == RUNNING) & (ResultRow.heartbeat_time < now - lease))
                )
            )
            .execute()
        )
        if not updated:
            return None
        notify_result_changed(key)
    return ResultRow.get_by_id(key)


def heartbeat(result_id: uuid.UUID) -> None:
    """Tell the sweeper the worker of a running result is alive."""
    ResultRow.update(heartbeat_time=utc_now()).where(
        (ResultRow.id == result_id) & (ResultRow.status == RUNNING)
    ).execute()


def finish_result(
    result_id: uuid.UUID,
    values: dict[str, Any],
    events: Sequence[OutgoingMessage],
    events_delay: dt.timedelta | None,
) -> bool:
    """Store a running result's outcome and its events in one transaction.

    False (nothing written) when the result is no longer running for us —
    e.g. the sweeper handed it to another worker after our lease expired.
    """
    with database_proxy.atomic():
        updated = (
            ResultRow.update(**values, end_time=utc_now(), heartbeat_time=None)
            .where((ResultRow.id == result_id) & (ResultRow.status == RUNNING))
            .execute()
        )
        if not updated:
            return False
        add_to_outbox(events, result_id=result_id, delay=events_delay)
        notify_result_changed(result_id)
    return True


def stale_unfinished(lease: dt.timedelta, requeue_after: dt.timedelta, limit: int) -> list[ResultRow]:
    """Results whose job looks lost: running without a heartbeat for ``lease``,
    or pending and not (re-)enqueued for ``requeue_after``. Locked for the caller."""
    now = utc_now()
    query = (
        ResultRow.select()
        .where(
            ((ResultRow.status == RUNNING) & (ResultRow.heartbeat_time < now - lease))
            | ((ResultRow.status == PENDING) & (ResultRow.enqueue_time < now - requeue_after))
        )
        .limit(limit)
        .for_update(skip_locked=True)
    )
    return list(query)


def set_result(result_id: uuid.UUID, **values: Any) -> None:
    """Update fields of a result and tell watchers (inside the caller's transaction)."""
    ResultRow.update(**values).where(ResultRow.id == result_id).execute()
    notify_result_changed(result_id)


def due_insights(now: dt.datetime, lease: dt.timedelta, limit: int) -> list[ResultRow]:
    """Results whose insight is due to be (re)written, claimed for ``lease``."""
    with database_proxy.atomic():
        rows = list(
            ResultRow.select()
            .where((ResultRow.insight_status == INSIGHT_PENDING) & (ResultRow.insight_next_attempt <= now))
            .order_by(ResultRow.insight_next_attempt)
            .limit(limit)
            .for_update(skip_locked=True)
        )
        if rows:
            ResultRow.update(insight_next_attempt=now + lease).where(ResultRow.id.in_([r.id for r in rows])).execute()
    return rows


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
