"""Users, refresh tokens and API keys: models, migration and queries.

Secrets are never stored: passwords as argon2 hashes, refresh tokens and API
key secrets (random, 256-bit) as SHA-256 digests. All functions block.
"""

from __future__ import annotations

import datetime as dt
import uuid

import peewee
from playhouse.postgres_ext import DateTimeTZField

from analytics_svc.schema import BaseModel
from mesh_runtime.database import utc_now


class UserRow(BaseModel):
    """A person who signs in."""

    id = peewee.UUIDField(primary_key=True, default=uuid.uuid4)
    username = peewee.TextField(unique=True)
    password_hash = peewee.TextField()
    role = peewee.SmallIntegerField()
    disabled = peewee.BooleanField(default=False)
    # Refresh tokens issued before this moment no longer work (password change, disabling).
    sessions_valid_after = DateTimeTZField(default=utc_now)
    create_time = DateTimeTZField(default=utc_now)

    class Meta:
        table_name = "app_user"


class RefreshTokenRow(BaseModel):
    """One session's refresh token (its digest)."""

    id = peewee.UUIDField(primary_key=True, default=uuid.uuid4)
    user = peewee.ForeignKeyField(UserRow, on_delete="CASCADE", backref="refresh_tokens")
    token_digest = peewee.TextField(unique=True)
    expire_time = DateTimeTZField()
    revoked = peewee.BooleanField(default=False)
    create_time = DateTimeTZField(default=utc_now)

    class Meta:
        table_name = "refresh_token"


class ApiKeyRow(BaseModel):
    """A service account's key (its digest)."""

    id = peewee.UUIDField(primary_key=True, default=uuid.uuid4)
    name = peewee.TextField()
    role = peewee.SmallIntegerField()
    prefix = peewee.TextField(unique=True)
    secret_digest = peewee.TextField()
    revoked = peewee.BooleanField(default=False)
    create_time = DateTimeTZField(default=utc_now, index=True)

    class Meta:
        table_name = "api_key"


def user_by_name(username: str) -> UserRow | None:
    """The user with ``username``, if any."""
    return UserRow.get_or_none(UserRow.username == username)


def user_by_id(user_id: str) -> UserRow | None:
    """The user with ``user_id``, if any."""
    try:
        return UserRow.get_or_none(UserRow.id == uuid.UUID(user_id))
    except ValueError:
        return None


def count_admins() -> int:
    """How many enabled admins exist."""
    from mesh.auth.v1 import access_pb2

    return UserRow.select().where(UserRow.role == access_pb2.ROLE_ADMIN, ~UserRow.disabled).count()


def refresh_token(digest: str) -> RefreshTokenRow | None:
    """The refresh token with this digest, with its user."""
    return (
        RefreshTokenRow.select(RefreshTokenRow, UserRow)
        .join(UserRow)
        .where(RefreshTokenRow.token_digest == digest)
        .first()
    )


def expire_sessions(user: UserRow, now: dt.datetime) -> None:
    """End every session of ``user``."""
    user.sessions_valid_after = now
    user.save()
    RefreshTokenRow.update(revoked=True).where(RefreshTokenRow.user == user).execute()

