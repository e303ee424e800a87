"""Account administration outside the API, straight against the analytics
database: creating users and API keys, minting a token for an existing user,
counting admins. The command line (`./mesh user create`, `apikey create`,
`token`) and the local stack's first-admin prompt use it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import peewee

from analytics_svc import schema
from analytics_svc.auth import store as auth_store
from analytics_svc.auth.accounts import Accounts
from analytics_svc.auth.store import ApiKeyRow, UserRow
from mesh_runtime.auth import Principal
from mesh_runtime.auth_keys import MintedToken, TokenSigner
from mesh_runtime.config import ConfigError, RuntimeSettings, load_settings
from mesh_runtime.database import connect

T = TypeVar("T")


class DatabaseUnreachable(ConfigError):
    """The analytics database does not answer (not running, wrong URL)."""


class AccountAdmin:
    """Account operations against the analytics database at ``database_url``,
    signing tokens with the key in ``signing_key`` (a file of the key folder)."""

    def __init__(self, database_url: str, signing_key: Path) -> None:
        self.database_url = database_url
        self.signing_key = signing_key

    def run(self, action: Callable[[Accounts], T]) -> T:
        """Run ``action(accounts)`` on one connection; ConfigError when the
        database is unreachable or has no account tables yet."""
        db = connect(self.database_url, max_connections=1)
        schema.bind(db)
        runtime = load_settings(RuntimeSettings)
        signer = TokenSigner.from_file(self.signing_key, runtime.issuer, runtime.audience)
        accounts = Accounts(
            signer,
            dt.timedelta(minutes=15),
            dt.timedelta(days=14),
            max_token_ttl=dt.timedelta(seconds=runtime.max_token_ttl_seconds),
        )
        try:
            with db.connection_context():
                return action(accounts)
        except peewee.OperationalError as exc:
            first = (str(exc).strip().splitlines() or ["connection failed"])[0]
            raise DatabaseUnreachable(f"cannot reach the analytics database ({first})") from None
        except peewee.ProgrammingError:
            raise ConfigError(
                "the analytics database has no user tables yet; start the analytics service once first"
            ) from None

    def create_user(self, username: str, password: str, role: int) -> UserRow:
        """Create a user with ``role`` (a mesh.auth.v1 Role)."""
        return self.run(lambda accounts: accounts.create_user(username, password, role))

    def create_api_key(self, name: str, role: int) -> tuple[ApiKeyRow, str]:
        """Create an API key; returns it and its secret (shown once)."""
        return self.run(lambda accounts: accounts.create_api_key(name, role))

    def mint_token(self, username: str, ttl: dt.timedelta) -> MintedToken:
        """An access token for an existing, enabled user, valid for ``ttl`` but
        at most AUTH_MAX_TOKEN_TTL_SECONDS (its ``expires`` says which)."""

        def mint(accounts: Accounts) -> MintedToken:
            user = auth_store.user_by_name(username.lower())
            if user is None or user.disabled:
                raise ConfigError(f"no enabled user {username!r}; create one with ./mesh user create")
            principal = Principal(str(user.id), user.username, user.role, generation=user.token_generation)
            return accounts.signer.mint(principal, min(ttl, accounts.max_token_ttl))

        return self.run(mint)

    def admin_count(self) -> int:
        """How many enabled admins exist."""
        return self.run(lambda accounts: auth_store.count_admins())
