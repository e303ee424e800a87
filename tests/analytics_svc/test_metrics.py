"""Analytics' own metrics against the session stack's PostgreSQL: the outbox
gauges the schedulers keep (backlog due and held, age of the oldest due row)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import peewee
import pytest
from prometheus_client import REGISTRY

from analytics_svc import metrics, schema
from analytics_svc.jobs import outbox
from mesh_runtime.database import connect, utc_now
from tests.conftest import RunningStack


@pytest.fixture
def db(mesh: RunningStack) -> Iterator[peewee.Database]:
    database = connect(mesh.database_url("analytics"), max_connections=2)
    schema.bind(database)
    with database.connection_context():
        yield database


def _row(available: dt.datetime) -> dict[str, object]:
    return {
        "message_id": f"metrics-test-{uuid.uuid4()}",
        "subject": "mesh.test.metrics",
        "payload": b"",
        "available_time": available,
    }


def test_outbox_gauges_count_due_and_held_rows_and_age_the_oldest(db: peewee.Database) -> None:
    now = utc_now()
    # In a transaction rolled back at the end: the stack's relays never see these rows.
    with db.atomic() as transaction:
        due_before, held_before, _ = outbox.outbox_backlog(now)
        outbox.OutboxRow.insert_many(
            [_row(now - dt.timedelta(hours=1)), _row(now - dt.timedelta(minutes=1)), _row(now + dt.timedelta(hours=1))]
        ).execute()
        due, held, age = outbox.outbox_backlog(now)
        assert (due - due_before, held - held_before) == (2, 1)
        assert age >= 3600
        metrics.refresh_outbox_gauges()
        assert REGISTRY.get_sample_value("mesh_outbox_backlog_rows", {"state": "due"}) >= 2
        assert REGISTRY.get_sample_value("mesh_outbox_backlog_rows", {"state": "held"}) >= 1
        assert REGISTRY.get_sample_value("mesh_outbox_oldest_due_age_seconds") >= 3600
        transaction.rollback()
