"""The OpenAPI document describes the REST API Envoy transcodes: valid OpenAPI 3,
every RPC of every mesh service at its binding, proto3 JSON names and types,
required fields, constraints, errors and security."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from gateway.openapi import openapi_document
from gateway.proto_json_schema import integer_pattern
from local_stack.paths import DESCRIPTOR_SET
from mesh_cli.codegen import OPENAPI
from mesh_runtime.auth import rule_table


@pytest.fixture(scope="module")
def descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())


@pytest.fixture(scope="module")
def document(descriptor_set: descriptor_pb2.FileDescriptorSet) -> dict[str, Any]:
    return openapi_document(descriptor_set)


def schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = document["components"]["schemas"][name]
    return found


def operation(document: dict[str, Any], grpc_method: str) -> dict[str, Any]:
    for item in document["paths"].values():
        for op in item.values():
            if op["x-grpc-method"] == grpc_method:
                return op  # type: ignore[no-any-return]
    raise AssertionError(f"{grpc_method} is not in the document")


def _shape(path: str) -> str:
    """A path template with its variable names blanked (``{dataset_id}`` -> ``{}``)."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_the_document_is_valid_openapi_3(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.")


def test_the_committed_document_is_valid_openapi_3() -> None:
    validate(json.loads(OPENAPI.read_text()))


def test_the_validator_rejects_a_broken_document(document: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(document))
    first = next(iter(broken["paths"].values()))
    next(iter(first.values()))["responses"] = "none"
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_every_rpc_of_every_mesh_service_is_at_its_binding(
    descriptor_set: descriptor_pb2.FileDescriptorSet, document: dict[str, Any]
) -> None:
    paths = {_shape(path): item for path, item in document["paths"].items()}
    count = 0
    for file in descriptor_set.file:
        if not file.package.startswith("mesh."):
            continue
        for service in file.service:
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                verb = rule.WhichOneof("pattern")
                item = paths.get(_shape(getattr(rule, verb)), {})
                assert verb in item, f"{service.name}.{method.name}: {verb.upper()} {getattr(rule, verb)} missing"
                assert item[verb]["x-grpc-method"] == f"/{file.package}.{service.name}/{method.name}"
                count += 1
    operations = sum(len(item) for item in document["paths"].values())
    assert operations == count
    assert count >= 20


def test_path_variables_use_json_names(document: dict[str, Any]) -> None:
    append = document["paths"]["/v1/datasets/{datasetId}/points:append"]["post"]
    assert append["parameters"] == [{**append["parameters"][0], "name": "datasetId", "in": "path", "required": True}]
    assert append["parameters"][0]["schema"]["format"] == "uuid"
    # body "*": the rest of the request, without the path variable.
    body = append["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"timestampsUs", "values"}


def test_fields_are_proto3_json(document: dict[str, Any]) -> None:
    dataset = schema(document, "mesh.analytics.v1.Dataset")["properties"]
    assert {"pointCount", "firstPointTime", "createTime"} <= set(dataset)
    assert "point_count" not in dataset
    # A 64-bit integer is printed as a string and read as a string or a number.
    as_text, as_number = dataset["pointCount"]["anyOf"]
    assert as_text["type"] == "string" and as_text["format"] == "int64"
    assert re.fullmatch(as_text["pattern"], "12") and not re.fullmatch(as_text["pattern"], "1e3")
    assert as_number["type"] == "integer"
    assert dataset["pointCount"]["readOnly"] is True
    assert dataset["createTime"]["type"] == "string" and dataset["createTime"]["format"] == "date-time"
    assert dataset["labels"]["type"] == "object"
    assert dataset["labels"]["additionalProperties"]["maxLength"] == 256
    assert dataset["labels"]["maxProperties"] == 64
    assert dataset["labels"]["x-mesh-key-pattern"] == "^[a-z][a-z0-9_.-]*$"
    assert dataset["name"]["maxLength"] == 128 and dataset["name"]["pattern"].endswith("[A-Za-z0-9._-]*$")
    listed = schema(document, "mesh.analytics.v1.ListDatasetsResponse")["properties"]
    # A list; proto3 JSON also reads a single value as a list of one.
    item = {"$ref": "#/components/schemas/mesh.analytics.v1.Dataset"}
    assert listed["datasets"]["anyOf"] == [{"type": "array", "items": item}, item]
    assert listed["totalSize"]["anyOf"][0]["type"] == "string"


def test_enums_are_names_or_numbers(document: dict[str, Any]) -> None:
    # Printed as names; proto3 JSON reads a number too.
    names, numbers = schema(document, "mesh.auth.v1.Role")["anyOf"]
    assert names == {"type": "string", "enum": ["ROLE_UNSPECIFIED", "ROLE_VIEWER", "ROLE_ANALYST", "ROLE_ADMIN"]}
    assert numbers == {"type": "integer", "enum": [0, 1, 2, 3]}
    # A rule excluding the zero value (not_in: [0]) narrows the enum inline, both forms.
    user_role = schema(document, "mesh.auth.v1.User")["properties"]["role"]
    assert [form["enum"] for form in user_role["anyOf"]] == [["ROLE_VIEWER", "ROLE_ANALYST", "ROLE_ADMIN"], [1, 2, 3]]


def test_required_fields_and_query_parameters(document: dict[str, Any]) -> None:
    assert schema(document, "mesh.analytics.v1.Dataset")["required"] == ["name"]
    create_user = operation(document, "/mesh.auth.v1.AuthService/CreateUser")
    body = create_user["requestBody"]["content"]["application/json"]["schema"]
    # field_behavior REQUIRED and protovalidate required; a password's min_len refuses the empty one.
    assert body["required"] == ["user", "password"]
    assert body["properties"]["password"]["minLength"] == 12
    update = operation(document, "/mesh.analytics.v1.AnalyticsService/UpdateDataset")
    mask = next(p for p in update["parameters"] if p["name"] == "updateMask")
    # Optional (AIP-134): without it the fields set in the body are updated.
    assert mask["in"] == "query" and not mask.get("required")
    assert mask["schema"]["type"] == "string"  # FieldMask: comma-separated paths
    listing = operation(document, "/mesh.analytics.v1.AnalyticsService/ListDatasets")
    page_size = next(p for p in listing["parameters"] if p["name"] == "pageSize")
    assert page_size["schema"] == {**page_size["schema"], "type": "integer", "minimum": 0, "maximum": 1000}
    assert "required" not in page_size


def test_descriptions_come_from_proto_comments(document: dict[str, Any]) -> None:
    listing = operation(document, "/mesh.analytics.v1.AnalyticsService/ListDatasets")
    assert listing["summary"] == "Lists datasets ordered by name, one page at a time."
    tags = {tag["name"]: tag for tag in document["tags"]}
    assert "time-series datasets" in tags["AnalyticsService"]["description"]
    dataset = schema(document, "mesh.analytics.v1.Dataset")
    assert dataset["description"] and dataset["properties"]["unit"]["description"]


def test_client_streams_are_json_arrays_server_streams_json_lines(document: dict[str, Any]) -> None:
    ingest = operation(document, "/mesh.analytics.v1.AnalyticsService/IngestPoints")
    body = ingest["requestBody"]["content"]["application/json"]["schema"]
    assert body["type"] == "array"
    assert "timestampsUs" in body["items"]["properties"]
    stream = operation(document, "/mesh.llm.v1.LlmService/StreamComplete")
    ok = stream["responses"]["200"]
    # One message a line, as it arrives: the schema is that of a line.
    assert list(ok["content"]) == ["application/x-ndjson"]
    assert ok["content"]["application/x-ndjson"]["schema"] == {
        "$ref": "#/components/schemas/mesh.llm.v1.StreamCompleteResponse"
    }
    assert "newline-delimited JSON" in ok["description"] and stream["x-mesh-stream"] == "ndjson"
    watch = operation(document, "/mesh.analytics.v1.AnalyticsService/WatchResults")
    assert list(watch["responses"]["200"]["content"]) == ["application/x-ndjson"]


def test_http_bodies_are_raw(document: dict[str, Any]) -> None:
    # google.api.HttpBody: Envoy passes the body through as it is, typed by its Content-Type.
    upload = operation(document, "/mesh.analytics.v1.AnalyticsService/UploadCsv")
    assert list(upload["requestBody"]["content"]) == ["*/*"]
    assert upload["requestBody"]["content"]["*/*"]["schema"]["format"] == "binary"
    assert upload["x-grpc-body"] == "csv"
    export = operation(document, "/mesh.analytics.v1.AnalyticsService/ExportPoints")
    ok = export["responses"]["200"]
    assert ok["content"] == {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    assert "piece by piece" in ok["description"]
    # A comment line meant for buf does not reach the docs.
    assert "buf:lint" not in export["description"] and "text/csv" in export["description"]


def test_oneofs_allow_one_member(document: dict[str, Any]) -> None:
    schedule = schema(document, "mesh.analytics.v1.Schedule")
    assert schedule["x-oneofs"] == {"trigger": ["intervalSeconds", "cron"]}
    assert {"not": {"required": ["intervalSeconds", "cron"]}} in schedule["allOf"]


def test_errors_are_google_rpc_status(document: dict[str, Any]) -> None:
    for item in document["paths"].values():
        for op in item.values():
            error = op["responses"]["default"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/google.rpc.Status"}
    status = schema(document, "google.rpc.Status")["properties"]
    assert set(status) == {"code", "message", "details"}
    assert status["details"]["anyOf"][0]["items"]["properties"]["@type"]["type"] == "string"


def test_bearer_token_on_every_operation_but_the_public_ones(document: dict[str, Any]) -> None:
    public = {path for path, rule in rule_table() if rule is not None and rule.public}
    assert public, "the rule table names public RPCs (sign-in)"
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    for item in document["paths"].values():
        for op in item.values():
            if op["x-grpc-method"] in public:
                assert op["security"] == [], op["operationId"]
            else:
                assert op["security"] == [{"bearerAuth": []}], op["operationId"]
    assert operation(document, "/mesh.auth.v1.AuthService/Login")["security"] == []


def _extra_service_file() -> descriptor_pb2.FileDescriptorProto:
    """A service the mesh does not have yet: nested messages, a oneof, a server stream."""
    fd = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="mesh/extra/v1/extra.proto",
        package="mesh.extra.v1",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )
    item = file.message_type.add(name="Item")
    item.field.add(name="item_id", number=1, type=fd.TYPE_STRING, label=fd.LABEL_OPTIONAL, json_name="itemId")
    request = file.message_type.add(name="WatchItemsRequest")
    request.field.add(name="shelf_name", number=1, type=fd.TYPE_STRING, label=fd.LABEL_OPTIONAL, json_name="shelfName")
    request.field.add(
        name="since",
        number=2,
        type=fd.TYPE_MESSAGE,
        label=fd.LABEL_OPTIONAL,
        type_name=".google.protobuf.Timestamp",
        json_name="since",
    )
    reply = file.message_type.add(name="WatchItemsResponse")
    reply.oneof_decl.add(name="change")
    reply.field.add(
        name="added",
        number=1,
        type=fd.TYPE_MESSAGE,
        label=fd.LABEL_OPTIONAL,
        type_name=".mesh.extra.v1.Item",
        oneof_index=0,
        json_name="added",
    )
    reply.field.add(
        name="removed_id", number=2, type=fd.TYPE_STRING, label=fd.LABEL_OPTIONAL, oneof_index=0, json_name="removedId"
    )
    reply.field.add(
        name="items",
        number=3,
        type=fd.TYPE_MESSAGE,
        label=fd.LABEL_REPEATED,
        type_name=".mesh.extra.v1.Item",
        json_name="items",
    )
    service = file.service.add(name="ExtraService")
    method = service.method.add(
        name="WatchItems",
        input_type=".mesh.extra.v1.WatchItemsRequest",
        output_type=".mesh.extra.v1.WatchItemsResponse",
        server_streaming=True,
    )
    method.options.Extensions[annotations_pb2.http].get = "/v1/shelves/{shelf_name}/items:watch"
    return file


def test_a_new_service_is_covered_without_changes(descriptor_set: descriptor_pb2.FileDescriptorSet) -> None:
    extended = descriptor_pb2.FileDescriptorSet()
    extended.CopyFrom(descriptor_set)
    extended.file.append(_extra_service_file())
    document = openapi_document(extended)
    validate(document)
    op = document["paths"]["/v1/shelves/{shelfName}/items:watch"]["get"]
    assert op["security"] == [{"bearerAuth": []}]  # no declared rule: not public
    assert [p["name"] for p in op["parameters"]] == ["shelfName", "since"]
    assert op["parameters"][1]["schema"]["format"] == "date-time"
    reply = schema(document, "mesh.extra.v1.WatchItemsResponse")
    assert reply["x-oneofs"] == {"change": ["added", "removedId"]}
    assert reply["properties"]["items"]["anyOf"][0]["items"] == {"$ref": "#/components/schemas/mesh.extra.v1.Item"}
    assert "itemId" in schema(document, "mesh.extra.v1.Item")["properties"]


def test_two_rpcs_on_one_route_are_refused(descriptor_set: descriptor_pb2.FileDescriptorSet) -> None:
    extended = descriptor_pb2.FileDescriptorSet()
    extended.CopyFrom(descriptor_set)
    extra = _extra_service_file()
    clash = extra.service[0].method.add()
    clash.CopyFrom(extra.service[0].method[0])
    clash.name = "WatchItemsAgain"
    # The same route as WatchItems.
    clash.options.Extensions[annotations_pb2.http].get = "/v1/shelves/{shelf_name}/items:watch"
    extended.file.append(extra)
    with pytest.raises(ValueError, match="bound twice: /mesh.extra.v1.ExtraService/WatchItems and"):
        openapi_document(extended)


# What the server enforces, stated (issue 24: 29 operations refused requests for
# reasons the document did not show).


def test_a_field_whose_empty_value_is_refused_is_required(document: dict[str, Any]) -> None:
    # Leaving a field out of proto3 JSON sends its zero value, which these rules refuse.
    login = operation(document, "/mesh.auth.v1.AuthService/Login")["requestBody"]["content"]["application/json"]
    assert set(login["schema"]["required"]) == {"username", "password"}
    refresh = operation(document, "/mesh.auth.v1.AuthService/Refresh")["requestBody"]
    assert refresh["required"] is True
    assert refresh["content"]["application/json"]["schema"]["required"] == ["refreshToken"]
    # A body whose fields may all be left out may itself be left out.
    revoke = operation(document, "/mesh.auth.v1.AuthService/RevokeApiKey")
    assert revoke.get("requestBody", {"required": False})["required"] is False


def test_ids_are_uuids_and_strings_hold_no_nul(document: dict[str, Any]) -> None:
    get = operation(document, "/mesh.analytics.v1.AnalyticsService/GetDataset")
    assert get["parameters"][0]["schema"]["format"] == "uuid"
    description = schema(document, "mesh.analytics.v1.Dataset")["properties"]["description"]
    assert not re.search(description["pattern"], "a\x00b") and re.search(description["pattern"], "ab")


def test_an_update_mask_names_the_fields_an_update_may_change(document: dict[str, Any]) -> None:
    update = operation(document, "/mesh.analytics.v1.AnalyticsService/UpdateDataset")
    mask = next(p for p in update["parameters"] if p["name"] == "updateMask")["schema"]["pattern"]
    assert re.fullmatch(mask, "name") and re.fullmatch(mask, "description,labels")
    assert not re.fullmatch(mask, "") and not re.fullmatch(mask, "pointCount") and not re.fullmatch(mask, "labels.a")
    assert update["x-mesh-update-mask"] == "updateMask"
    # The body of an update is the resource, partial: a field REQUIRED on create may be left out.
    body = update["requestBody"]["content"]["application/json"]["schema"]
    assert "name" not in body.get("required", [])
    assert body["x-mesh-required-when-masked"] == ["name"]
    # On create it must be there, and not empty.
    created = schema(document, "mesh.analytics.v1.Dataset")
    assert "name" in created["required"] and created["properties"]["name"]["minLength"] == 1


def test_rules_json_schema_cannot_say_are_named(document: dict[str, Any]) -> None:
    listing = operation(document, "/mesh.analytics.v1.AnalyticsService/ListResults")
    assert "created_after must be before created_before" in listing["x-mesh-rules"]
    page_token = next(p for p in listing["parameters"] if p["name"] == "pageToken")
    assert page_token["schema"]["x-mesh-opaque"] is True
    labels = schema(document, "mesh.analytics.v1.Dataset")["properties"]["labels"]
    assert labels["x-mesh-key-pattern"] == "^[a-z][a-z0-9_.-]*$"


@pytest.mark.parametrize(("low", "high"), [(0, 1000), (1, 31536000), (-50, 50), (0, 3153600000), (7, 7)])
def test_integer_patterns_match_exactly_their_range(low: int, high: int) -> None:
    pattern = re.compile(integer_pattern(low, high))
    probes = {low - 1, low, high, high + 1, (low + high) // 2, 0, -1, 10**12}
    probes |= {low + step for step in range(0, min(high - low, 2000), 7)}
    for value in probes:
        assert bool(pattern.fullmatch(str(value))) == (low <= value <= high), value
    assert pattern.fullmatch(f"+{high}" if high >= 0 else str(high))
    assert not pattern.fullmatch("1e3") and not pattern.fullmatch(" 5") and not pattern.fullmatch("")


def test_a_duration_states_its_bounds(document: dict[str, Any]) -> None:
    retention = schema(document, "mesh.analytics.v1.Dataset")["properties"]["retention"]
    pattern = re.compile(retention["pattern"])
    assert pattern.fullmatch("60s") and pattern.fullmatch("86400.5s") and pattern.fullmatch("3155760000s")
    assert not pattern.fullmatch("59.9s") and not pattern.fullmatch("3155760000.5s") and not pattern.fullmatch("1h")
