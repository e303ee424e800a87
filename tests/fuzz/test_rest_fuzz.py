"""schemathesis against the running REST API (Envoy), from gen/openapi.json,
signed in as an admin so every operation gets past the edge: no response is
a 5xx, and every response (its status, content type and body) is one the
document declares. Valid and invalid requests both (schemathesis' positive
and negative data)."""

from __future__ import annotations

from pathlib import Path

import schemathesis
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
# The characters gRPC allows in a metadata key (HTTP allows more, e.g. "~" and "|").

schema = (
    schemathesis.openapi.from_path(OPENAPI)
    # WatchResults never ends: it streams until the client goes away, so no
    # response would ever be complete to check.
    .exclude(operation_id="AnalyticsService_WatchResults")
)


@schema.parametrize()
@fuzz_settings(default_examples=8)
def test_rest_api_never_fails_and_matches_its_document(case: schemathesis.Case, mesh: RunningStack) -> None:
    response = case.call(base_url=mesh.rest, headers={"authorization": f"Bearer {mesh.tokens['admin']}"}, timeout=30)
    case.validate_response(response, checks=CHECKS)
