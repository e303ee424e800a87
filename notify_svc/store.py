"""Peewee models, migrations and queries of the notify service.

All functions here block; the servicer runs them through a BlockingRunner.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import peewee
from playhouse.postgres_ext import DateTimeTZField

from mesh_runtime.database import Migration, utc_now
from mesh_runtime.errors import AlreadyExists

database_proxy = peewee.DatabaseProxy()


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

    class Meta:
        table_name = "subscription"


# One subscription per address, whatever its letter case.
SubscriptionRow.add_index(
    SubscriptionRow.index(
        peewee.fn.lower(SubscriptionRow.email), unique=True, name="subscription_email_lower"
    )
)


def _create_subscriptions(db: peewee.Database) -> None:
    db.create_tables([SubscriptionRow])


MIGRATIONS = [Migration(1, "create subscription table", _create_subscriptions)]


def bind(db: peewee.Database) -> None:
    """Point this module's models at ``db``."""
    database_proxy.initialize(db)


def create_subscription(email: str, display_name: str) -> SubscriptionRow:
    """Insert a subscription; AlreadyExists when the address has one."""
    try:
        with database_proxy.atomic():
            return SubscriptionRow.create(email=email, display_name=display_name)
    except peewee.IntegrityError:
        raise AlreadyExists("subscription", email) from None


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
