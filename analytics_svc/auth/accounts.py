"""Accounts: signing in, sessions, users and API keys (blocking; run off the loop).

Passwords are hashed with argon2; a login for an unknown user still verifies
a dummy hash so timing does not reveal which usernames exist. Failures are
throttled by account and by address (throttle.py). Refresh tokens rotate on
every use; a rotated token used again after a short grace ends its whole
session. Disabling, a role change, a new password, logging out and revoking
an API key revoke the access tokens already issued (mesh_runtime.auth.Revocations).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

import peewee
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from analytics_svc.auth import store as auth_store
from analytics_svc.auth.store import ApiKeyRow, RefreshTokenRow, UserRow
from analytics_svc.auth.throttle import LoginThrottle
from analytics_svc.jobs import outbox
from analytics_svc.schema import database_proxy
from mesh_runtime import revocation_follower
from mesh_runtime.auth import EVERY_TOKEN, Principal
from mesh_runtime.auth_keys import MintedToken, TokenSigner
from mesh_runtime.errors import AlreadyExists, NotFound, Unauthenticated
from mesh_runtime.streams import REVOCATION_SUBJECT

API_KEY_PREFIX = "mk"
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """What a successful sign-in returns."""

    access: MintedToken
    refresh_token: str
    principal: Principal


def _principal(user: UserRow, session_id: uuid.UUID | None = None) -> Principal:
    return Principal(
        id=str(user.id),
        name=user.username,
        role=user.role,
        generation=user.token_generation,
        session_id=str(session_id) if session_id else "",
    )


class Accounts:
    """The account operations behind AuthService."""

    def __init__(
        self,
        signer: TokenSigner,
        access_ttl: dt.timedelta,
        refresh_ttl: dt.timedelta,
        throttle: LoginThrottle | None = None,
        refresh_grace: dt.timedelta = dt.timedelta(seconds=10),
        max_token_ttl: dt.timedelta = dt.timedelta(days=1),
    ) -> None:
        self.signer = signer
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.throttle = throttle or LoginThrottle()
        self.refresh_grace = refresh_grace
        # The longest any access token lives (./mesh token included): how long
        # a revocation must be remembered.
        self.max_token_ttl = max(max_token_ttl, access_ttl)

    def _new_session(self, user: UserRow, session_id: uuid.UUID | None = None) -> Session:
        secret = secrets.token_urlsafe(32)
        now = dt.datetime.now(dt.UTC)
        session_id = session_id or uuid.uuid4()
        RefreshTokenRow.create(
            user=user, token_digest=_digest(secret), expire_time=now + self.refresh_ttl, session_id=session_id
        )
        principal = _principal(user, session_id)
        return Session(self.signer.mint(principal, self.access_ttl), secret, principal)

    def _revoke(self, key: str, min_generation: int) -> None:
        """Revoke in the caller's transaction: analytics replicas hear of it by
        pg_notify, the other services through the outbox and NATS."""
        now = dt.datetime.now(dt.UTC)
        revocation = auth_store.revoke(key, min_generation, now + self.max_token_ttl + dt.timedelta(minutes=1))
        payload = revocation_follower.to_message(revocation).SerializeToString()
        outbox.add_to_outbox([outbox.OutgoingMessage(REVOCATION_SUBJECT, uuid.uuid4().hex, payload)])

    def login(self, username: str, password: str, address: str = "") -> Session:
        """Sign in; Unauthenticated for a wrong username or password,
        ResourceExhausted while the account or address must wait."""
        key = username.strip().lower()
        now = dt.datetime.now(dt.UTC)
        self.throttle.check(key, address, now)
        user = auth_store.user_by_name(key)
        try:
            _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
            ok = user is not None and not user.disabled
        except (VerificationError, InvalidHashError):
            ok = False
        self.throttle.record(key, address, ok, now)
        if not ok or user is None:
            raise Unauthenticated("wrong username or password")
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
            user.save()
        return self._new_session(user)

    def refresh(self, refresh_token: str) -> Session:
        """Trade a refresh token for a new one in the same session; the old one stops working.

        A token rotated moments ago (within ``refresh_grace``: two tabs
        refreshing at once) is honoured once more with a token of its own in
        the same session. Used again later, someone else may hold the session:
        all of it ends, its access tokens included (OAuth 2.0 security BCP).
        """
        reused = False
        with database_proxy.atomic():
            row = auth_store.refresh_token(_digest(refresh_token))
            now = dt.datetime.now(dt.UTC)
            if (
                row is None
                or row.expire_time <= now
                or row.user.disabled
                or row.create_time < row.user.sessions_valid_after
            ):
                raise Unauthenticated("the session has ended; sign in again")
            rotated = (
                RefreshTokenRow.update(revoked=True, rotate_time=now)
                .where(RefreshTokenRow.id == row.id, ~RefreshTokenRow.revoked)
                .execute()
            )
            if rotated != 1:
                rotate_time = RefreshTokenRow.get_by_id(row.id).rotate_time
                if rotate_time is None:  # ended by a sign-out, not by a refresh
                    raise Unauthenticated("the session has ended; sign in again")
                if now - rotate_time > self.refresh_grace:
                    auth_store.end_session(row.session_id)
                    self._revoke(str(row.session_id), EVERY_TOKEN)
                    reused = True
            if not reused:
                return self._new_session(row.user, row.session_id)
        raise Unauthenticated("this refresh token was already used, so its session has ended; sign in again")

    def logout(self, refresh_token: str, principal: Principal) -> None:
        """End the session of a refresh token of the caller: its refresh tokens
        and its access tokens (a token that is not the caller's changes nothing)."""
        with database_proxy.atomic():
            row = auth_store.refresh_token(_digest(refresh_token))
            if row is not None and str(row.user.id) == principal.id:
                auth_store.end_session(row.session_id)
                self._revoke(str(row.session_id), EVERY_TOKEN)

    def exchange_api_key(self, api_key: str) -> Session:
        """An access token for a valid API key."""
        parts = api_key.split("_", 2)
        prefix = "_".join(parts[:2]) if len(parts) == 3 else ""
        row = ApiKeyRow.get_or_none(ApiKeyRow.prefix == prefix) if prefix else None
        expected = row.secret_digest if row else _digest("no such key")
        if row is None or row.revoked or not hmac.compare_digest(expected, _digest(api_key)):
            raise Unauthenticated("invalid or revoked API key")
        principal = Principal(id=str(row.id), name=row.name, role=row.role, service_account=True)
        return Session(self.signer.mint(principal, self.access_ttl), "", principal)

    def create_user(self, username: str, password: str, role: int) -> UserRow:
        """Add a user; AlreadyExists when the username is taken."""
        try:
            with database_proxy.atomic():
                return UserRow.create(username=username.lower(), password_hash=_hasher.hash(password), role=role)
        except peewee.IntegrityError:
            raise AlreadyExists("user", username) from None

    def list_users(self, limit: int, after: str | None) -> list[UserRow]:
        """Users by username, after ``after``."""
        query = UserRow.select().order_by(UserRow.username)
        if after is not None:
            query = query.where(UserRow.username > after)
        return list(query.limit(limit))

    def update_user(
        self, user_id: str, role: int | None, disabled: bool | None, password: str | None
    ) -> UserRow:
        """Change a user; ends their sessions when disabled or given a new password."""
        user = auth_store.user_by_id(user_id)
        if user is None:
            raise NotFound("user", user_id)
        with database_proxy.atomic():
            # The tokens issued so far carry the old role or belong to a
            # session that must end: a new generation revokes them.
            revoke = bool(disabled) or password is not None or (role is not None and role != user.role)
            if role is not None:
                user.role = role
            if disabled is not None:
                user.disabled = disabled
            if password is not None:
                user.password_hash = _hasher.hash(password)
            if revoke:
                user.token_generation += 1
            user.save()
            if disabled or password is not None:
                auth_store.expire_sessions(user, dt.datetime.now(dt.UTC))
            if revoke:
                self._revoke(str(user.id), user.token_generation)
        return user

    def create_api_key(self, name: str, role: int) -> tuple[ApiKeyRow, str]:
        """A new API key and its secret (returned once, never stored)."""
        prefix = f"{API_KEY_PREFIX}_{secrets.token_hex(4)}"
        secret = f"{prefix}_{secrets.token_urlsafe(32)}"
        row = ApiKeyRow.create(name=name, role=role, prefix=prefix, secret_digest=_digest(secret))
        return row, secret

    def list_api_keys(self) -> list[ApiKeyRow]:
        """Every API key, newest first."""
        return list(ApiKeyRow.select().order_by(ApiKeyRow.create_time.desc()))

    def revoke_api_key(self, key_id: str) -> ApiKeyRow:
        """Revoke a key for good."""
        try:
            row = ApiKeyRow.get_or_none(ApiKeyRow.id == uuid.UUID(key_id))
        except ValueError:
            row = None
        if row is None:
            raise NotFound("API key", key_id)
        with database_proxy.atomic():
            row.revoked = True
            row.save()
            self._revoke(str(row.id), EVERY_TOKEN)
        return row
