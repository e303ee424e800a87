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
    assert dataset["pointCount"]["type"] == "string" and dataset["pointCount"]["format"] == "int64"
    assert dataset["pointCount"]["readOnly"] is True
    assert dataset["createTime"]["type"] == "string" and dataset["createTime"]["format"] == "date-time"
    assert dataset["labels"]["type"] == "object"
    assert dataset["labels"]["additionalProperties"]["maxLength"] == 256
    assert dataset["labels"]["maxProperties"] == 64
    assert dataset["name"]["maxLength"] == 128 and dataset["name"]["pattern"].endswith("[A-Za-z0-9._-]*$")
    listed = schema(document, "mesh.analytics.v1.ListDatasetsResponse")["properties"]
    assert listed["datasets"] == {
        **listed["datasets"],
        "type": "array",
        "items": {"$ref": "#/components/schemas/mesh.analytics.v1.Dataset"},
    }
    assert listed["totalSize"]["type"] == "string"


def test_enums_are_names(document: dict[str, Any]) -> None:
    role = schema(document, "mesh.auth.v1.Role")
    assert role["type"] == "string"
    assert role["enum"] == ["ROLE_UNSPECIFIED", "ROLE_VIEWER", "ROLE_ANALYST", "ROLE_ADMIN"]
    # A rule excluding the zero value (not_in: [0]) narrows the enum inline.
    user_role = schema(document, "mesh.auth.v1.User")["properties"]["role"]
    assert user_role["enum"] == ["ROLE_VIEWER", "ROLE_ANALYST", "ROLE_ADMIN"]


def test_required_fields_and_query_parameters(document: dict[str, Any]) -> None:
    assert schema(document, "mesh.analytics.v1.Dataset")["required"] == ["name"]
    create_user = operation(document, "/mesh.auth.v1.AuthService/CreateUser")
    body = create_user["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["user"]  # field_behavior REQUIRED and protovalidate required
    assert body["properties"]["password"]["minLength"] == 12
    update = operation(document, "/mesh.analytics.v1.AnalyticsService/UpdateDataset")
    mask = next(p for p in update["parameters"] if p["name"] == "updateMask")
    assert mask == {**mask, "in": "query", "required": True}
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


def test_streams_are_json_arrays(document: dict[str, Any]) -> None:
    ingest = operation(document, "/mesh.analytics.v1.AnalyticsService/IngestPoints")
    body = ingest["requestBody"]["content"]["application/json"]["schema"]
    assert body["type"] == "array"
    assert "timestampsUs" in body["items"]["properties"]
    stream = operation(document, "/mesh.llm.v1.LlmService/StreamComplete")
    reply = stream["responses"]["200"]["content"]["application/json"]["schema"]
    assert reply == {"type": "array", "items": {"$ref": "#/components/schemas/mesh.llm.v1.StreamCompleteResponse"}}


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
    assert status["details"]["items"]["properties"]["@type"]["type"] == "string"


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
    assert reply["properties"]["items"]["items"] == {"$ref": "#/components/schemas/mesh.extra.v1.Item"}
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
