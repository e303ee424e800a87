"""What Envoy answers at the edge, through the session stack's Envoy: standard
clients' query strings, methods a path does not have, bodies too large or
malformed, security headers, and what its access log keeps."""

from __future__ import annotations

import secrets
import socket
import struct
from typing import Any

import grpc
import httpx
import pytest
import requests

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as analytics_grpc
from mesh.analytics.v1 import dataset_pb2
from tests.conftest import RunningStack
from tests.eventually import eventually
from tests.gateway.test_grpc_web import CONTENT_TYPE, grpc_web_call

# Envoy's limit: the largest message the services accept (mesh_runtime.server.MAX_MESSAGE_BYTES).
LIMIT = 64 * 1024 * 1024


def _auth(mesh: RunningStack, role: str = "analyst") -> dict[str, str]:
    return {"authorization": f"Bearer {mesh.tokens[role]}"}


def _is_status(body: Any, code: int) -> bool:
    return isinstance(body, dict) and body.get("code") == code and isinstance(body.get("message"), str)


def test_a_plus_in_a_query_parameter_is_a_space(mesh: RunningStack) -> None:
    # requests (like browsers' URLSearchParams and curl --data-urlencode) sends the space as "+".
    prepared = requests.Request("GET", f"{mesh.rest}/v1/results", params={"orderBy": "create_time desc"}).prepare()
    assert prepared.url is not None and "orderBy=create_time+desc" in prepared.url
    response = requests.get(
        f"{mesh.rest}/v1/results", params={"orderBy": "create_time desc"}, headers=_auth(mesh), timeout=10
    )
    assert response.status_code == 200, response.text
    assert "results" in response.json()


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("TRACE", "/v1/datasets", {"GET", "POST"}),
        ("PUT", "/v1/datasets/00000000-0000-4000-8000-000000000000", {"GET", "PATCH", "DELETE"}),
        ("DELETE", "/v1/datasets:ingest", {"POST"}),
        ("GET", "/v1/results/00000000-0000-4000-8000-000000000000:ask", {"POST"}),
    ],
)
def test_a_method_a_path_does_not_have_is_405_with_allow(
    method: str, path: str, allowed: set[str], mesh: RunningStack
) -> None:
    response = httpx.request(method, f"{mesh.rest}{path}", headers=_auth(mesh), timeout=10)
    assert response.status_code == 405, response.text
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed
    assert response.headers["content-type"] == "application/json"
    assert _is_status(response.json(), grpc.StatusCode.UNIMPLEMENTED.value[0])


def test_the_methods_a_path_has_still_work(mesh: RunningStack) -> None:
    # The 405 routes must not catch a binding's own method (nor a custom verb's).
    listed = httpx.get(f"{mesh.rest}/v1/datasets", headers=_auth(mesh), timeout=10)
    assert listed.status_code == 200, listed.text
    missing = httpx.post(
        f"{mesh.rest}/v1/results/00000000-0000-4000-8000-000000000000:ask",
        json={"question": "peak?"},
        headers=_auth(mesh),
        timeout=10,
    )
    assert missing.status_code == 404, missing.text


def test_a_body_over_the_limit_is_413_naming_it(mesh: RunningStack) -> None:
    # 101 MB of valid JSON: the services refused it as RESOURCE_EXHAUSTED, which REST clients read as 429.
    body = b'{"name": "too-big", "description": "' + b"a" * 101_000_000 + b'"}'
    response = httpx.post(
        f"{mesh.rest}/v1/datasets",
        content=body,
        headers={**_auth(mesh), "content-type": "application/json"},
        timeout=120,
    )
    assert response.status_code == 413, response.text[:300]
    status = response.json()
    assert _is_status(status, grpc.StatusCode.INVALID_ARGUMENT.value[0])
    assert str(LIMIT) in status["message"] and "64 MiB" in status["message"]


def test_a_grpc_message_over_the_limit_is_invalid_argument_naming_it(mesh: RunningStack) -> None:
    request = pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name="too-big", description="a" * (LIMIT + 1000)))
    options = [("grpc.max_send_message_length", 2 * LIMIT)]
    with grpc.insecure_channel(mesh.envoy, options=options) as channel, pytest.raises(grpc.RpcError) as caught:
        analytics_grpc.AnalyticsServiceStub(channel).CreateDataset(
            request, timeout=60, metadata=[("authorization", f"Bearer {mesh.tokens['analyst']}")]
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(LIMIT) in (caught.value.details() or "")


def _raw_http(mesh: RunningStack, request: bytes, timeout: float = 20) -> bytes:
    """Send ``request`` as is; everything Envoy answers until it closes or goes quiet."""
    received = b""
    with socket.create_connection(("127.0.0.1", mesh.settings.envoy_port), timeout=timeout) as sock:
        sock.sendall(request)
        while b"\r\n\r\n" not in received or not _complete(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def _complete(response: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


def test_an_unsupported_transfer_encoding_is_a_json_error(mesh: RunningStack) -> None:
    token = mesh.tokens["analyst"]
    response = _raw_http(
        mesh,
        (
            "POST /v1/datasets HTTP/1.1\r\nHost: mesh\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked, identity\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
        ).encode(),
    )
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 501"), head
    assert b"content-type: application/json" in head.lower()
    assert b'"code":12' in body and b'"message"' in body


def test_a_truncated_grpc_web_frame_is_refused_at_once(mesh: RunningStack) -> None:
    # The frame says 100 bytes and brings 10: the service would wait for the rest
    # until the connection's idle timeout (5 minutes, then a 504).
    message = pb.GetDatasetRequest(id="00000000-0000-4000-8000-000000000000").SerializeToString()[:10]
    frame = b"\x00" + struct.pack(">I", 100) + message
    token = mesh.tokens["analyst"]
    response = _raw_http(
        mesh,
        (
            "POST /mesh.analytics.v1.AnalyticsService/GetDataset HTTP/1.1\r\nHost: mesh\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: {CONTENT_TYPE}\r\nX-Grpc-Web: 1\r\n"
            f"Content-Length: {len(frame)}\r\n\r\n"
        ).encode()
        + frame,
        timeout=20,
    )
    head = response.partition(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 200"), head
    assert b"grpc-status: 3" in head
    assert b"truncated" in head


def test_a_whole_grpc_web_frame_still_goes_through(mesh: RunningStack) -> None:
    request = pb.ListDatasetsRequest(page_size=1).SerializeToString()
    _, messages, trailers = grpc_web_call(
        mesh, "mesh.analytics.v1.AnalyticsService/ListDatasets", request, token=mesh.tokens["viewer"]
    )
    assert trailers["grpc-status"] == "0" and len(messages) == 1


def test_rest_answers_carry_nosniff_and_token_answers_no_store(mesh: RunningStack) -> None:
    with httpx.Client(base_url=mesh.rest, timeout=10) as client:
        answers = {
            "ok": client.get("/v1/datasets", headers=_auth(mesh)),
            "no token": client.get("/v1/datasets"),
            "no route": client.get("/nowhere"),
            "docs": client.get("/docs/openapi.json"),
        }
        username, password = mesh.credentials["viewer"]
        login = client.post("/v1/auth:login", json={"username": username, "password": password})
    for name, response in answers.items():
        assert response.headers.get("x-content-type-options") == "nosniff", name
    assert login.status_code == 200 and login.json()["session"]["accessToken"]
    assert login.headers.get("x-content-type-options") == "nosniff"
    assert login.headers.get("cache-control") == "no-store"


def test_a_401_from_a_service_carries_a_bearer_challenge(mesh: RunningStack) -> None:
    # Envoy's own 401 (no token) has one; the service's (wrong password) did not.
    wrong = httpx.post(
        f"{mesh.rest}/v1/auth:login",
        json={"username": f"nobody-{secrets.token_hex(4)}", "password": "wrong password"},
        timeout=10,
    )
    assert wrong.status_code == 401, wrong.text
    assert wrong.headers.get("www-authenticate", "").startswith("Bearer realm=")
    edge = httpx.get(f"{mesh.rest}/v1/datasets", timeout=10)
    assert edge.status_code == 401 and edge.headers["www-authenticate"].startswith("Bearer realm=")


def test_the_access_log_keeps_no_query_strings(mesh: RunningStack) -> None:
    # The unsubscribe link's token travels in the query string.
    token = secrets.token_urlsafe(24)
    request_id = f"edge-log-{secrets.token_hex(6)}"
    response = httpx.get(
        f"{mesh.rest}/v1/unsubscribe", params={"token": token}, headers={"x-request-id": request_id}, timeout=10
    )
    assert response.status_code == 400  # not a genuine token; the line is logged all the same
    log = mesh.logs() / "envoy.log"
    eventually(lambda: request_id in log.read_text(), 30, "Envoy's access log line of the call")
    line = next(line for line in log.read_text().splitlines() if request_id in line)
    assert "/v1/unsubscribe" in line
    assert token not in log.read_text()
