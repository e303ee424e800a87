"""Users, refresh tokens, API keys, token revocations and sign-in attempts: models and queries.

Secrets are never stored: passwords as argon2 hashes, refresh tokens and API
key secrets (random, 256-bit) as SHA-256 digests. All functions block.
"""

from __future__ import annotations

import datetime as dt
import uuid

import peewee
from playhouse.postgres_ext import DateTimeTZField

from analytics_svc.schema import BaseModel, database_proxy
from mesh_runtime.auth import Revocation
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
    # Access tokens carry the generation they were minted in; disabling,
    # a role change or a new password moves it on, revoking the older ones.
    token_generation = peewee.BigIntegerField(default=0)

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
    # The session: every token a sign-in's refreshes rotated through (the chain).
    session_id = peewee.UUIDField(index=True)
    # When a refresh replaced it (None: never used, or ended otherwise).
    rotate_time = DateTimeTZField(null=True)

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


class TokenRevocationRow(BaseModel):
    """Access tokens revoked before they expire (see mesh_runtime.auth.Revocation)."""

    key = peewee.TextField(primary_key=True)
    min_generation = peewee.BigIntegerField()
    expire_time = DateTimeTZField(index=True)

    class Meta:
        table_name = "token_revocation"


class LoginAttemptRow(BaseModel):
    """One sign-in attempt: the throttle's memory, shared by every replica."""

    id = peewee.BigAutoField()
    username = peewee.TextField()
    address = peewee.TextField()
    succeeded = peewee.BooleanField()
    attempt_time = DateTimeTZField(default=utc_now)

    class Meta:
        table_name = "login_attempt"
        indexes = (
            (("username", "attempt_time"), False),
            (("address", "attempt_time"), False),
        )


REVOCATION_CHANNEL = "auth_revocations"


def revoke(key: str, min_generation: int, expire_time: dt.datetime) -> Revocation:
    """Revoke the access tokens of ``key`` below ``min_generation`` (in the
    caller's transaction), and tell every replica when it commits; returns
    the revocation as stored (merged with an earlier one of the same key)."""
    row = (
        TokenRevocationRow.insert(key=key, min_generation=min_generation, expire_time=expire_time)
        .on_conflict(
            conflict_target=[TokenRevocationRow.key],
            update={
                TokenRevocationRow.min_generation: peewee.fn.GREATEST(
                    TokenRevocationRow.min_generation, peewee.EXCLUDED.min_generation
                ),
                TokenRevocationRow.expire_time: peewee.fn.GREATEST(
                    TokenRevocationRow.expire_time, peewee.EXCLUDED.expire_time
                ),
            },
        )
        .returning(TokenRevocationRow.min_generation, TokenRevocationRow.expire_time)
        .execute()
    )
    stored = next(iter(row))
    revocation = Revocation(key, stored.min_generation, stored.expire_time.timestamp())
    database_proxy.execute_sql("SELECT pg_notify(%s, %s)", (REVOCATION_CHANNEL, revocation.payload()))
    return revocation


def active_revocations(now: dt.datetime) -> list[Revocation]:
    """Every revocation still covering a valid token; forgets the others."""
    TokenRevocationRow.delete().where(TokenRevocationRow.expire_time <= now).execute()
    return [
        Revocation(row.key, row.min_generation, row.expire_time.timestamp())
        for row in TokenRevocationRow.select().where(TokenRevocationRow.expire_time > now)
    ]


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


def end_session(session_id: uuid.UUID) -> None:
    """Revoke every refresh token of one session (its whole rotation chain)."""
    RefreshTokenRow.update(revoked=True).where(RefreshTokenRow.session_id == session_id).execute()

