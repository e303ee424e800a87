"""Every RPC of the mesh, called through gRPC and through REST (Envoy) with no
token, an expired one, a forged one, and each role: the access rule declared
in its proto decides, in the service and at the edge."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pool, message_factory

from mesh.auth.v1 import access_pb2
from mesh_runtime.auth import Principal, rule_table
from mesh_runtime.auth_keys import KeyFolder, TokenSigner, load_private_key
from tests.conftest import RunningStack

RULES = list(rule_table())
SERVICE_HOME = {
    "mesh.analytics.v1.AnalyticsService": "analytics",
    "mesh.auth.v1.AuthService": "analytics",
    "mesh.llm.v1.LlmService": "llm",
    "mesh.notify.v1.NotifyService": "notify",
}
CALLERS = ("none", "expired", "forged", "unknown-key", "viewer", "analyst", "admin")
ROLE_OF = {"viewer": access_pb2.ROLE_VIEWER, "analyst": access_pb2.ROLE_ANALYST, "admin": access_pb2.ROLE_ADMIN}


@dataclass(frozen=True)
class Expectation:
    unauthenticated: bool
    denied: bool


def expected(rule: access_pb2.AccessRule, caller: str) -> Expectation:
    if rule.public:
        return Expectation(False, False)
    if caller not in ROLE_OF:
        return Expectation(True, False)
    return Expectation(False, ROLE_OF[caller] < rule.min_role)


def test_every_rpc_declares_an_access_rule() -> None:
    assert len(RULES) >= 16
    missing = [method for method, rule in RULES if rule is None]
    assert missing == [], f"RPCs without a (mesh.auth.v1.access) rule: {missing}"
    for method, rule in RULES:
        assert rule is not None and (rule.public or rule.min_role != access_pb2.ROLE_UNSPECIFIED), method


@pytest.fixture(scope="module")
def tokens(mesh: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    signer = TokenSigner.from_file(mesh.keys.signing_key, "analytics-mesh", "analytics-mesh")
    admin = Principal("00000000-0000-0000-0000-000000000001", "someone", access_pb2.ROLE_ADMIN)
    expired = signer.mint(admin, dt.timedelta(minutes=5), now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    foreign = KeyFolder(tmp_path_factory.mktemp("foreign-keys"))
    foreign.ensure()
    # Signed by another key but claiming the mesh's key id: the signature fails.
    forged = TokenSigner(load_private_key(foreign.signing_key), "analytics-mesh", "analytics-mesh")
    forged.kid = signer.kid
    unknown = TokenSigner.from_file(foreign.signing_key, "analytics-mesh", "analytics-mesh")
    return {
        "none": None,
        "expired": expired.token,
        "forged": forged.mint(admin, dt.timedelta(minutes=5)).token,
        "unknown-key": unknown.mint(admin, dt.timedelta(minutes=5)).token,
        **{role: mesh.tokens[role] for role in ROLE_OF},
    }


def _method(path: str) -> object:
    service, name = path.strip("/").split("/")
    return descriptor_pool.Default().FindMethodByName(f"{service}.{name}")


def _call_grpc(address: str, path: str, token: str | None) -> grpc.StatusCode:
    method = _method(path)
    request_cls = message_factory.GetMessageClass(method.input_type)  # type: ignore[attr-defined]
    response_cls = message_factory.GetMessageClass(method.output_type)  # type: ignore[attr-defined]
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    with grpc.insecure_channel(address) as channel:
        kind = (method.client_streaming, method.server_streaming)  # type: ignore[attr-defined]
        codecs = {
            "request_serializer": request_cls.SerializeToString,
            "response_deserializer": response_cls.FromString,
        }
        try:
            if kind == (False, False):
                channel.unary_unary(path, **codecs)(request_cls(), timeout=10, metadata=metadata)
            elif kind == (False, True):
                list(channel.unary_stream(path, **codecs)(request_cls(), timeout=3, metadata=metadata))
            elif kind == (True, False):
                channel.stream_unary(path, **codecs)(iter([request_cls()]), timeout=10, metadata=metadata)
            else:
                list(channel.stream_stream(path, **codecs)(iter([request_cls()]), timeout=3, metadata=metadata))
        except grpc.RpcError as error:
            return error.code()  # type: ignore[attr-defined, no-any-return]
    return grpc.StatusCode.OK


def _rest_route(path: str) -> tuple[str, str]:
    rule = _method(path).GetOptions().Extensions[annotations_pb2.http]  # type: ignore[attr-defined]
    verb = rule.WhichOneof("pattern")
    template = getattr(rule, verb)
    return verb.upper(), re.sub(r"\{[^}]+\}", str(uuid.uuid4()), template)


def cases() -> Iterator[object]:
    for path, rule in RULES:
        for caller in CALLERS:
            yield pytest.param(path, rule, caller, id=f"{path.rsplit('.', 1)[-1]}-{caller}")


@pytest.mark.parametrize(("path", "rule", "caller"), list(cases()))
def test_grpc_enforces_the_declared_rule(
    mesh: RunningStack, tokens: dict[str, str | None], path: str, rule: access_pb2.AccessRule, caller: str
) -> None:
    home = SERVICE_HOME[path.strip("/").split("/")[0]]
    code = _call_grpc(getattr(mesh, home), path, tokens[caller])
    want = expected(rule, caller)
    if want.unauthenticated:
        assert code == grpc.StatusCode.UNAUTHENTICATED
    elif want.denied:
        assert code == grpc.StatusCode.PERMISSION_DENIED
    else:
        assert code not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


@pytest.mark.parametrize(("path", "rule", "caller"), list(cases()))
def test_rest_enforces_the_declared_rule(
    mesh: RunningStack, tokens: dict[str, str | None], path: str, rule: access_pb2.AccessRule, caller: str
) -> None:
    verb, url = _rest_route(path)
    token = tokens[caller]
    headers = {"authorization": f"Bearer {token}"} if token else {}
    body: object = {} if verb in ("POST", "PATCH", "PUT") else None
    if _method(path).client_streaming:  # type: ignore[attr-defined]
        body = [{}]  # the transcoder takes a client stream as a JSON array of messages
    # Only the status matters: don't wait for the body of an endless stream (WatchResults).
    with httpx.stream(verb, mesh.rest + url, json=body, headers=headers, timeout=10) as response:
        if not (_method(path).server_streaming and response.status_code == 200):  # type: ignore[attr-defined]
            response.read()
    want = expected(rule, caller)
    if want.unauthenticated:
        assert response.status_code == 401, response.text
        assert response.headers.get("www-authenticate", "").lower().startswith("bearer")
        assert response.json()["code"] == 16
    elif want.denied:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == 7
    else:
        assert response.status_code not in (401, 403), response.text


def test_tokens_of_the_previous_key_stay_valid(mesh: RunningStack) -> None:
    keys: Path = mesh.keys.private_dir
    current = TokenSigner.from_file(mesh.keys.signing_key, "analytics-mesh", "analytics-mesh")
    previous = [p for p in keys.glob("*.pem") if p.stem != current.kid]
    assert previous, "the test stack rotates its key once before starting"
    signer = TokenSigner.from_file(previous[0], "analytics-mesh", "analytics-mesh")
    who = Principal("00000000-0000-0000-0000-000000000002", "old-key-user", access_pb2.ROLE_VIEWER)
    token = signer.mint(who, dt.timedelta(minutes=5)).token
    assert _call_grpc(mesh.analytics, "/mesh.auth.v1.AuthService/WhoAmI", token) == grpc.StatusCode.OK
    response = httpx.get(f"{mesh.rest}/v1/auth/me", headers={"authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200
    assert response.json()["principal"]["name"] == "old-key-user"
