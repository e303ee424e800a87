"""`mesh user`, `mesh apikey`, `mesh token`, `mesh auth rotate-key`: account
administration from the command line, against the analytics database and the
key folder of the local stack (or those named by ANALYTICS_DATABASE_URL and
MESH_STATE_DIR)."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys
from collections.abc import Callable
from typing import TypeVar

import peewee

from mesh_cli import infra
from mesh_cli.stack import SERVICE_DATABASES, StackSettings
from mesh_runtime.auth import ROLES_BY_NAME, Principal
from mesh_runtime.auth_keys import KeyFolder, TokenSigner
from mesh_runtime.config import ConfigError, RuntimeSettings, load_settings
from mesh_runtime.database import connect
from mesh_runtime.errors import MeshError

T = TypeVar("T")


def _database_url(settings: StackSettings) -> str:
    return os.environ.get("ANALYTICS_DATABASE_URL") or infra.postgres_dsn(
        settings.postgres_port, SERVICE_DATABASES["analytics"]
    )


def _with_accounts(action: Callable[..., T], settings: StackSettings | None = None) -> T:
    """Run ``action(accounts)`` against the analytics database of the local
    stack (``settings``, or the one the environment describes)."""
    from analytics_svc import store
    from analytics_svc.accounts import Accounts

    settings = settings or load_settings(StackSettings)
    db = connect(_database_url(settings), max_connections=1)
    store.bind(db)
    runtime = load_settings(RuntimeSettings)
    signer = TokenSigner.from_file(
        KeyFolder(settings.state_dir / "auth").signing_key, runtime.issuer, runtime.audience
    )
    accounts = Accounts(signer, dt.timedelta(minutes=15), dt.timedelta(days=14))
    try:
        with db.connection_context():
            return action(accounts)
    except peewee.OperationalError as exc:
        first = (str(exc).strip().splitlines() or ["connection failed"])[0]
        raise ConfigError(f"cannot reach the analytics database ({first}); is `./mesh up` running?") from None
    except peewee.ProgrammingError:
        raise ConfigError("the analytics database has no user tables yet; start `./mesh up` once first") from None


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password (at least 12 characters): ")
    if getpass.getpass("again: ") != first:
        raise ConfigError("the two passwords differ")
    return first


def user_create(args: argparse.Namespace) -> int:
    """Create a user."""
    password = _password(args)
    if len(password) < 12:
        raise ConfigError("the password needs at least 12 characters")
    row = _with_accounts(lambda a: a.create_user(args.username, password, ROLES_BY_NAME[args.role]))
    print(f"created {args.role} {row.username}")
    return 0


def apikey_create(args: argparse.Namespace) -> int:
    """Create an API key and print its secret once."""
    row, secret = _with_accounts(lambda a: a.create_api_key(args.name, ROLES_BY_NAME[args.role]))
    print(f"API key {row.name} ({args.role}), id {row.id}. Store the secret now; it is not shown again:")
    print(secret)
    return 0


def mint_for_user(username: str, settings: StackSettings | None = None, ttl_seconds: int = 3600) -> str:
    """An access token for an existing, enabled user, signed with the stack's key."""
    from analytics_svc import auth_store

    def mint(accounts: object) -> str:
        user = auth_store.user_by_name(username.lower())
        if user is None or user.disabled:
            raise ConfigError(f"no enabled user {username!r}; create one with ./mesh user create")
        principal = Principal(str(user.id), user.username, user.role)
        return accounts.signer.mint(principal, dt.timedelta(seconds=ttl_seconds)).token  # type: ignore[attr-defined, no-any-return]

    return _with_accounts(mint, settings)


def token(args: argparse.Namespace) -> int:
    """Print an access token for an existing user (for grpcurl and curl)."""
    print(mint_for_user(args.username, ttl_seconds=args.ttl))
    return 0


def rotate_key(args: argparse.Namespace) -> int:
    """Start signing with a new key; tokens signed with older keys stay valid."""
    settings = load_settings(StackSettings)
    kid = KeyFolder(settings.state_dir / "auth").rotate()
    print(f"new signing key {kid}; restart `./mesh up` so every service and Envoy load it")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the account commands on the mesh CLI."""
    roles = sorted(ROLES_BY_NAME)
    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    create = user.add_parser("create", help="create a user (asks for the password)")
    create.add_argument("username")
    create.add_argument("--role", choices=roles, required=True)
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    create.set_defaults(func=user_create)
    apikey = sub.add_parser("apikey", help="manage API keys").add_subparsers(dest="action", required=True)
    key = apikey.add_parser("create", help="create an API key for a machine client")
    key.add_argument("name")
    key.add_argument("--role", choices=roles, required=True)
    key.set_defaults(func=apikey_create)
    tok = sub.add_parser("token", help="print an access token for a user, for grpcurl and curl")
    tok.add_argument("username")
    tok.add_argument("--ttl", type=int, default=3600, help="seconds the token is valid (default 3600)")
    tok.set_defaults(func=token)
    from mesh_cli import sample_data

    sample_data.add_command(sub)
    auth = sub.add_parser("auth", help="signing keys").add_subparsers(dest="action", required=True)
    rotate = auth.add_parser("rotate-key", help="sign new tokens with a new key")
    rotate.set_defaults(func=rotate_key)


def run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace, prog: str) -> int:
    """Run an account command, turning expected failures into one line."""
    try:
        return func(args)
    except (ConfigError, ValueError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except MeshError as exc:
        print(f"{prog}: {exc.message}", file=sys.stderr)
        return 1


def first_admin_hint(settings: StackSettings, interactive: bool) -> str:
    """Make sure someone can sign in: with no admin yet, ask for one (on a
    terminal) or say how to create one. Returns a line for the start-up table."""
    from analytics_svc import auth_store

    if _with_accounts(lambda a: auth_store.count_admins(), settings) > 0:
        return "sign in with your user; `./mesh token USER` prints a token for grpcurl/curl"
    if not interactive:
        return (
            "no admin yet: create one with `./mesh user create admin --role admin` "
            "(or set AUTH_BOOTSTRAP_ADMIN_USERNAME/PASSWORD)"
        )
    print("\nNo admin exists yet. Create the first one now.")
    while True:
        username = input("admin username: ").strip().lower()
        password = getpass.getpass("password (at least 12 characters): ")
        if len(password) < 12:
            print("  too short; try again")
            continue
        if getpass.getpass("again: ") != password:
            print("  the passwords differ; try again")
            continue
        try:
            _with_accounts(lambda a, u=username, p=password: a.create_user(u, p, ROLES_BY_NAME["admin"]), settings)
        except MeshError as exc:
            print(f"  {exc.message}; try again")
            continue
        return f"admin {username} created; sign in at the web app"
