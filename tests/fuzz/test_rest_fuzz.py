"""schemathesis against the running REST API (Envoy), from gen/openapi.json,
with every check of a stateless run: no response is a 5xx; every response
(status, content type, headers, body) is one the document declares; requests
the document calls valid are accepted and the ones it calls invalid refused
(schemathesis' positive and negative data); operations needing a token refuse
calls without one or with a wrong one; a method a path does not have is 405
with ``Allow``.

Signed in as an admin so every operation gets past the role checks. What JSON
Schema cannot say the document says in extensions (``x-mesh-rules``: CEL rules
such as "created_after must be before created_before"; ``x-mesh-opaque``:
tokens only the server hands out; ``x-mesh-key-pattern``: a map's keys;
``x-mesh-required-when-masked``: fields an update mask may only name when
set), and a valid-looking request refused for one of those documented reasons
is accepted as documented — nothing else is.

``MESH_FUZZ_EXAMPLES=500 ./mesh test tests/fuzz/test_rest_fuzz.py`` runs a
large, randomised search instead of the bounded, derandomized CI one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import schemathesis
from openapi_schema_validator import OAS30Validator
from schemathesis.checks import CheckContext
from schemathesis.core.failures import Failure
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.conftest import RunningStack
from tests.fuzz.budget import fuzz_settings

OPENAPI = Path(__file__).resolve().parents[2] / "gen" / "openapi.json"
DOCUMENT: dict[str, Any] = json.loads(OPENAPI.read_text())
LOGOUT = "AuthService_Logout"

schema = (
    schemathesis.openapi.from_path(OPENAPI)
    # WatchResults streams until its limit (an hour): no response would be complete to check.
    .exclude(operation_id="AnalyticsService_WatchResults")
)
# The methods RFC 9110 defines. (QUERY, an Internet-Draft, is refused by Envoy's
# HTTP/1 parser with a 400 before any route is chosen.)
schema.config.phases.coverage.unexpected_methods = {"get", "put", "post", "delete", "options", "patch", "trace"}

# Cases are generated before the session stack exists: they carry this
# stand-in, which each call replaces with a real token.
ADMIN_TOKEN = "ADMIN-TOKEN"


@schema.auth()
class AdminToken:
    """An admin's bearer token (a stand-in until the call)."""

    def get(self, case: schemathesis.Case, context: Any) -> str:
        return ADMIN_TOKEN

    def set(self, case: schemathesis.Case, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def _sign_in(case: schemathesis.Case, mesh: RunningStack) -> None:
    """Put the admin's token in place of the stand-in; signing out gets a session
    of its own (it would otherwise end the one every other test uses)."""
    headers = case.headers or {}
    if headers.get("Authorization") != f"Bearer {ADMIN_TOKEN}":
        return  # a case about authentication itself: no token, or a made-up one
    is_logout = case.operation.definition.raw.get("operationId") == LOGOUT
    token = mesh.login("admin") if is_logout else mesh.tokens["admin"]
    case.headers = {**headers, "Authorization": f"Bearer {token}"}


def _resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = DOCUMENT["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _walk(node: Any, seen: set[int] | None = None) -> Iterator[dict[str, Any]]:
    """Every schema object under ``node``, references followed once."""
    seen = set() if seen is None else seen
    node = _resolve(node)
    if isinstance(node, dict):
        if id(node) in seen:
            return
        seen.add(id(node))
        yield node
        for value in node.values():
            yield from _walk(value, seen)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, seen)


def _camel(proto_name: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), proto_name)


# Rules the services check in code, stated in the fields' descriptions only:
# a cron expression's ranges ascend and its dates exist ("0 0 31 2 *"); a time
# zone is one of the IANA database's (its list depends on the installed tzdata);
# a correlation names the other dataset; an analysis window ends after it
# starts; seasonal periods go with the seasonal method of anomaly detection
# only (the anomalies and report kinds), two full cycles within the window; a
# query's range holds at most 10,000 buckets of its step. (As protovalidate
# rules across fields they would lose the field in the error.) And limits a
# deployment sets: the LLM's models (LLM_MODELS) and answer length
# (LLM_MAX_RESPONSE_TOKENS). And an update without a mask (AIP-134) must set
# some field to a non-default value ("nothing to update" on update_mask). A
# forecast needs a horizon (forecast_horizon, required for that kind only).
SEMANTIC_FIELDS = {
    "forecastHorizon",
    "cron",
    "timeZone",
    "correlateWithDatasetId",
    "windowEnd",
    "seasonalPeriodsSeconds",
    "step",
    "model",
    "maxTokens",
    "updateMask",
}


def _documented_reasons(case: schemathesis.Case) -> tuple[set[str], set[str]]:
    """The rule messages the operation's request documents, and the fields
    (JSON names) whose valid values the document cannot describe."""
    operation = case.operation.definition.raw
    messages: set[str] = set(operation.get("x-mesh-rules", []))
    fields: set[str] = set(SEMANTIC_FIELDS)
    for media in (operation.get("requestBody") or {}).get("content", {}).values():
        if media.get("schema", {}).get("x-mesh-opaque"):
            fields.add(str(operation.get("x-grpc-body", "")).split(".")[-1])
    for node in _walk([operation.get("parameters", []), operation.get("requestBody", {})]):
        messages.update(node.get("x-mesh-rules", []))
        fields.update(node.get("x-mesh-required-when-masked", []))
        # A oneof's rule ("set exactly one of ...") is stated in prose.
        fields.update(node.get("x-oneofs", {}))
        for name, prop in (node.get("properties") or {}).items():
            if any(p.get("x-mesh-opaque") or p.get("x-mesh-key-pattern") for p in _walk(prop)):
                fields.add(name)
        if node.get("in") in ("query", "path") and any(p.get("x-mesh-opaque") for p in _walk(node.get("schema"))):
            fields.add(str(node["name"]).split(".")[-1])
    return messages, fields


def _violations(body: Any) -> list[dict[str, str]] | None:
    if not isinstance(body, dict):
        return None
    for detail in body.get("details") or []:
        if str(detail.get("@type", "")).endswith("google.rpc.BadRequest"):
            return list(detail.get("fieldViolations") or [])
    return None


def _has_empty_key(value: Any) -> bool:
    if isinstance(value, dict):
        return "" in value or any(_has_empty_key(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_empty_key(v) for v in value)
    return False


def _only_documented(case: schemathesis.Case, response: Any) -> bool:
    """A 400 whose every field violation is for a reason the document states."""
    if response.status_code != 400:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    # The document's info: unknown fields are ignored, but a name may not be empty
    # (the transcoder refuses such a body, in words of its own).
    if _has_empty_key(case.body) and not _violations(body):
        return True
    violations = _violations(body)
    if not violations:
        return False
    messages, fields = _documented_reasons(case)
    for violation in violations:
        path = re.sub(r"\[[^\]]*\]", "", violation.get("field", ""))
        if violation.get("description") in messages:
            continue
        if _camel(path.split(".")[-1]) in fields:
            continue
        return False
    return True


def positive_data_accepted_unless_documented(ctx: CheckContext, response: Any, case: schemathesis.Case) -> None:
    """schemathesis' positive_data_acceptance, except a refusal for a reason the
    document states in its extensions (JSON Schema cannot express it)."""
    try:
        positive_data_acceptance(ctx, response, case)
    except Failure:
        if not _only_documented(case, response):
            raise


def _without_null_elements(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_null_elements(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_null_elements(item) for item in value if item is not None]
    return value


def _valid_once_null_elements_skipped(case: schemathesis.Case) -> bool:
    """The document's info: the transcoder skips a list's null elements. A body
    invalid only for those is valid as the service receives it."""
    body = case.body
    if not isinstance(body, dict | list) or _without_null_elements(body) == body:
        return False
    media = (case.operation.definition.raw.get("requestBody") or {}).get("content", {})
    body_schema = (media.get(case.media_type or "application/json") or {}).get("schema")
    if body_schema is None:
        return False
    validator = OAS30Validator({**body_schema, "components": DOCUMENT["components"]})
    return bool(validator.is_valid(_without_null_elements(body)))


def negative_data_rejected_unless_skipped(ctx: CheckContext, response: Any, case: schemathesis.Case) -> None:
    """schemathesis' negative_data_rejection, except a body whose only fault is
    null list elements, which the document says the transcoder skips."""
    try:
        negative_data_rejection(ctx, response, case)
    except Failure:
        if not _valid_once_null_elements_skipped(case):
            raise


@schema.parametrize()
@fuzz_settings(default_examples=8)
def test_rest_api_never_fails_and_matches_its_document(case: schemathesis.Case, mesh: RunningStack) -> None:
    _sign_in(case, mesh)
    response = case.call(base_url=mesh.rest, timeout=30)
    case.validate_response(
        response,
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
        additional_checks=[positive_data_accepted_unless_documented, negative_data_rejected_unless_skipped],
        transport_kwargs={"base_url": mesh.rest, "timeout": 30},
    )
