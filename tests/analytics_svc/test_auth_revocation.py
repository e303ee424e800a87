"""Access tokens stop working within seconds of a revocation, a reused refresh
token ends its session, and sign-ins are throttled by account and address
without locking the real user out (gRPC and REST, against the real stack)."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Callable, Iterator

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from analytics_svc import schema
from analytics_svc.auth.store import LoginAttemptRow
from analytics_svc.auth.throttle import LoginThrottle, ThrottlePolicy
from local_stack.ports import free_port
from mesh.analytics.v1 import analytics_service_pb2 as analytics_pb2
from mesh.analytics.v1 import analytics_service_pb2_grpc as analytics_grpc
from mesh.auth.v1 import access_pb2, principal_pb2
from mesh.auth.v1 import auth_service_pb2 as pb
from mesh.auth.v1 import auth_service_pb2_grpc as pb_grpc
from mesh_runtime.database import connect
from mesh_runtime.errors import ResourceExhausted
from tests.clients import authed_channel
from tests.conftest import RunningStack
from tests.eventually import eventually
from tests.rig import ProcessRig

# Revocations reach the service by a database notification; this is what "within seconds" allows.
REVOKED_WITHIN = 10


@pytest.fixture
def public(mesh: RunningStack) -> Iterator[pb_grpc.AuthServiceStub]:
    with grpc.insecure_channel(mesh.analytics) as channel:
        yield pb_grpc.AuthServiceStub(channel)


@pytest.fixture
def admin(mesh: RunningStack) -> Iterator[pb_grpc.AuthServiceStub]:
    with mesh.channel(mesh.analytics, "admin") as channel:
        yield pb_grpc.AuthServiceStub(channel)


def new_user(admin: pb_grpc.AuthServiceStub, role: int = access_pb2.ROLE_ANALYST) -> tuple[str, str, str]:
    username, password = f"rev-{uuid.uuid4().hex[:10]}", secrets.token_urlsafe(16)
    user = admin.CreateUser(
        pb.CreateUserRequest(
            user=principal_pb2.User(username=username, role=role),  # type: ignore[arg-type]
            password=password,
        ),
        timeout=10,
    ).user
    return user.id, username, password


def create_dataset_grpc(mesh: RunningStack, token: str) -> grpc.StatusCode:
    with authed_channel(mesh.analytics, token) as channel:
        try:
            analytics_grpc.AnalyticsServiceStub(channel).CreateDataset(
                analytics_pb2.CreateDatasetRequest(dataset={"name": f"rev-{uuid.uuid4().hex[:8]}"}), timeout=10
            )
        except grpc.RpcError as error:
            return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def create_dataset_rest(mesh: RunningStack, token: str) -> int:
    response = httpx.post(
        f"{mesh.rest}/v1/datasets",
        json={"name": f"rev-{uuid.uuid4().hex[:8]}"},
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )
    return response.status_code


def assert_revoked(mesh: RunningStack, token: str) -> None:
    eventually(
        lambda: create_dataset_grpc(mesh, token) == grpc.StatusCode.UNAUTHENTICATED,
        REVOKED_WITHIN,
        "the revoked token to be refused over gRPC",
    )
    assert create_dataset_rest(mesh, token) == 401


def _disable(admin: pb_grpc.AuthServiceStub, user_id: str, session: pb.Session) -> None:
    admin.UpdateUser(pb.UpdateUserRequest(id=user_id, disabled=True), timeout=10)


def _demote(admin: pb_grpc.AuthServiceStub, user_id: str, session: pb.Session) -> None:
    admin.UpdateUser(pb.UpdateUserRequest(id=user_id, role=access_pb2.ROLE_VIEWER), timeout=10)


def _new_password(admin: pb_grpc.AuthServiceStub, user_id: str, session: pb.Session) -> None:
    admin.UpdateUser(pb.UpdateUserRequest(id=user_id, password=secrets.token_urlsafe(16)), timeout=10)


REVOCATIONS: dict[str, Callable[[pb_grpc.AuthServiceStub, str, pb.Session], None]] = {
    "disable": _disable,
    "demote": _demote,
    "new password": _new_password,
}


# Found by probing the stack: each of these left the access token working for
# its whole 15 minutes, over REST and gRPC.
@pytest.mark.parametrize("change", sorted(REVOCATIONS))
def test_an_admin_change_revokes_the_users_access_tokens(
    change: str, mesh: RunningStack, public: pb_grpc.AuthServiceStub, admin: pb_grpc.AuthServiceStub
) -> None:
    user_id, username, password = new_user(admin)
    session = public.Login(pb.LoginRequest(username=username, password=password), timeout=10).session
    assert create_dataset_grpc(mesh, session.access_token) == grpc.StatusCode.OK
    assert create_dataset_rest(mesh, session.access_token) == 200
    REVOCATIONS[change](admin, user_id, session)
    assert_revoked(mesh, session.access_token)


def _other_services(mesh: RunningStack, token: str) -> dict[str, grpc.StatusCode]:
    """What the LLM and notify services answer a read with ``token``."""
    from mesh.llm.v1 import llm_service_pb2, llm_service_pb2_grpc
    from mesh.notify.v1 import notify_service_pb2, notify_service_pb2_grpc

    calls = {
        "llm": (
            mesh.llm,
            lambda ch: llm_service_pb2_grpc.LlmServiceStub(ch).ListModels(
                llm_service_pb2.ListModelsRequest(), timeout=10
            ),
        ),
        "notify": (
            mesh.notify,
            lambda ch: notify_service_pb2_grpc.NotifyServiceStub(ch).ListSubscriptions(
                notify_service_pb2.ListSubscriptionsRequest(), timeout=10
            ),
        ),
    }
    answers = {}
    for name, (address, call) in calls.items():
        with authed_channel(address, token) as channel:
            try:
                call(channel)
                answers[name] = grpc.StatusCode.OK
            except grpc.RpcError as error:
                answers[name] = error.code()
    return answers


def test_revocations_reach_the_llm_and_notify_services(
    mesh: RunningStack, public: pb_grpc.AuthServiceStub, admin: pb_grpc.AuthServiceStub
) -> None:
    # They have no analytics database: revocations reach them over NATS (AUTH_REVOCATIONS).
    user_id, username, password = new_user(admin)
    session = public.Login(pb.LoginRequest(username=username, password=password), timeout=10).session
    assert set(_other_services(mesh, session.access_token).values()) == {grpc.StatusCode.OK}
    _disable(admin, user_id, session)
    eventually(
        lambda: set(_other_services(mesh, session.access_token).values()) == {grpc.StatusCode.UNAUTHENTICATED},
        REVOKED_WITHIN,
        "the llm and notify services to refuse the revoked token",
    )


@pytest.fixture(scope="module")
def second_replica(mesh: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Another analytics API process on the shared stack's database: a second replica."""
    rig = ProcessRig(mesh, tmp_path_factory.mktemp("replica"), "analytics")
    port = free_port()
    env = {"ANALYTICS_DATABASE_URL": rig.database_url, "ANALYTICS_GRPC_PORT": str(port), "LLM_ADDR": "off"}
    try:
        rig.start_service("analytics-2", "analytics_svc", env, ready_port=port)
        yield f"127.0.0.1:{port}"
    finally:
        rig.close()


def test_every_replica_refuses_a_revoked_token_within_seconds(
    mesh: RunningStack, second_replica: str, public: pb_grpc.AuthServiceStub, admin: pb_grpc.AuthServiceStub
) -> None:
    # Found by probing the stack: each replica would have honoured the token for 15 minutes.
    user_id, username, password = new_user(admin)
    session = public.Login(pb.LoginRequest(username=username, password=password), timeout=10).session

    def on_the_other_replica() -> grpc.StatusCode:
        with authed_channel(second_replica, session.access_token) as channel:
            try:
                pb_grpc.AuthServiceStub(channel).WhoAmI(pb.WhoAmIRequest(), timeout=10)
            except grpc.RpcError as error:
                return error.code()  # type: ignore[no-any-return]
        return grpc.StatusCode.OK

    assert on_the_other_replica() == grpc.StatusCode.OK  # verified there, and remembered
    _disable(admin, user_id, session)  # on the first replica
    eventually(
        lambda: on_the_other_replica() == grpc.StatusCode.UNAUTHENTICATED,
        REVOKED_WITHIN,
        "the second replica to refuse the token revoked on the first",
    )


def test_a_demoted_user_signs_in_again_with_the_new_role(
    mesh: RunningStack, public: pb_grpc.AuthServiceStub, admin: pb_grpc.AuthServiceStub
) -> None:
    user_id, username, password = new_user(admin)
    session = public.Login(pb.LoginRequest(username=username, password=password), timeout=10).session
    _demote(admin, user_id, session)
    assert_revoked(mesh, session.access_token)
    # The session itself goes on, at the new role: a refresh mints a viewer token.
    renewed = public.Refresh(pb.RefreshRequest(refresh_token=session.refresh_token), timeout=10).session
    assert renewed.principal.role == access_pb2.ROLE_VIEWER
    assert create_dataset_grpc(mesh, renewed.access_token) == grpc.StatusCode.PERMISSION_DENIED


def test_logging_out_revokes_that_sessions_access_tokens_only(
    mesh: RunningStack, public: pb_grpc.AuthServiceStub, admin: pb_grpc.AuthServiceStub
) -> None:
    _, username, password = new_user(admin)
    laptop = public.Login(pb.LoginRequest(username=username, password=password), timeout=10).session
    phone = public.Login(pb.LoginRequest(username=username, password=password), timeout=10).session
    with authed_channel(mesh.analytics, laptop.access_token) as channel:
        pb_grpc.AuthServiceStub(channel).Logout(pb.LogoutRequest(refresh_token=laptop.refresh_token), timeout=10)
    assert_revoked(mesh, laptop.access_token)
    assert create_dataset_grpc(mesh, phone.access_token) == grpc.StatusCode.OK


def test_revoking_an_api_key_revokes_the_tokens_it_was_traded_for(
    mesh: RunningStack, public: pb_grpc.AuthServiceStub, admin: pb_grpc.AuthServiceStub
) -> None:
    created = admin.CreateApiKey(
        pb.CreateApiKeyRequest(
            api_key=principal_pb2.ApiKey(name=f"rev-{uuid.uuid4().hex[:6]}", role=access_pb2.ROLE_ANALYST)
        ),
        timeout=10,
    )
    token = public.ExchangeApiKey(pb.ExchangeApiKeyRequest(api_key=created.secret), timeout=10).session.access_token
    assert create_dataset_grpc(mesh, token) == grpc.StatusCode.OK
    admin.RevokeApiKey(pb.RevokeApiKeyRequest(id=created.api_key.id), timeout=10)
    assert_revoked(mesh, token)


def test_revocations_are_in_the_database_for_replicas_that_start_later(
    throttle_db: None, admin: pb_grpc.AuthServiceStub
) -> None:
    # A replica loads the list when it starts and when its listen connection
    # comes back; notifications only keep it current in between.
    from analytics_svc.auth import store as auth_store

    user_id, _, _ = new_user(admin)
    _disable(admin, user_id, pb.Session())
    loaded = {r.key: r for r in auth_store.active_revocations(dt.datetime.now(dt.UTC))}
    assert loaded[user_id].min_generation == 1
    assert loaded[user_id].expire_time > dt.datetime.now(dt.UTC).timestamp() + 3600


# --- refresh token reuse --------------------------------------------------------------


def test_two_tabs_refreshing_together_both_stay_signed_in(
    mesh: RunningStack, public: pb_grpc.AuthServiceStub, admin: pb_grpc.AuthServiceStub
) -> None:
    _, username, password = new_user(admin)
    session = public.Login(pb.LoginRequest(username=username, password=password), timeout=10).session
    first = public.Refresh(pb.RefreshRequest(refresh_token=session.refresh_token), timeout=10).session
    # The other tab sends the same (just rotated) token moments later: honoured, with a token of its own.
    second = public.Refresh(pb.RefreshRequest(refresh_token=session.refresh_token), timeout=10).session
    assert second.refresh_token != first.refresh_token
    for tab in (first, second):
        assert create_dataset_grpc(mesh, tab.access_token) == grpc.StatusCode.OK
        public.Refresh(pb.RefreshRequest(refresh_token=tab.refresh_token), timeout=10)


def test_a_rotated_refresh_token_used_after_the_grace_ends_the_whole_session(
    mesh: RunningStack, public: pb_grpc.AuthServiceStub, admin: pb_grpc.AuthServiceStub
) -> None:
    # Found by probing the stack: the replay was refused but the newer token of
    # the chain kept working (OAuth 2.0 security BCP: revoke the chain).
    _, username, password = new_user(admin)
    stolen = public.Login(pb.LoginRequest(username=username, password=password), timeout=10).session
    current = public.Refresh(pb.RefreshRequest(refresh_token=stolen.refresh_token), timeout=10).session
    other = public.Login(pb.LoginRequest(username=username, password=password), timeout=10).session

    def replay_refused() -> bool:
        try:
            public.Refresh(pb.RefreshRequest(refresh_token=stolen.refresh_token), timeout=10)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            return True
        return False  # still within the grace (AUTH_REFRESH_REUSE_GRACE_SECONDS)

    eventually(replay_refused, 30, "the replayed refresh token to be refused", interval=0.5)
    with pytest.raises(grpc.RpcError) as caught:
        public.Refresh(pb.RefreshRequest(refresh_token=current.refresh_token), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert_revoked(mesh, current.access_token)
    # Another session of the same user is untouched.
    assert create_dataset_grpc(mesh, other.access_token) == grpc.StatusCode.OK
    public.Refresh(pb.RefreshRequest(refresh_token=other.refresh_token), timeout=10)


# --- throttling -----------------------------------------------------------------------


def _login_from(public: pb_grpc.AuthServiceStub, address: str, username: str, password: str) -> grpc.StatusCode:
    # The test talks to the service from 127.0.0.1, a trusted proxy: it names the client as Envoy would.
    try:
        public.Login(
            pb.LoginRequest(username=username, password=password),
            metadata=[("x-forwarded-for", address)],
            timeout=10,
        )
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_guessing_from_new_addresses_slows_the_account_but_not_its_user(
    public: pb_grpc.AuthServiceStub, admin: pb_grpc.AuthServiceStub
) -> None:
    # Found by probing the stack: five wrong passwords locked the right one out for 5 minutes.
    _, username, password = new_user(admin)
    home, attacker, elsewhere = "198.51.100.7", f"203.0.113.{secrets.randbelow(200) + 1}", "192.0.2.55"
    assert _login_from(public, home, username, password) == grpc.StatusCode.OK
    for _ in range(5):  # the free failures (AUTH_LOGIN_ACCOUNT_FREE_FAILURES)
        assert _login_from(public, attacker, username, "guess") == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as caught:
        public.Login(
            pb.LoginRequest(username=username, password=password), metadata=[("x-forwarded-for", attacker)], timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(caught.value)  # type: ignore[arg-type]
    assert status is not None
    retry = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    assert retry, status
    assert _login_from(public, elsewhere, username, password) == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The real user, from where they signed in before, is not kept out.
    assert _login_from(public, home, username, password) == grpc.StatusCode.OK


def test_a_throttled_sign_in_over_rest_is_a_429_with_retry_after(
    mesh: RunningStack, admin: pb_grpc.AuthServiceStub
) -> None:
    _, username, password = new_user(admin)
    url = f"{mesh.rest}/v1/auth:login"
    for _ in range(5):
        wrong = httpx.post(url, json={"username": username, "password": "nope"}, timeout=10)
        assert wrong.status_code == 401
    throttled = httpx.post(url, json={"username": username, "password": password}, timeout=10)
    assert throttled.status_code == 429, throttled.text
    assert 1 <= int(throttled.headers["retry-after"]) <= 3600
    assert throttled.json()["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


@pytest.fixture
def throttle_db(mesh: RunningStack) -> Iterator[None]:
    db = connect(mesh.database_url("analytics"), max_connections=2)
    schema.bind(db)
    with db.connection_context():
        yield
    db.close_all()


def test_an_address_guessing_many_usernames_is_slowed_on_every_replica(throttle_db: None) -> None:
    # Found by probing the stack: twelve usernames with one wrong password each were never
    # throttled, and each replica counted in its own memory. Two throttles on one
    # database stand for two replicas; the shared stack's own address limit is off.
    policy = ThrottlePolicy(address_free_failures=10, first_delay=dt.timedelta(seconds=30))
    replicas = [LoginThrottle(policy), LoginThrottle(policy)]
    address = f"203.0.113.{secrets.randbelow(200) + 1}-{uuid.uuid4().hex[:6]}"
    now = dt.datetime.now(dt.UTC)
    for i in range(10):
        replica = replicas[i % 2]
        replica.check(f"victim-{i}-{uuid.uuid4().hex[:6]}", address, now)
        replica.record(f"victim-{i}", address, False, now)
    for replica in replicas:
        with pytest.raises(ResourceExhausted, match="try again in"):
            replica.check(f"someone-{uuid.uuid4().hex[:6]}", address, now)
    # Each further failure doubles the wait.
    replicas[0].record("victim-x", address, False, now)
    with pytest.raises(ResourceExhausted) as caught:
        replicas[1].check("someone-else", address, now)
    assert "in 61 s" in caught.value.message
    LoginAttemptRow.delete().where(LoginAttemptRow.address == address).execute()
