"""Analysis results: the model, the reads and listings the API serves, and
the notifications that tell watchers and caches a result changed.

Every change to a result sends ``pg_notify`` on RESULT_CHANNEL in the
transaction that makes it (see ``notify_result_changed``), whichever process
makes it. All functions here block; callers run them through a
BlockingRunner or a thread.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import peewee
from playhouse.postgres_ext import BinaryJSONField, DateTimeTZField

from analytics_svc.datasets.store import DatasetRow
from analytics_svc.schedules.store import ScheduleRow
from analytics_svc.schema import BaseModel, database_proxy
from mesh.analytics.v1 import analysis_pb2 as apb
from mesh_runtime.database import utc_now
from mesh_runtime.errors import NotFound

# Result statuses and insight states as stored: the values of the proto enums.
PENDING, RUNNING = apb.RESULT_STATUS_PENDING, apb.RESULT_STATUS_RUNNING
SUCCEEDED, FAILED = apb.RESULT_STATUS_SUCCEEDED, apb.RESULT_STATUS_FAILED


INSIGHT_NONE, INSIGHT_PENDING = apb.INSIGHT_STATUS_UNSPECIFIED, apb.INSIGHT_STATUS_PENDING
INSIGHT_READY, INSIGHT_UNAVAILABLE = apb.INSIGHT_STATUS_READY, apb.INSIGHT_STATUS_UNAVAILABLE


# Channel of the pg_notify sent whenever a result is created or changes;
# the payload is "<result id> <dataset id>" (see ``changed_result``).
RESULT_CHANNEL = "analysis_result"


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
    # The OpenTelemetry trace that requested and ran it (32 hex digits; empty without tracing).
    trace_id = peewee.TextField(default="")

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
    trace_id: str


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


def set_result(result_id: uuid.UUID, **values: Any) -> None:
    """Update fields of a result and tell watchers (inside the caller's transaction)."""
    ResultRow.update(**values).where(ResultRow.id == result_id).execute()
    notify_result_changed(result_id)
