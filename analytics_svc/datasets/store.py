"""Datasets: their model and metadata queries (create, get, list, update, delete).

A dataset's points live in ``analytics_svc.points``; its row keeps their
running summary (count, first and last time). All functions here block; the
servicer runs them through a BlockingRunner.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import peewee
from playhouse.postgres_ext import ArrayField, BinaryJSONField, DateTimeTZField

from analytics_svc.schema import BaseModel, database_proxy
from mesh_runtime.database import save_changes, utc_now
from mesh_runtime.errors import AlreadyExists, NotFound

# pg_notify channel saying "the results of this dataset changed without their own notification".
RESULTS_OF_DATASET_CHANNEL = "analysis_results_of_dataset"


class DatasetRow(BaseModel):
    """A dataset's metadata and the running summary of its points."""

    id = peewee.UUIDField(primary_key=True, default=uuid.uuid4)
    name = peewee.TextField(unique=True)
    description = peewee.TextField(default="")
    unit = peewee.TextField(default="")
    labels = BinaryJSONField(default=dict)
    point_count = peewee.BigIntegerField(default=0)
    first_point_time = DateTimeTZField(null=True)
    last_point_time = DateTimeTZField(null=True)
    create_time = DateTimeTZField(default=utc_now)
    update_time = DateTimeTZField(default=utc_now)
    # Width of the dataset's new point chunks (analytics_svc.points.chunks), chosen from its density.
    chunk_width_us = peewee.BigIntegerField(null=True)
    # How long points are kept, in microseconds (migration 9); None: until deleted.
    retention_us = peewee.BigIntegerField(null=True)
    # Seasonal cycles in seconds the seasonal anomaly method removes when a request names none (migration 17).
    seasonal_periods_s = ArrayField(peewee.BigIntegerField, default=list, index=False)

    class Meta:
        table_name = "dataset"


@dataclass
class NewDataset:
    """What a caller supplies to create a dataset."""

    name: str
    description: str = ""
    unit: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    retention_us: int | None = None
    seasonal_periods_s: list[int] = field(default_factory=list)


def create_dataset(new: NewDataset) -> DatasetRow:
    """Insert a dataset; AlreadyExists when its name is taken."""
    try:
        with database_proxy.atomic():
            return DatasetRow.create(
                name=new.name,
                description=new.description,
                unit=new.unit,
                labels=new.labels,
                retention_us=new.retention_us,
                seasonal_periods_s=new.seasonal_periods_s,
            )
    except peewee.IntegrityError:
        raise AlreadyExists("dataset", new.name) from None


def get_dataset(dataset_id: str) -> DatasetRow:
    """The dataset with ``dataset_id``; NotFound if there is none."""
    try:
        return DatasetRow.get_by_id(uuid.UUID(dataset_id))
    except (peewee.DoesNotExist, ValueError):
        raise NotFound("dataset", dataset_id) from None


def list_datasets(limit: int, after_name: str | None) -> tuple[list[DatasetRow], int]:
    """Up to ``limit`` datasets ordered by name after ``after_name``, and the total."""
    query: Any = DatasetRow.select().order_by(DatasetRow.name)
    if after_name is not None:
        query = query.where(DatasetRow.name > after_name)
    rows = list(query.limit(limit))
    return rows, DatasetRow.select().count()


UPDATABLE_FIELDS = ("name", "description", "unit", "labels", "retention_us", "seasonal_periods_s")


def update_dataset(dataset_id: str, changes: dict[str, Any]) -> DatasetRow:
    """Set the given metadata fields (a subset of UPDATABLE_FIELDS) of a dataset.

    NotFound if there is no such dataset, AlreadyExists if the new name is taken.
    """
    unknown = set(changes) - set(UPDATABLE_FIELDS)
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    try:
        with database_proxy.atomic():
            row = get_dataset(dataset_id)
            save_changes(row, changes)
            return row
    except peewee.IntegrityError:
        raise AlreadyExists("dataset", str(changes.get("name"))) from None


def delete_dataset(dataset_id: str) -> None:
    """Delete a dataset and (by ON DELETE CASCADE) its points; NotFound if absent."""
    try:
        key = uuid.UUID(dataset_id)
    except ValueError:
        raise NotFound("dataset", dataset_id) from None
    with database_proxy.atomic():
        if DatasetRow.delete().where(DatasetRow.id == key).execute() == 0:
            raise NotFound("dataset", dataset_id)
        # Its results went with it: caches of finished results drop them.
        database_proxy.execute_sql("SELECT pg_notify(%s, %s)", (RESULTS_OF_DATASET_CHANNEL, str(key)))


def retained_datasets() -> list[tuple[str, int]]:
    """(id, retention in µs) of every dataset that has a retention."""
    query = DatasetRow.select(DatasetRow.id, DatasetRow.retention_us).where(DatasetRow.retention_us.is_null(False))
    return [(str(row.id), row.retention_us) for row in query.order_by(DatasetRow.id) if row.retention_us is not None]
