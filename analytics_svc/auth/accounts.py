"""Accounts: signing in, sessions, users and API keys (blocking; run off the loop).

Passwords are hashed with argon2; a login for an unknown user still verifies
a dummy hash so timing does not reveal which usernames exist. Repeated
failures for a username are throttled. Refresh tokens rotate on every use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

import peewee
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from analytics_svc.auth import store as auth_store
from analytics_svc.auth.store import ApiKeyRow, RefreshTokenRow, UserRow
from analytics_svc.schema import database_proxy
from mesh_runtime.auth import Principal
from mesh_runtime.auth_keys import MintedToken, TokenSigner
from mesh_runtime.errors import AlreadyExists, NotFound, ResourceExhausted, Unauthenticated

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


class LoginThrottle:
    """At most ``limit`` failed logins per username within ``window`` seconds."""

    def __init__(self, limit: int = 5, window: float = 300.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, username: str) -> None:
        """Raise ResourceExhausted (with a retry delay) while ``username`` is locked out."""
        with self._lock:
            recent = self._recent(username)
            if len(recent) >= self.limit:
                wait = self.window - (time.monotonic() - recent[0])
                raise ResourceExhausted(
                    f"too many failed sign-ins; try again in {int(wait) + 1} s", retry_after=max(wait, 1.0)
                )

    def failed(self, username: str) -> None:
        """Record a failed login."""
        with self._lock:
            self._recent(username).append(time.monotonic())

    def succeeded(self, username: str) -> None:
        """Forget the failures of a username that signed in."""
        with self._lock:
            self._failures.pop(username, None)

    def _recent(self, username: str) -> deque[float]:
        failures = self._failures.setdefault(username, deque())
        while failures and time.monotonic() - failures[0] > self.window:
            failures.popleft()
        return failures


def _principal(user: UserRow) -> Principal:
    return Principal(id=str(user.id), name=user.username, role=user.role)


class Accounts:
    """The account operations behind AuthService."""

    def __init__(
        self,
        signer: TokenSigner,
        access_ttl: dt.timedelta,
        refresh_ttl: dt.timedelta,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self.signer = signer
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.throttle = throttle or LoginThrottle()

    def _new_session(self, user: UserRow) -> Session:
        secret = secrets.token_urlsafe(32)
        now = dt.datetime.now(dt.UTC)
        RefreshTokenRow.create(user=user, token_digest=_digest(secret), expire_time=now + self.refresh_ttl)
        principal = _principal(user)
        return Session(self.signer.mint(principal, self.access_ttl), secret, principal)

    def login(self, username: str, password: str) -> Session:
        """Sign in; Unauthenticated for a wrong username or password."""
        key = username.strip().lower()
        self.throttle.check(key)
        user = auth_store.user_by_name(key)
        try:
            _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
            ok = user is not None and not user.disabled
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or user is None:
            self.throttle.failed(key)
            raise Unauthenticated("wrong username or password")
        self.throttle.succeeded(key)
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
            user.save()
        return self._new_session(user)

    def refresh(self, refresh_token: str) -> Session:
        """Trade a refresh token for a new session; the old token stops working."""
        with database_proxy.atomic():
            row = auth_store.refresh_token(_digest(refresh_token))
            now = dt.datetime.now(dt.UTC)
            if (
                row is None
                or row.revoked
                or row.expire_time <= now
                or row.user.disabled
                or row.create_time < row.user.sessions_valid_after
            ):
                raise Unauthenticated("the session has ended; sign in again")
            updated = (
                RefreshTokenRow.update(revoked=True)
                .where(RefreshTokenRow.id == row.id, ~RefreshTokenRow.revoked)
                .execute()
            )
            if updated != 1:  # used twice at once: only one use wins
                raise Unauthenticated("the session has ended; sign in again")
            return self._new_session(row.user)

    def logout(self, refresh_token: str, principal: Principal) -> None:
        """Revoke a refresh token of the caller."""
        row = auth_store.refresh_token(_digest(refresh_token))
        if row is not None and str(row.user.id) == principal.id:
            RefreshTokenRow.update(revoked=True).where(RefreshTokenRow.id == row.id).execute()

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
            if role is not None:
                user.role = role
            if disabled is not None:
                user.disabled = disabled
            if password is not None:
                user.password_hash = _hasher.hash(password)
            user.save()
            if disabled or password is not None:
                auth_store.expire_sessions(user, dt.datetime.now(dt.UTC))
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
        row.revoked = True
        row.save()
        return row
