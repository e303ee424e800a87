"""Schedules: recurring analyses of one dataset, their model and queries.

All functions here block; callers run them through a BlockingRunner or a thread.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import peewee
from playhouse.postgres_ext import BinaryJSONField, DateTimeTZField

from analytics_svc.datasets.store import RESULTS_OF_DATASET_CHANNEL, DatasetRow, get_dataset
from analytics_svc.schema import BaseModel, database_proxy, notify
from mesh_runtime.database import save_changes, utc_now
from mesh_runtime.errors import NotFound


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
