"""grpc-web through Envoy: a browser-style request (HTTP/1.1, framed protobuf,
trailers in the body) reaches the services, with CORS for the web app."""

from __future__ import annotations

import secrets
import struct

import httpx

from mesh.analytics.v1 import analytics_service_pb2 as analytics_pb2
from mesh.auth.v1 import auth_service_pb2 as auth_pb2
from tests.conftest import RunningStack

CONTENT_TYPE = "application/grpc-web+proto"
_TRAILERS_FLAG = 0x80


def frame(message: bytes) -> bytes:
    """One grpc-web data frame: flag 0, 4-byte big-endian length, the message."""
    return b"\x00" + struct.pack(">I", len(message)) + message


def unframe(body: bytes) -> tuple[list[bytes], dict[str, str]]:
    """The messages and the trailers of a grpc-web response body."""
    messages: list[bytes] = []
    trailers: dict[str, str] = {}
    offset = 0
    while offset < len(body):
        flag, length = body[offset], struct.unpack(">I", body[offset + 1 : offset + 5])[0]
        payload = body[offset + 5 : offset + 5 + length]
        assert len(payload) == length, "truncated frame"
        offset += 5 + length
        if flag & _TRAILERS_FLAG:
            for line in payload.decode().split("\r\n"):
                if line:
                    name, _, value = line.partition(":")
                    trailers[name.strip().lower()] = value.strip()
        else:
            messages.append(payload)
    return messages, trailers


def grpc_web_call(
    mesh: RunningStack, method: str, request: bytes, token: str | None = None, origin: str | None = None
) -> tuple[httpx.Response, list[bytes], dict[str, str]]:
    headers = {"content-type": CONTENT_TYPE, "x-grpc-web": "1", "accept": CONTENT_TYPE}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if origin:
        headers["origin"] = origin
    with httpx.Client(http1=True, http2=False, timeout=10) as client:
        response = client.post(f"{mesh.rest}/{method}", content=frame(request), headers=headers)
    messages, trailers = unframe(response.content)
    # A trailers-only reply carries the status in the headers instead.
    for name in ("grpc-status", "grpc-message"):
        if name in response.headers and name not in trailers:
            trailers[name] = response.headers[name]
    return response, messages, trailers


def test_list_datasets_over_grpc_web(mesh: RunningStack, rest: httpx.Client) -> None:
    name = f"grpc-web-{secrets.token_hex(4)}"
    assert rest.post("/v1/datasets", json={"name": name, "unit": "ms"}).status_code == 200
    request = analytics_pb2.ListDatasetsRequest(page_size=1000).SerializeToString()
    response, messages, trailers = grpc_web_call(
        mesh, "mesh.analytics.v1.AnalyticsService/ListDatasets", request, token=mesh.tokens["viewer"]
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(CONTENT_TYPE)
    assert trailers["grpc-status"] == "0", trailers
    assert len(messages) == 1
    reply = analytics_pb2.ListDatasetsResponse.FromString(messages[0])
    assert name in [d.name for d in reply.datasets]
    assert reply.total_size >= 1


def test_grpc_web_without_a_token_is_refused(mesh: RunningStack) -> None:
    request = analytics_pb2.ListDatasetsRequest().SerializeToString()
    _, messages, trailers = grpc_web_call(mesh, "mesh.analytics.v1.AnalyticsService/ListDatasets", request)
    assert messages == []
    assert trailers["grpc-status"] == "16", trailers  # UNAUTHENTICATED


def test_public_rpc_over_grpc_web_needs_no_token(mesh: RunningStack) -> None:
    # Login is public: the call passes the edge and the service answers it
    # (here: its validation refuses an empty username).
    request = auth_pb2.LoginRequest(username="", password="x").SerializeToString()
    _, messages, trailers = grpc_web_call(mesh, "mesh.auth.v1.AuthService/Login", request)
    assert messages == []
    assert trailers["grpc-status"] == "3", trailers  # INVALID_ARGUMENT, from the service
    username, password = mesh.credentials["viewer"]
    good = auth_pb2.LoginRequest(username=username, password=password).SerializeToString()
    _, messages, trailers = grpc_web_call(mesh, "mesh.auth.v1.AuthService/Login", good)
    assert trailers["grpc-status"] == "0", trailers
    assert auth_pb2.LoginResponse.FromString(messages[0]).session.access_token


def test_the_web_origin_may_call_grpc_web(mesh: RunningStack) -> None:
    origin = f"http://127.0.0.1:{mesh.settings.web_port}"
    preflight = httpx.options(
        f"{mesh.rest}/mesh.analytics.v1.AnalyticsService/ListDatasets",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type,x-grpc-web",
        },
        timeout=10,
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "x-grpc-web" in preflight.headers["access-control-allow-headers"]
    request = analytics_pb2.ListDatasetsRequest().SerializeToString()
    response, _, trailers = grpc_web_call(
        mesh, "mesh.analytics.v1.AnalyticsService/ListDatasets", request, mesh.tokens["viewer"], origin
    )
    assert trailers["grpc-status"] == "0"
    assert response.headers["access-control-allow-origin"] == origin
    assert "grpc-status" in response.headers["access-control-expose-headers"]
    # Another origin gets no CORS grant.
    other = httpx.options(
        f"{mesh.rest}/mesh.analytics.v1.AnalyticsService/ListDatasets",
        headers={"origin": "http://evil.example", "access-control-request-method": "POST"},
        timeout=10,
    )
    assert "access-control-allow-origin" not in other.headers
