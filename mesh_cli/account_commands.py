"""`mesh user`, `mesh apikey`, `mesh token`, `mesh auth rotate-key`,
`mesh sample-data`: account administration and sample data from the command
line, against the local stack (or the database named by
ANALYTICS_DATABASE_URL and the key folder under MESH_STATE_DIR)."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
from collections.abc import Callable

import grpc

from analytics_svc.auth.admin import AccountAdmin, DatabaseUnreachable
from local_stack.stack import StackSettings, service_database_url
from mesh_runtime.auth import ROLES_BY_NAME
from mesh_runtime.auth_keys import KeyFolder
from mesh_runtime.config import ConfigError, load_settings
from mesh_runtime.errors import MeshError, from_rpc_error
from sample_data import loader


def account_admin(settings: StackSettings | None = None) -> AccountAdmin:
    """Account administration for the local stack ``settings`` (or the one the environment describes)."""
    settings = settings or load_settings(StackSettings)
    return AccountAdmin(service_database_url(settings, "analytics"), KeyFolder(settings.state_dir / "auth").signing_key)


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
    row = account_admin().create_user(args.username, password, ROLES_BY_NAME[args.role])
    print(f"created {args.role} {row.username}")
    return 0


def apikey_create(args: argparse.Namespace) -> int:
    """Create an API key and print its secret once."""
    row, secret = account_admin().create_api_key(args.name, ROLES_BY_NAME[args.role])
    print(f"API key {row.name} ({args.role}), id {row.id}. Store the secret now; it is not shown again:")
    print(secret)
    return 0


def token(args: argparse.Namespace) -> int:
    """Print an access token for an existing user (for grpcurl and curl)."""
    asked = dt.timedelta(seconds=args.ttl)
    minted = account_admin().mint_token(args.username, asked)
    valid = minted.expires - dt.datetime.now(dt.UTC)
    if valid < asked - dt.timedelta(seconds=5):
        seconds = round(valid.total_seconds())
        print(
            f"mesh: --ttl {args.ttl} is over AUTH_MAX_TOKEN_TTL_SECONDS; this token is valid for {seconds} s",
            file=sys.stderr,
        )
    print(minted.token)
    return 0


def rotate_key(args: argparse.Namespace) -> int:
    """Start signing with a new key; tokens signed with older keys stay valid."""
    settings = load_settings(StackSettings)
    kid = KeyFolder(settings.state_dir / "auth").rotate()
    print(f"new signing key {kid}; restart `./mesh up` so every service and Envoy load it")
    return 0


def sample_data(args: argparse.Namespace) -> int:
    """Load sample series into the running local stack as ``--user``."""
    settings = load_settings(StackSettings)
    access = account_admin(settings).mint_token(args.user, dt.timedelta(hours=1)).token
    try:
        names = loader.load(
            f"127.0.0.1:{settings.analytics_port}",
            access,
            args.datasets,
            args.points,
            args.interval_seconds,
            args.prefix,
            args.seed,
        )
    except grpc.RpcError as error:
        raise MeshError(f"analytics refused the sample data: {from_rpc_error(error).message}") from None
    print(f"loaded {len(names)} datasets of {args.points:,} points: {', '.join(names)}")
    return 0


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:,} and {high:,}")
        return value

    return parse


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the account and sample-data commands on the mesh CLI."""
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
    tok.add_argument(
        "--ttl",
        type=_bounded(1, 10**9),
        default=3600,
        help="seconds the token is valid (default 3600; at most AUTH_MAX_TOKEN_TTL_SECONDS, a day by default)",
    )
    tok.set_defaults(func=token)
    cmd = sub.add_parser("sample-data", help="load realistic sample time series into the running mesh")
    cmd.add_argument("--user", required=True, help="an analyst or admin; the data is loaded as this user")
    cmd.add_argument("--datasets", type=_bounded(1, 50), default=4, help="how many series (default 4)")
    cmd.add_argument("--points", type=_bounded(10, 5_000_000), default=50_000, help="points per series")
    cmd.add_argument("--interval-seconds", type=float, default=60.0, help="spacing of the points (default 60)")
    cmd.add_argument("--prefix", default="sample", help="dataset names start with this (default 'sample')")
    cmd.add_argument("--seed", type=int, default=42, help="random seed, for repeatable data")
    cmd.set_defaults(func=sample_data)
    auth = sub.add_parser("auth", help="signing keys").add_subparsers(dest="action", required=True)
    rotate = auth.add_parser("rotate-key", help="sign new tokens with a new key")
    rotate.set_defaults(func=rotate_key)


def run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace, prog: str) -> int:
    """Run an account command, turning expected failures into one line."""
    try:
        return func(args)
    except DatabaseUnreachable as exc:
        print(f"{prog}: {exc}; is `./mesh up` running?", file=sys.stderr)
        return 1
    except (ConfigError, ValueError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except MeshError as exc:
        print(f"{prog}: {exc.message}", file=sys.stderr)
        return 1


def first_admin_hint(settings: StackSettings, interactive: bool) -> str:
    """Make sure someone can sign in: with no admin yet, ask for one (on a
    terminal) or say how to create one. Returns a line for the start-up table."""
    admin = account_admin(settings)
    if admin.admin_count() > 0:
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
            admin.create_user(username, password, ROLES_BY_NAME["admin"])
        except MeshError as exc:
            print(f"  {exc.message}; try again")
            continue
        return f"admin {username} created; sign in at the web app"
