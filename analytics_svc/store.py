"""Peewee models, migrations and queries of the analytics service.

All functions here block; the servicer runs them through a BlockingRunner.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import peewee
from playhouse.postgres_ext import BinaryJSONField, DateTimeTZField

from mesh_runtime.database import Migration, utc_now
from mesh_runtime.errors import AlreadyExists, NotFound

database_proxy = peewee.DatabaseProxy()


class BaseModel(peewee.Model):
    """Models of this service live in its own database."""

    class Meta:
        database = database_proxy


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

    class Meta:
        table_name = "dataset"


def _create_datasets(db: peewee.Database) -> None:
    db.create_tables([DatasetRow])


MIGRATIONS = [Migration(1, "create dataset table", _create_datasets)]


@dataclass
class NewDataset:
    """What a caller supplies to create a dataset."""

    name: str
    description: str = ""
    unit: str = ""
    labels: dict[str, str] = field(default_factory=dict)


def bind(db: peewee.Database) -> None:
    """Point this module's models at ``db``."""
    database_proxy.initialize(db)


def create_dataset(new: NewDataset) -> DatasetRow:
    """Insert a dataset; AlreadyExists when its name is taken."""
    try:
        with database_proxy.atomic():
            return DatasetRow.create(
                name=new.name, description=new.description, unit=new.unit, labels=new.labels
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
