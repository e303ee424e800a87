"""Signing in and out, sessions, users and API keys, through gRPC and REST."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from mesh.analytics.v1 import analytics_service_pb2 as analytics_pb2
from mesh.analytics.v1 import analytics_service_pb2_grpc as analytics_grpc
from mesh.auth.v1 import access_pb2, principal_pb2
from mesh.auth.v1 import auth_service_pb2 as pb
from mesh.auth.v1 import auth_service_pb2_grpc as pb_grpc
from tests.clients import authed_channel
from tests.conftest import RunningStack


@pytest.fixture
def public(mesh: RunningStack) -> Iterator[pb_grpc.AuthServiceStub]:
    with grpc.insecure_channel(mesh.analytics) as channel:
        yield pb_grpc.AuthServiceStub(channel)


@pytest.fixture
def admin(mesh: RunningStack) -> Iterator[pb_grpc.AuthServiceStub]:
    with mesh.channel(mesh.analytics, "admin") as channel:
        yield pb_grpc.AuthServiceStub(channel)


def new_user(admin: pb_grpc.AuthServiceStub, role: int = access_pb2.ROLE_VIEWER) -> tuple[str, str, str]:
    username, password = f"u-{uuid.uuid4().hex[:10]}", secrets.token_urlsafe(16)
    user = admin.CreateUser(
        pb.CreateUserRequest(user=principal_pb2.User(username=username, role=role), password=password), timeout=10
    ).user
    return user.id, username, password


def code_of(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value.code()  # type: ignore[no-any-return]


def test_login_whoami_refresh_logout(
    public: pb_grpc.AuthServiceStub, admin: pb_grpc.AuthServiceStub, mesh: RunningStack
) -> None:
    _, username, password = new_user(admin, access_pb2.ROLE_ANALYST)
    session = public.Login(pb.LoginRequest(username=username, password=password), timeout=10).session
    assert session.principal.name == username and session.principal.role == access_pb2.ROLE_ANALYST
    assert session.access_token_expire_time.seconds > 0 and session.refresh_token

    with authed_channel(mesh.analytics, session.access_token) as channel:
        me = pb_grpc.AuthServiceStub(channel).WhoAmI(pb.WhoAmIRequest(), timeout=10).principal
        assert me.name == username and not me.service_account

    renewed = public.Refresh(pb.RefreshRequest(refresh_token=session.refresh_token), timeout=10).session
    assert renewed.access_token != session.access_token and renewed.refresh_token != session.refresh_token
    # The old refresh token is spent once a short grace is over (test_auth_revocation.py).
    with authed_channel(mesh.analytics, renewed.access_token) as channel:
        pb_grpc.AuthServiceStub(channel).Logout(pb.LogoutRequest(refresh_token=renewed.refresh_token), timeout=10)
    assert code_of(lambda: public.Refresh(pb.RefreshRequest(refresh_token=renewed.refresh_token), timeout=10)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )


def test_wrong_password_and_unknown_user_look_the_same(
    public: pb_grpc.AuthServiceStub, admin: pb_grpc.AuthServiceStub
) -> None:
    _, username, _ = new_user(admin)
    messages = set()
    for name in (username, f"nobody-{uuid.uuid4().hex[:6]}"):
        with pytest.raises(grpc.RpcError) as caught:
            public.Login(pb.LoginRequest(username=name, password="not the password"), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        messages.add(caught.value.details())
    assert len(messages) == 1


def test_repeated_failures_are_throttled(public: pb_grpc.AuthServiceStub, admin: pb_grpc.AuthServiceStub) -> None:
    _, username, password = new_user(admin)
    for _ in range(5):
        assert code_of(lambda: public.Login(pb.LoginRequest(username=username, password="wrong"), timeout=10)) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
    with pytest.raises(grpc.RpcError) as caught:
        public.Login(pb.LoginRequest(username=username, password=password), timeout=10)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(caught.value)  # type: ignore[arg-type]
    assert status is not None
    assert any(d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in status.details)


def test_disabling_a_user_ends_their_sessions(public: pb_grpc.AuthServiceStub, admin: pb_grpc.AuthServiceStub) -> None:
    user_id, username, password = new_user(admin)
    session = public.Login(pb.LoginRequest(username=username, password=password), timeout=10).session
    updated = admin.UpdateUser(pb.UpdateUserRequest(id=user_id, disabled=True), timeout=10).user
    assert updated.disabled
    assert code_of(lambda: public.Refresh(pb.RefreshRequest(refresh_token=session.refresh_token), timeout=10)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    assert code_of(lambda: public.Login(pb.LoginRequest(username=username, password=password), timeout=10)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    listed = admin.ListUsers(pb.ListUsersRequest(page_size=1000), timeout=10).users
    assert [u.disabled for u in listed if u.username == username] == [True]


def test_api_key_is_shown_once_works_and_can_be_revoked(
    public: pb_grpc.AuthServiceStub, admin: pb_grpc.AuthServiceStub, mesh: RunningStack
) -> None:
    key = principal_pb2.ApiKey(name=f"nightly-import-{uuid.uuid4().hex[:8]}", role=access_pb2.ROLE_ANALYST)
    created = admin.CreateApiKey(
        pb.CreateApiKeyRequest(api_key=key),
        timeout=10,
    )
    secret = created.secret
    assert secret.startswith(created.api_key.prefix + "_")
    listed = admin.ListApiKeys(pb.ListApiKeysRequest(), timeout=10)
    assert secret not in str(listed)
    session = public.ExchangeApiKey(pb.ExchangeApiKeyRequest(api_key=secret), timeout=10).session
    assert session.principal.service_account and session.principal.role == access_pb2.ROLE_ANALYST
    assert not session.refresh_token
    with authed_channel(mesh.analytics, session.access_token) as channel:
        made = analytics_grpc.AnalyticsServiceStub(channel).CreateDataset(
            analytics_pb2.CreateDatasetRequest(dataset={"name": f"by-key-{uuid.uuid4().hex[:6]}"}), timeout=10
        )
        assert made.dataset.id
    admin.RevokeApiKey(pb.RevokeApiKeyRequest(id=created.api_key.id), timeout=10)
    assert code_of(lambda: public.ExchangeApiKey(pb.ExchangeApiKeyRequest(api_key=secret), timeout=10)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    assert (
        code_of(lambda: public.ExchangeApiKey(pb.ExchangeApiKeyRequest(api_key=secret[:-2] + "xx"), timeout=10))
        == grpc.StatusCode.UNAUTHENTICATED
    )


def test_rest_login_and_me(mesh: RunningStack) -> None:
    username, password = mesh.credentials["viewer"]
    login = httpx.post(f"{mesh.rest}/v1/auth:login", json={"username": username, "password": password}, timeout=10)
    assert login.status_code == 200, login.text
    token = login.json()["session"]["accessToken"]
    me = httpx.get(f"{mesh.rest}/v1/auth/me", headers={"authorization": f"Bearer {token}"}, timeout=10)
    assert me.json()["principal"] == {
        "id": me.json()["principal"]["id"],
        "name": username,
        "role": "ROLE_VIEWER",
        "serviceAccount": False,
    }
    wrong = httpx.post(f"{mesh.rest}/v1/auth:login", json={"username": username, "password": "nope"}, timeout=10)
    assert wrong.status_code == 401 and wrong.json()["code"] == 16


def test_secrets_never_reach_the_logs(mesh: RunningStack, public: pb_grpc.AuthServiceStub) -> None:
    username, password = mesh.credentials["viewer"]
    session = public.Login(pb.LoginRequest(username=username, password=password), timeout=10).session
    logs = "".join(p.read_text(errors="replace") for p in mesh.logs().glob("*.log"))
    assert password not in logs
    assert session.access_token not in logs and session.refresh_token not in logs
    assert mesh.tokens["analyst"] not in logs
