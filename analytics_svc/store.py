"""Peewee models, migrations and queries of the analytics service.

All functions here block; the servicer runs them through a BlockingRunner.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import peewee
from playhouse.postgres_ext import BinaryJSONField, DateTimeTZField

from mesh_runtime.database import save_changes, sql_migration, utc_now
from mesh_runtime.errors import AlreadyExists, NotFound

database_proxy = peewee.DatabaseProxy()
# pg_notify channel saying "the results of this dataset changed without their own notification".
RESULTS_OF_DATASET_CHANNEL = "analysis_results_of_dataset"


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


_DATASETS_V1 = """
CREATE TABLE "dataset" (
    "id" UUID NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "description" TEXT NOT NULL,
    "unit" TEXT NOT NULL,
    "labels" JSONB NOT NULL,
    "point_count" BIGINT NOT NULL,
    "first_point_time" TIMESTAMPTZ,
    "last_point_time" TIMESTAMPTZ,
    "create_time" TIMESTAMPTZ NOT NULL,
    "update_time" TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX "datasetrow_name" ON "dataset" ("name");
CREATE INDEX "datasetrow_labels" ON "dataset" USING GIN ("labels");
"""


# One row per (dataset, timestamp): a repeated timestamp replaces the value.
_POINTS_V3 = """
CREATE TABLE point (
    dataset_id uuid NOT NULL REFERENCES dataset (id) ON DELETE CASCADE,
    ts timestamptz NOT NULL,
    value double precision NOT NULL,
    PRIMARY KEY (dataset_id, ts)
);
"""


# Version 2 is the auth tables (auth_store.MIGRATIONS).
MIGRATIONS = [
    sql_migration(1, "create dataset table", _DATASETS_V1),
    sql_migration(3, "create point table", _POINTS_V3),
]


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


UPDATABLE_FIELDS = ("name", "description", "unit", "labels")


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


def _last_occurrences(timestamps_us: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The batch with one point per timestamp, the later occurrence winning, sorted by time."""
    reversed_ts = timestamps_us[::-1]
    unique_ts, first_in_reversed = np.unique(reversed_ts, return_index=True)
    keep = len(timestamps_us) - 1 - first_in_reversed
    return unique_ts, values[keep]


def _copy_text(timestamps_us: np.ndarray, values: np.ndarray) -> io.StringIO:
    """COPY text rows "ISO timestamp<TAB>value" (repr keeps every double exact)."""
    stamps = np.datetime_as_string(timestamps_us.astype("datetime64[us]"), unit="us")
    lines = [f"{stamp}Z\t{value!r}\n" for stamp, value in zip(stamps, values.tolist(), strict=True)]
    return io.StringIO("".join(lines))


def append_points(
    dataset_id: str, timestamps_us: Sequence[int] | np.ndarray, values: Sequence[float] | np.ndarray
) -> DatasetRow:
    """Store points into a dataset: one transaction, bulk-loaded with COPY.

    The caller has screened the points (finite values, timestamps in range).
    A timestamp already stored gets the new value; within the batch the later
    occurrence wins. The dataset's point_count and first/last point times are
    updated in the same transaction. NotFound if the dataset does not exist.
    """
    ts = np.asarray(timestamps_us, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    try:
        key = uuid.UUID(dataset_id)
    except ValueError:
        raise NotFound("dataset", dataset_id) from None
    with database_proxy.atomic():
        # Locking the dataset row serialises writers of one dataset, so the
        # count of new timestamps below stays exact.
        locked = DatasetRow.select().where(DatasetRow.id == key).for_update().first()
        if locked is None:
            raise NotFound("dataset", dataset_id)
        if len(ts) == 0:
            return locked
        ts, vals = _last_occurrences(ts, vals)
        cursor = database_proxy.connection().cursor()
        cursor.execute(
            "CREATE TEMP TABLE point_staging (ts timestamptz NOT NULL, value double precision NOT NULL)"
            " ON COMMIT DROP"
        )
        cursor.copy_expert("COPY point_staging (ts, value) FROM STDIN", _copy_text(ts, vals))
        cursor.execute(
            "SELECT count(*) FROM point_staging s JOIN point p ON p.dataset_id = %s AND p.ts = s.ts",
            (str(key),),
        )
        (replaced,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO point (dataset_id, ts, value) SELECT %s, ts, value FROM point_staging"
            " ON CONFLICT (dataset_id, ts) DO UPDATE SET value = EXCLUDED.value",
            (str(key),),
        )
        cursor.execute(
            "UPDATE dataset SET point_count = point_count + %s,"
            " first_point_time = LEAST(first_point_time, (SELECT min(ts) FROM point_staging)),"
            " last_point_time = GREATEST(last_point_time, (SELECT max(ts) FROM point_staging))"
            " WHERE id = %s",
            (len(ts) - replaced, str(key)),
        )
        cursor.execute("DROP TABLE point_staging")
        return DatasetRow.get_by_id(key)



# PostgreSQL's binary COPY: a 19-byte header, then per row a field count and
# (length, value) pairs in network byte order, then a -1 trailer. timestamptz
# is microseconds since 2000-01-01 UTC, float8 an IEEE double.
_COPY_HEADER_BYTES = 19
_POSTGRES_EPOCH_US = 946_684_800_000_000
_POINT_ROW = np.dtype(
    [("fields", ">i2"), ("ts_len", ">i4"), ("ts", ">i8"), ("value_len", ">i4"), ("value", ">f8")]
)


def load_points(
    dataset_id: str, start_us: int | None = None, end_us: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A dataset's points in ``[start_us, end_us)`` as numpy arrays (epoch µs
    int64, float64), in time order, read with one binary COPY.

    Analyses load millions of points; binary COPY parsed by a numpy dtype
    avoids building a Python object per row. NotFound for an unknown dataset.
    """
    try:
        key = uuid.UUID(dataset_id)
    except ValueError:
        raise NotFound("dataset", dataset_id) from None
    if DatasetRow.select().where(DatasetRow.id == key).count() == 0:
        raise NotFound("dataset", dataset_id)
    conditions = ["dataset_id = %s"]
    params: list[Any] = [str(key)]
    for bound, op in ((start_us, ">="), (end_us, "<")):
        if bound is not None:
            conditions.append(f"ts {op} to_timestamp(%s::double precision / 1e6)")
            params.append(int(bound))
    cursor = database_proxy.connection().cursor()
    query = cursor.mogrify(
        # Only fixed condition strings are joined; values go through mogrify.
        f"COPY (SELECT ts, value FROM point WHERE {' AND '.join(conditions)} ORDER BY ts) TO STDOUT WITH BINARY",  # noqa: S608, E501
        params,
    ).decode()
    buffer = io.BytesIO()
    cursor.copy_expert(query, buffer)
    body = buffer.getbuffer()[_COPY_HEADER_BYTES:-2]
    rows = np.frombuffer(body, dtype=_POINT_ROW)
    return rows["ts"].astype(np.int64) + _POSTGRES_EPOCH_US, rows["value"].astype(np.float64)
