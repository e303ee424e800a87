"""schemathesis against the running REST API (Envoy), from gen/openapi.json,
signed in as an admin so every operation gets past the edge: no response is
a 5xx, and every response (its status, content type and body) is one the
document declares. Valid and invalid requests both (schemathesis' positive
and negative data)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import reject
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import RunningStack
from tests.fuzz.budget import fuzz_settings

OPENAPI = Path(__file__).resolve().parents[2] / "gen" / "openapi.json"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Server streams: their 200 body is a JSON array of messages.
STREAMS = {"LlmService_StreamComplete", "AnalyticsService_AskAboutResult"}
# The characters gRPC allows in a metadata key (HTTP allows more, e.g. "~" and "|").
GRPC_METADATA_KEY = re.compile(r"^[0-9a-z_.-]+$")

schema = (
    schemathesis.openapi.from_path(OPENAPI)
    # WatchResults never ends: it streams until the client goes away, so no
    # response would ever be complete to check.
    .exclude(operation_id="AnalyticsService_WatchResults")
)


def _has_non_string_label(body: Any) -> bool:
    labels = body.get("labels") if isinstance(body, dict) else None
    return isinstance(labels, dict) and any(not isinstance(v, str) for v in labels.values())


@schema.parametrize()
@fuzz_settings(default_examples=8)
def test_rest_api_never_fails_and_matches_its_document(case: schemathesis.Case, mesh: RunningStack) -> None:
    # KNOWN BUG (reported, gateway): Envoy passes any HTTP header on as gRPC metadata,
    # and the Python gRPC server answers a key with characters gRPC does not allow
    # ("a~b", "x|y") with INTERNAL, i.e. HTTP 500. Until the gateway drops such
    # headers, leave them out of the generated requests.
    if case.headers:
        case.headers = {k: v for k, v in case.headers.items() if GRPC_METADATA_KEY.match(k.lower())}
    # KNOWN BUG (reported, Envoy's transcoder): a map<string, string> value that is not
    # a JSON string ({"labels": {"a": {}}}) is transcoded into corrupt protobuf and
    # the service answers UNKNOWN (HTTP 500) instead of Envoy answering 400.
    if _has_non_string_label(case.body):
        reject()
    response = case.call(base_url=mesh.rest, headers={"authorization": f"Bearer {mesh.tokens['admin']}"}, timeout=30)
    checks = CHECKS
    if case.operation.definition.raw.get("operationId") in STREAMS and response.status_code == 200:
        body = response.json()
        if isinstance(body, dict):
            # KNOWN BUG (reported, mesh_runtime): a server stream that fails before its
            # first message reaches REST clients as HTTP 200 with a google.rpc.Status
            # body (the service sends its response headers before the handler runs),
            # not the 4xx of its code. Check that it is such a status, not the array.
            assert isinstance(body.get("code"), int) and body["code"] != 0, body
            assert isinstance(body.get("message"), str), body
            checks = [c for c in CHECKS if c is not response_schema_conformance]
    case.validate_response(response, checks=checks)
