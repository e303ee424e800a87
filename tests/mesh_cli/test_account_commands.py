"""`mesh user create`, `mesh token`, `mesh apikey create` against the test stack."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import grpc
import jwt

from local_stack.paths import ROOT
from mesh.auth.v1 import access_pb2
from mesh.auth.v1 import auth_service_pb2 as pb
from mesh.auth.v1 import auth_service_pb2_grpc as pb_grpc
from tests.clients import authed_channel
from tests.conftest import RunningStack


def mesh_cli(mesh: RunningStack, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MESH_STATE_DIR": str(mesh.settings.state_dir),
        "ANALYTICS_DATABASE_URL": mesh.database_url("analytics"),
    }
    return subprocess.run(
        [sys.executable, "-m", "mesh_cli", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def whoami(mesh: RunningStack, token: str) -> pb.Principal:
    with authed_channel(mesh.analytics, token) as channel:
        return pb_grpc.AuthServiceStub(channel).WhoAmI(pb.WhoAmIRequest(), timeout=10).principal


def test_user_create_then_token_signs_in(mesh: RunningStack) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = mesh_cli(
        mesh, "user", "create", name, "--role", "analyst", "--password-stdin", stdin="long enough password\n"
    )
    assert created.returncode == 0, created.stderr
    assert f"created analyst {name}" in created.stdout
    with grpc.insecure_channel(mesh.analytics) as channel:
        pb_grpc.AuthServiceStub(channel).Login(
            pb.LoginRequest(username=name, password="long enough password"), timeout=10
        )

    token = mesh_cli(mesh, "token", name)
    assert token.returncode == 0, token.stderr
    me = whoami(mesh, token.stdout.strip())
    assert me.name == name and me.role == access_pb2.ROLE_ANALYST


def test_apikey_create_prints_a_working_key(mesh: RunningStack) -> None:
    name = f"cli-import-{uuid.uuid4().hex[:8]}"
    result = mesh_cli(mesh, "apikey", "create", name, "--role", "viewer")
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip().splitlines()[-1]
    with grpc.insecure_channel(mesh.analytics) as channel:
        session = pb_grpc.AuthServiceStub(channel).ExchangeApiKey(pb.ExchangeApiKeyRequest(api_key=secret), timeout=10)
    assert session.session.principal.service_account
    assert whoami(mesh, session.session.access_token).name == name


def test_bad_account_commands_fail_in_one_line(mesh: RunningStack) -> None:
    for args, stdin, needle in (
        (("token", "no-such-user"), "", "no enabled user"),
        (("user", "create", "shorty", "--role", "viewer", "--password-stdin"), "short\n", "12 characters"),
        (("user", "create", "test-viewer", "--role", "viewer", "--password-stdin"), "long enough password\n", "exists"),
    ):
        result = mesh_cli(mesh, *args, stdin=stdin)
        assert result.returncode == 1, result.stdout
        assert needle in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_token_lifetime_is_capped_by_the_setting_and_says_so(mesh: RunningStack) -> None:
    # Found by probing the stack: --ttl minted tokens of any lifetime (a year, a century).
    week = mesh_cli(mesh, "token", "test-viewer", "--ttl", str(7 * 86_400))
    assert week.returncode == 0, week.stderr
    assert "AUTH_MAX_TOKEN_TTL_SECONDS" in week.stderr and "valid for 86400 s" in week.stderr
    claims = jwt.decode(week.stdout.strip(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 86_400
    assert whoami(mesh, week.stdout.strip()).name == "test-viewer"
    hour = mesh_cli(mesh, "token", "test-viewer", "--ttl", "3600")
    assert hour.returncode == 0 and hour.stderr == ""
    never = mesh_cli(mesh, "token", "test-viewer", "--ttl", "0")
    assert never.returncode != 0 and "--ttl" in never.stderr and "Traceback" not in never.stderr
