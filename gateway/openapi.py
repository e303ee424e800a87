"""OpenAPI 3 document of the REST API, generated from the descriptor set.

Envoy's gRPC-JSON transcoder serves every RPC of the mesh over REST through
its ``google.api.http`` binding; this module describes exactly that API:
paths and methods from the bindings, path and query parameters, request
bodies (``body: "*"``, a field, or a JSON array of messages for a client
stream), responses in proto3 JSON (lowerCamelCase names, enums as names,
64-bit integers as strings, Timestamp as RFC 3339), constraints from the
protovalidate rules, required fields, descriptions from the proto comments,
``google.rpc.Status`` errors, and the bearer token every RPC needs except the
public ones (their access rule says so).

``openapi_document`` is a pure function of the descriptor set; ``./mesh gen``
writes its result to gen/openapi.json.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from gateway.proto_json_schema import (
    Catalog,
    comments,
    component_name,
    enum_schema,
    field_schema,
    is_map,
    is_required,
    json_name,
    message_schema,
    ref,
    referenced,
)
from mesh.auth.v1 import access_pb2

OPENAPI_VERSION = "3.0.3"
SECURITY_SCHEME = "bearerAuth"
STATUS_SCHEMA = "google.rpc.Status"
# A google.api.HttpBody request body or response is the raw HTTP body, in any
# media type (its content_type field is the Content-Type header).
HTTP_BODY = ".google.api.HttpBody"
RAW_MEDIA = "*/*"
NDJSON_MEDIA = "application/x-ndjson"
"""A server stream over REST: one JSON message a line (Envoy's transcoder, stream_newline_delimited)."""
_RAW_SCHEMA: dict[str, Any] = {"type": "string", "format": "binary"}

_FD = descriptor_pb2.FieldDescriptorProto
Schema = dict[str, Any]
AccessRuleLookup = Callable[[str], "access_pb2.AccessRule | None"]

_HTTP_METHODS = ("get", "put", "post", "delete", "patch")
_SERVICES, _METHODS = 6, 2
_FIELD_MASK = ".google.protobuf.FieldMask"
_NOT_QUERY = (".google.protobuf.Struct", ".google.protobuf.Value", ".google.protobuf.ListValue", ".google.protobuf.Any")


@dataclass
class _Binding:
    method: str
    path: str
    body: str
    response_body: str


def _bindings(rule: Any) -> Iterator[_Binding]:
    pattern = rule.WhichOneof("pattern")
    if pattern in _HTTP_METHODS:
        yield _Binding(pattern, getattr(rule, pattern), rule.body, rule.response_body)
    elif pattern == "custom":
        yield _Binding(rule.custom.kind.lower(), rule.custom.path, rule.body, rule.response_body)
    for extra in rule.additional_bindings:
        yield from _bindings(extra)


_TEMPLATE_VARIABLE = re.compile(r"\{([^}=]+)(?:=([^}]*))?\}")


def _field_path(catalog: Catalog, message_name: str, dotted: str) -> list[descriptor_pb2.FieldDescriptorProto]:
    """The fields along a dotted proto field path, starting at ``message_name``."""
    fields = []
    current = message_name
    for part in dotted.split("."):
        proto_field = next(f for f in catalog.messages[current].proto.field if f.name == part)
        fields.append(proto_field)
        current = proto_field.type_name
    return fields


def _query_parameters(
    catalog: Catalog,
    message_name: str,
    omit: set[str],
    prefix: str = "",
    proto_prefix: str = "",
    depth: int = 0,
) -> Iterator[Schema]:
    """Query parameters for the request fields bound neither to the path nor the body;
    nested messages become dotted names (as the transcoder reads them)."""
    message = catalog.messages[message_name]
    for index, proto_field in enumerate(message.proto.field):
        proto_path = proto_prefix + proto_field.name
        if proto_path in omit:
            continue
        name = prefix + json_name(proto_field)
        well_known = proto_field.type_name.startswith(".google.protobuf.")
        is_message = proto_field.type == _FD.TYPE_MESSAGE and not well_known
        if (
            is_map(catalog, proto_field)
            or (is_message and proto_field.label == _FD.LABEL_REPEATED)
            or proto_field.type_name in _NOT_QUERY
        ):
            continue  # not expressible as query parameters
        if is_message:
            if depth < 3:
                yield from _query_parameters(
                    catalog, proto_field.type_name, omit, name + ".", proto_path + ".", depth + 1
                )
            continue
        schema = field_schema(catalog, proto_field, "", in_query=True)
        description = message.field_descriptions.get(index, "")
        parameter: Schema = {"name": name, "in": "query", "schema": schema}
        if description:
            parameter["description"] = description
        if depth == 0 and is_required(catalog, proto_field):
            parameter["required"] = True
        if schema.get("type") == "array":
            parameter["style"], parameter["explode"] = "form", True
        yield parameter


def _update_mask(catalog: Catalog, request: str) -> str | None:
    """The JSON name of a request's FieldMask (an AIP-134 update), if it has one."""
    for proto_field in catalog.messages[request].proto.field:
        if proto_field.type_name == _FIELD_MASK:
            return json_name(proto_field)
    return None


@dataclass
class _Operation:
    service: str
    method: descriptor_pb2.MethodDescriptorProto
    description: str
    binding: _Binding
    rule: access_pb2.AccessRule | None


def _operation(catalog: Catalog, op: _Operation, operation_id: str) -> tuple[str, Schema]:
    """The OpenAPI path (with JSON-named variables) and operation of one binding."""
    method, binding = op.method, op.binding
    request = method.input_type
    path_fields: set[str] = set()
    parameters: list[Schema] = []

    def variable(match: re.Match[str]) -> str:
        proto_path, segments = match.group(1), match.group(2)
        fields = _field_path(catalog, request, proto_path)
        name = ".".join(json_name(f) for f in fields)
        path_fields.add(proto_path)
        schema = field_schema(catalog, fields[-1], "", in_query=True)
        schema.pop("readOnly", None)
        description = f"The request's `{proto_path}`."
        if len(fields) == 1:
            request_fields = catalog.messages[request]
            index = list(request_fields.proto.field).index(fields[0])
            description = request_fields.field_descriptions.get(index, "") or description
        if segments and segments != "*":
            description += f"\n\nMatches `{segments}`."
        parameters.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": schema,
                **({"description": description} if description else {}),
                "x-grpc-field": name,
            }
        )
        return "{" + name + "}"

    path = _TEMPLATE_VARIABLE.sub(variable, binding.path)
    top_level_path_fields = frozenset(p for p in path_fields if "." not in p)

    operation: Schema = {
        "operationId": operation_id,
        "tags": [op.service.rsplit(".", 1)[1]],
        "summary": (
            op.description.split("\n\n")[0].replace("\n", " ").split(". ")[0].rstrip(".") + "."
            if op.description
            else method.name
        ),
    }
    if op.description:
        operation["description"] = op.description
    if binding.body == "":
        parameters += _query_parameters(catalog, request, path_fields)
    elif binding.body != "*":
        parameters += _query_parameters(catalog, request, path_fields | {binding.body})
    if parameters:
        operation["parameters"] = parameters

    mask = _update_mask(catalog, request)
    if binding.body:
        body_type = request
        if binding.body == "*":
            body = message_schema(catalog, request, omit=top_level_path_fields)
            needed = bool(body.get("required"))
        else:
            body_field = _field_path(catalog, request, binding.body)[-1]
            body_type = body_field.type_name
            needed = is_required(catalog, body_field)
            if mask is not None and body_field.type == _FD.TYPE_MESSAGE:
                # An update sends the fields its mask names: the resource, partial.
                body = message_schema(catalog, body_field.type_name, partial=True)
                masked = [json_name(f) for f in catalog.messages[body_field.type_name].proto.field]
                must = [n for n in masked if n in message_schema(catalog, body_field.type_name).get("required", [])]
                if must:
                    body["x-mesh-required-when-masked"] = must
                    body["description"] = (
                        f"{body.get('description', '')}\n\nA field the update mask names must be set: "
                        + ", ".join(f"`{n}`" for n in must)
                        + "."
                    ).strip()
            else:
                body = field_schema(catalog, body_field, "")
        if body_type == HTTP_BODY:
            # Envoy passes the raw body through (and the Content-Type header).
            raw = {**_RAW_SCHEMA, **({"description": body["description"]} if "description" in body else {})}
            raw["x-mesh-opaque"] = True  # a file: the service judges its content
            operation["requestBody"] = {"required": True, "content": {RAW_MEDIA: {"schema": raw}}}
        else:
            if method.client_streaming:
                body = {
                    "type": "array",
                    "items": body,
                    "description": "A client stream: a JSON array of request messages, sent in order.",
                }
                needed = True
            # Without a body the request is all defaults: fine unless a field is required.
            operation["requestBody"] = {"required": needed, "content": {"application/json": {"schema": body}}}
        # Which request field the body fills ("*": the whole request), for gRPC examples.
        operation["x-grpc-body"] = (
            "*" if binding.body == "*" else ".".join(json_name(f) for f in _field_path(catalog, request, binding.body))
        )

    if mask is not None:
        operation["x-mesh-update-mask"] = mask
    # Rules across the request's fields (query parameters included), by their messages.
    request_rules = message_schema(catalog, request).get("x-mesh-rules")
    if request_rules:
        operation["x-mesh-rules"] = request_rules
    response: Schema = ref(method.output_type)
    if binding.response_body:
        response = field_schema(catalog, _field_path(catalog, method.output_type, binding.response_body)[-1], "")
    ok: Schema = {"description": "OK"}
    if method.output_type == HTTP_BODY:
        ok["description"] = "The raw body, with the Content-Type the RPC chose" + (
            ", arriving piece by piece as the RPC streams it." if method.server_streaming else "."
        )
        ok["content"] = {RAW_MEDIA: {"schema": dict(_RAW_SCHEMA)}}
    else:
        media = "application/json"
        if method.server_streaming:
            media = NDJSON_MEDIA
            ok["description"] = (
                "A server stream as newline-delimited JSON (`application/x-ndjson`): one line "
                "per message, each sent as the RPC sends it (`curl -N` prints them as they "
                "arrive); the schema is that of one line. An error before the first message is "
                "an HTTP error with a JSON `google.rpc.Status`."
            )
            operation["x-mesh-stream"] = "ndjson"
        ok["content"] = {media: {"schema": response}}
    operation["responses"] = {
        "200": ok,
        "default": {
            "description": "An error: a `google.rpc.Status` with the gRPC code, a message and typed details; "
            "the HTTP status follows the gRPC code (400 INVALID_ARGUMENT, 401 UNAUTHENTICATED, "
            "403 PERMISSION_DENIED, 404 NOT_FOUND, 409 ALREADY_EXISTS, …).",
            "content": {"application/json": {"schema": ref("." + STATUS_SCHEMA)}},
        },
    }
    public = op.rule is not None and op.rule.public
    operation["security"] = [] if public else [{SECURITY_SCHEME: []}]
    if op.rule is not None and not public:
        role = access_pb2.Role.Name(op.rule.min_role).removeprefix("ROLE_").lower()
        operation["x-mesh-min-role"] = role
        operation["description"] = f"{operation.get('description', '')}\n\nNeeds the {role} role or higher.".strip()
    if op.rule is not None and public:
        operation["description"] = f"{operation.get('description', '')}\n\nPublic: no token needed.".strip()
    operation["x-grpc-method"] = f"/{op.service}/{method.name}"
    return path, operation


def _share_template(path: str, operation: Schema, templates: dict[str, str]) -> str:
    """Paths differing only in variable names are one path in OpenAPI
    (``/v1/datasets/{id}`` and ``/v1/datasets/{dataset.id}``): the later one
    takes the earlier one's names, each parameter still saying its field."""
    shape = re.sub(r"\{[^}]*\}", "{}", path)
    first = templates.setdefault(shape, path)
    if first == path:
        return path
    renames = dict(zip(re.findall(r"\{([^}]*)\}", path), re.findall(r"\{([^}]*)\}", first), strict=True))
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            parameter["name"] = renames[parameter["name"]]
    return first


def mesh_access_rules() -> AccessRuleLookup:
    """The access rule of each RPC as the services enforce it (the runtime's rule table)."""
    from mesh_runtime.auth import access_rule, rule_table

    rules = dict(rule_table())
    return lambda grpc_path: rules[grpc_path] if grpc_path in rules else access_rule(grpc_path)


@dataclass
class ServiceDoc:
    """A mesh service of a descriptor set, with the comments of its file."""

    full_name: str
    proto: descriptor_pb2.ServiceDescriptorProto
    description: str
    method_descriptions: dict[str, str]


def mesh_services(files: list[descriptor_pb2.FileDescriptorProto]) -> Iterator[ServiceDoc]:
    """Every service in a ``mesh.*`` package, in descriptor order."""
    for file in files:
        if not file.package.startswith("mesh."):
            continue
        found = comments(file)
        for index, service in enumerate(file.service):
            yield ServiceDoc(
                f"{file.package}.{service.name}",
                service,
                found.get((_SERVICES, index), ""),
                {m.name: found.get((_SERVICES, index, _METHODS, i), "") for i, m in enumerate(service.method)},
            )


def openapi_document(
    descriptor_set: bytes | descriptor_pb2.FileDescriptorSet,
    access_rule: AccessRuleLookup | None = None,
    title: str = "Analytics Mesh REST API",
) -> dict[str, Any]:
    """The OpenAPI 3 document of every mesh RPC's REST binding in ``descriptor_set``.

    ``access_rule`` maps ``/package.Service/Method`` to its access rule; by
    default the mesh runtime's rule table (the one the services enforce).
    """
    if isinstance(descriptor_set, bytes):
        descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
    files = list(descriptor_set.file)
    catalog = Catalog.of(files)
    lookup = access_rule or mesh_access_rules()

    paths: dict[str, Schema] = {}
    templates: dict[str, str] = {}
    tags: list[Schema] = []
    used: set[str] = {"." + STATUS_SCHEMA}
    for service in mesh_services(files):
        service_name, short = service.full_name, service.proto.name
        tags.append(
            {
                "name": short,
                **({"description": service.description} if service.description else {}),
                "x-grpc-service": service_name,
            }
        )
        for method in service.proto.method:
            rule = method.options.Extensions[annotations_pb2.http]
            description = service.method_descriptions[method.name]
            access = lookup(f"/{service_name}/{method.name}")
            for number, binding in enumerate(_bindings(rule)):
                operation_id = f"{short}_{method.name}" + (f"_{number}" if number else "")
                path, operation = _operation(
                    catalog, _Operation(service_name, method, description, binding, access), operation_id
                )
                path = _share_template(path, operation, templates)
                taken = paths.setdefault(path, {}).get(binding.method)
                if taken is not None:
                    raise ValueError(
                        f"{binding.method.upper()} {path} is bound twice: {taken['x-grpc-method']} and "
                        f"{operation['x-grpc-method']}; Envoy could not tell them apart"
                    )
                paths[path][binding.method] = operation
                used.update(referenced(operation))

    schemas: dict[str, Schema] = {}
    pending = sorted(used)
    while pending:
        name = pending.pop()
        key = component_name(name)
        if key in schemas:
            continue
        schema = enum_schema(catalog, name) if name in catalog.enums else message_schema(catalog, name)
        schemas[key] = schema
        pending.extend(sorted(set(referenced(schema)) - {"." + k for k in schemas}))

    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": "v1",
            "description": (
                "The REST face of the mesh's gRPC services, served by Envoy's gRPC-JSON transcoder, in proto3"
                " JSON: field names are lowerCamelCase, enums are printed as names, 64-bit integers as "
                "strings, timestamps in RFC 3339. Requests may also give an enum's number, a 64-bit integer "
                "as a number, a single value for a list of one, null for a field left out, and null elements "
                "in a list, which are skipped; unknown fields are ignored, but a field name may not be empty."
                " The schemas state the rules the services enforce; what JSON Schema cannot say is in "
                "`x-mesh-rules` (rules by their messages), `x-mesh-key-pattern` (a map's keys), `x-mesh-"
                "opaque` (values no schema can describe, such as tokens the server hands out) and `x-mesh-"
                "required-when-masked` (fields an update mask may only name when they are set). Generated "
                "from the protos by `./mesh gen`."
            ),
        },
        "servers": [{"url": "/", "description": "the Envoy gateway this document is served from"}],
        "tags": tags,
        "paths": {path: paths[path] for path in sorted(paths)},
        "components": {
            "schemas": {key: schemas[key] for key in sorted(schemas)},
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from `POST /v1/auth:login` (or `./mesh token USER`).",
                }
            },
        },
    }


def render(document: dict[str, Any]) -> str:
    """The document as stable, diff-friendly JSON text."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
