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
from dataclasses import dataclass, field
from typing import Any

from buf.validate import validate_pb2
from google.api import annotations_pb2, field_behavior_pb2
from google.protobuf import descriptor_pb2

from mesh.auth.v1 import access_pb2

OPENAPI_VERSION = "3.0.3"
SECURITY_SCHEME = "bearerAuth"
STATUS_SCHEMA = "google.rpc.Status"
# A google.api.HttpBody request body or response is the raw HTTP body, in any
# media type (its content_type field is the Content-Type header).
HTTP_BODY = ".google.api.HttpBody"
RAW_MEDIA = "*/*"
_RAW_SCHEMA: dict[str, Any] = {"type": "string", "format": "binary"}

_FD = descriptor_pb2.FieldDescriptorProto
Schema = dict[str, Any]
AccessRuleLookup = Callable[[str], "access_pb2.AccessRule | None"]

# Proto3 JSON of the well-known types, as the transcoder reads and writes them.
_WELL_KNOWN: dict[str, Schema] = {
    ".google.protobuf.Timestamp": {"type": "string", "format": "date-time", "example": "2024-05-01T12:00:00Z"},
    ".google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$", "example": "1.5s"},
    ".google.protobuf.FieldMask": {
        "type": "string",
        "description": "Comma-separated field paths in lowerCamelCase, e.g. `description,labels`.",
    },
    ".google.protobuf.Empty": {"type": "object"},
    ".google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    ".google.protobuf.Value": {"description": "Any JSON value."},
    ".google.protobuf.ListValue": {"type": "array", "items": {}},
    ".google.protobuf.Any": {
        "type": "object",
        "description": "A message of the type named by `@type`, with its fields beside it.",
        "properties": {"@type": {"type": "string", "example": "type.googleapis.com/google.rpc.BadRequest"}},
        "required": ["@type"],
        "additionalProperties": True,
    },
    ".google.protobuf.DoubleValue": {"type": "number", "format": "double", "nullable": True},
    ".google.protobuf.FloatValue": {"type": "number", "format": "float", "nullable": True},
    ".google.protobuf.Int64Value": {"type": "string", "format": "int64", "nullable": True},
    ".google.protobuf.UInt64Value": {"type": "string", "format": "uint64", "nullable": True},
    ".google.protobuf.Int32Value": {"type": "integer", "format": "int32", "nullable": True},
    ".google.protobuf.UInt32Value": {"type": "integer", "format": "int64", "minimum": 0, "nullable": True},
    ".google.protobuf.BoolValue": {"type": "boolean", "nullable": True},
    ".google.protobuf.StringValue": {"type": "string", "nullable": True},
    ".google.protobuf.BytesValue": {"type": "string", "format": "byte", "nullable": True},
}

_INT32 = {_FD.TYPE_INT32, _FD.TYPE_SINT32, _FD.TYPE_SFIXED32}
_UINT32 = {_FD.TYPE_UINT32, _FD.TYPE_FIXED32}
_INT64 = {_FD.TYPE_INT64, _FD.TYPE_SINT64, _FD.TYPE_SFIXED64}
_UINT64 = {_FD.TYPE_UINT64, _FD.TYPE_FIXED64}
_FLOATS = {_FD.TYPE_DOUBLE: "double", _FD.TYPE_FLOAT: "float"}

# buf.validate rules per scalar kind: the FieldRules field holding them.
_NUMERIC_RULES = (
    "int32",
    "int64",
    "uint32",
    "uint64",
    "sint32",
    "sint64",
    "fixed32",
    "fixed64",
    "sfixed32",
    "sfixed64",
    "float",
    "double",
)
_STRING_FORMATS = {
    "uuid": "uuid",
    "email": "email",
    "uri": "uri",
    "hostname": "hostname",
    "ipv4": "ipv4",
    "ipv6": "ipv6",
}

_HTTP_METHODS = ("get", "put", "post", "delete", "patch")

_MESSAGE_FIELDS, _NESTED_MESSAGES, _ENUMS, _SERVICES = 4, 3, 5, 6
_FIELDS, _NESTED_ENUMS, _ENUM_VALUES, _METHODS = 2, 4, 2, 2


@dataclass
class _Message:
    proto: descriptor_pb2.DescriptorProto
    description: str
    field_descriptions: dict[int, str]


@dataclass
class _Catalog:
    """Every message, enum and comment of a descriptor set, by full name."""

    messages: dict[str, _Message] = field(default_factory=dict)
    enums: dict[str, tuple[descriptor_pb2.EnumDescriptorProto, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, files: list[descriptor_pb2.FileDescriptorProto]) -> _Catalog:
        catalog = cls()
        for file in files:
            comments = _comments(file)
            prefix = f".{file.package}" if file.package else ""
            for index, message in enumerate(file.message_type):
                catalog._add_message(message, prefix, (_MESSAGE_FIELDS, index), comments)
            for index, enum in enumerate(file.enum_type):
                catalog.enums[f"{prefix}.{enum.name}"] = (enum, comments.get((_ENUMS, index), ""))
        return catalog

    def _add_message(
        self,
        message: descriptor_pb2.DescriptorProto,
        prefix: str,
        path: tuple[int, ...],
        comments: dict[tuple[int, ...], str],
    ) -> None:
        name = f"{prefix}.{message.name}"
        self.messages[name] = _Message(
            message,
            comments.get(path, ""),
            {i: comments.get((*path, _FIELDS, i), "") for i in range(len(message.field))},
        )
        for index, nested in enumerate(message.nested_type):
            self._add_message(nested, name, (*path, _NESTED_MESSAGES, index), comments)
        for index, enum in enumerate(message.enum_type):
            self.enums[f"{name}.{enum.name}"] = (enum, comments.get((*path, _NESTED_ENUMS, index), ""))


def _comments(file: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    """The leading comment of each element of ``file``, by source path, without
    the lines that speak to buf (``buf:lint:ignore RULE``)."""
    found = {}
    for location in file.source_code_info.location:
        text = location.leading_comments or location.trailing_comments
        lines = [line[1:] if line.startswith(" ") else line for line in text.strip("\n").split("\n")]
        lines = [line for line in lines if not line.startswith("buf:lint:")]
        if "".join(lines).strip():
            found[tuple(location.path)] = "\n".join(lines).strip()
    return found


def component_name(full_name: str) -> str:
    """The components/schemas key of a message or enum (its full proto name)."""
    return full_name.lstrip(".")


def _ref(full_name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{component_name(full_name)}"}


def json_name(proto_field: descriptor_pb2.FieldDescriptorProto) -> str:
    """The proto3 JSON (lowerCamelCase) name of a field."""
    if proto_field.json_name:
        return str(proto_field.json_name)
    head, *rest = proto_field.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _behaviors(proto_field: descriptor_pb2.FieldDescriptorProto) -> set[int]:
    return set(proto_field.options.Extensions[field_behavior_pb2.field_behavior])


def _rules(proto_field: descriptor_pb2.FieldDescriptorProto) -> validate_pb2.FieldRules:
    rules: validate_pb2.FieldRules = proto_field.options.Extensions[validate_pb2.field]
    return rules


def is_required(proto_field: descriptor_pb2.FieldDescriptorProto) -> bool:
    """REQUIRED by its field behaviour or by a protovalidate ``required`` rule."""
    return field_behavior_pb2.REQUIRED in _behaviors(proto_field) or _rules(proto_field).required


def _is_map(catalog: _Catalog, proto_field: descriptor_pb2.FieldDescriptorProto) -> bool:
    message = catalog.messages.get(proto_field.type_name)
    return proto_field.label == _FD.LABEL_REPEATED and message is not None and message.proto.options.map_entry


def _listed(rules: Any) -> list[Any]:
    """The values of an ``in`` rule (a Python keyword, so not an attribute name)."""
    return list(getattr(rules, "in"))  # noqa: B009


def _numeric_bounds(rules: Any, schema: Schema, as_text: list[str]) -> None:
    """Map gte/gt/lte/lt/const/in; on 64-bit integers (JSON strings) describe them instead."""
    textual = schema.get("type") == "string"
    bounds = (
        ("gte", "minimum", False, "≥"),
        ("gt", "minimum", True, ">"),
        ("lte", "maximum", False, "≤"),
        ("lt", "maximum", True, "<"),
    )
    for rule, keyword, exclusive, sign in bounds:
        if not rules.HasField(rule):
            continue
        value = getattr(rules, rule)
        if textual:
            as_text.append(f"{sign} {value}")
            continue
        schema[keyword] = value
        if exclusive:
            schema["exclusiveMinimum" if keyword == "minimum" else "exclusiveMaximum"] = True
    values = [*([rules.const] if rules.HasField("const") else []), *_listed(rules)]
    if values:
        schema["enum"] = [str(v) if textual else v for v in values]


def _string_rules(rules: validate_pb2.StringRules, schema: Schema) -> None:
    if rules.HasField("len"):
        schema["minLength"] = schema["maxLength"] = rules.len
    if rules.HasField("min_len"):
        schema["minLength"] = rules.min_len
    if rules.HasField("max_len"):
        schema["maxLength"] = rules.max_len
    if rules.HasField("pattern"):
        schema["pattern"] = rules.pattern
    for rule, fmt in _STRING_FORMATS.items():
        if rules.HasField(rule) and getattr(rules, rule):
            schema["format"] = fmt
    values = [*([rules.const] if rules.HasField("const") else []), *_listed(rules)]
    if values:
        schema["enum"] = list(values)


def _apply_rules(rules: validate_pb2.FieldRules, schema: Schema, catalog: _Catalog, notes: list[str]) -> None:
    """Narrow ``schema`` (of one value, not a repeated field) by protovalidate rules."""
    kind = rules.WhichOneof("type")
    bounds: list[str] = []
    if kind == "string":
        _string_rules(rules.string, schema)
    elif kind == "bytes":
        if rules.bytes.HasField("max_len"):
            notes.append(f"At most {rules.bytes.max_len} bytes.")
    elif kind in _NUMERIC_RULES:
        _numeric_bounds(getattr(rules, kind), schema, bounds)
    elif kind == "enum" and "enum" in schema:
        excluded = set(rules.enum.not_in)
        allowed = set(_listed(rules.enum))
        enum_proto = catalog.enums.get(schema["x-enum-type"])
        if enum_proto is not None and (excluded or allowed):
            schema["enum"] = [
                v.name for v in enum_proto[0].value if v.number not in excluded and (not allowed or v.number in allowed)
            ]
    if bounds:
        notes.append("Allowed: " + ", ".join(bounds) + ".")
    notes.extend(f"Rule: {cel.message or cel.expression}" for cel in rules.cel)


def _scalar_schema(catalog: _Catalog, proto_field: descriptor_pb2.FieldDescriptorProto) -> Schema:
    """The schema of one value of a field (ignoring repeated)."""
    t = proto_field.type
    if t in _INT32:
        return {"type": "integer", "format": "int32"}
    if t in _UINT32:
        return {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295}
    if t in _INT64:
        return {"type": "string", "format": "int64", "example": "0"}
    if t in _UINT64:
        return {"type": "string", "format": "uint64", "example": "0"}
    if t in _FLOATS:
        return {"type": "number", "format": _FLOATS[t]}
    if t == _FD.TYPE_BOOL:
        return {"type": "boolean"}
    if t == _FD.TYPE_STRING:
        return {"type": "string"}
    if t == _FD.TYPE_BYTES:
        return {"type": "string", "format": "byte", "description": "Base64."}
    if t == _FD.TYPE_ENUM:
        enum, _doc = catalog.enums[proto_field.type_name]
        return {"type": "string", "enum": [v.name for v in enum.value], "x-enum-type": proto_field.type_name}
    if proto_field.type_name in _WELL_KNOWN:
        return dict(_WELL_KNOWN[proto_field.type_name])
    return _ref(proto_field.type_name)


def _value_schema(
    catalog: _Catalog,
    proto_field: descriptor_pb2.FieldDescriptorProto,
    rules: validate_pb2.FieldRules | None,
    notes: list[str],
) -> Schema:
    schema = _scalar_schema(catalog, proto_field)
    if rules is not None:
        _apply_rules(rules, schema, catalog, notes)
    if "x-enum-type" in schema:
        # Unrestricted enums point at their component, restricted ones stay inline.
        enum_type = schema.pop("x-enum-type")
        if schema["enum"] == [v.name for v in catalog.enums[enum_type][0].value]:
            return _ref(enum_type)
    return schema


def field_schema(catalog: _Catalog, proto_field: descriptor_pb2.FieldDescriptorProto, description: str) -> Schema:
    """The schema of a field: its value, a list of values, or a map."""
    rules = _rules(proto_field)
    notes: list[str] = []
    ignore_zero = rules.ignore == validate_pb2.IGNORE_IF_ZERO_VALUE
    if _is_map(catalog, proto_field):
        entry = catalog.messages[proto_field.type_name].proto
        map_rules = rules.map if rules.HasField("map") else None
        value_rules = map_rules.values if map_rules is not None and map_rules.HasField("values") else None
        schema: Schema = {
            "type": "object",
            "additionalProperties": _value_schema(catalog, entry.field[1], value_rules, notes),
        }
        if map_rules is not None:
            if map_rules.HasField("min_pairs"):
                schema["minProperties"] = map_rules.min_pairs
            if map_rules.HasField("max_pairs"):
                schema["maxProperties"] = map_rules.max_pairs
            if map_rules.HasField("keys") and map_rules.keys.HasField("string"):
                keys: Schema = {}
                _string_rules(map_rules.keys.string, keys)
                if "pattern" in keys:
                    notes.append(f"Keys match `{keys['pattern']}`.")
    elif proto_field.label == _FD.LABEL_REPEATED:
        repeated = rules.repeated if rules.HasField("repeated") else None
        item_rules = repeated.items if repeated is not None and repeated.HasField("items") else None
        schema = {"type": "array", "items": _value_schema(catalog, proto_field, item_rules, notes)}
        if repeated is not None:
            if repeated.HasField("min_items"):
                schema["minItems"] = repeated.min_items
            if repeated.HasField("max_items"):
                schema["maxItems"] = repeated.max_items
            if repeated.unique:
                schema["uniqueItems"] = True
        notes.extend(f"Rule: {cel.message or cel.expression}" for cel in rules.cel)
    else:
        schema = _value_schema(catalog, proto_field, rules, notes)
        if ignore_zero:
            _allow_zero_value(schema)
    behaviors = _behaviors(proto_field)
    text = "\n\n".join(part for part in (description, " ".join(notes)) if part)
    extra: Schema = {}
    if text:
        extra["description"] = text
    if field_behavior_pb2.OUTPUT_ONLY in behaviors:
        extra["readOnly"] = True
    if field_behavior_pb2.INPUT_ONLY in behaviors:
        extra["writeOnly"] = True
    if not extra:
        return schema
    if "$ref" in schema:
        # Siblings of $ref are ignored in OpenAPI 3.0: wrap it.
        return {"allOf": [schema], **extra}
    if "description" in schema and "description" in extra:
        extra["description"] = f"{extra['description']}\n\n{schema['description']}"
    return {**schema, **extra}


def _allow_zero_value(schema: Schema) -> None:
    """Rules that skip the zero value (IGNORE_IF_ZERO_VALUE) also accept it."""
    if schema.get("type") == "string":
        schema.pop("minLength", None)
        if "pattern" in schema:
            schema["pattern"] = f"^$|{schema['pattern']}"
        if "format" in schema and schema["format"] in _STRING_FORMATS.values():
            schema["description"] = f"Empty, or a value of format {schema.pop('format')}."
    elif "enum" in schema and schema.get("type") != "string":
        schema["enum"] = [0, *schema["enum"]]


def message_schema(catalog: _Catalog, full_name: str, omit: frozenset[str] = frozenset()) -> Schema:
    """The JSON object schema of a message; ``omit`` drops fields (by proto name)."""
    message = catalog.messages[full_name]
    proto = message.proto
    properties: Schema = {}
    required: list[str] = []
    oneofs: dict[int, list[str]] = {}
    for index, proto_field in enumerate(proto.field):
        if proto_field.name in omit:
            continue
        name = json_name(proto_field)
        description = message.field_descriptions.get(index, "")
        in_oneof = proto_field.HasField("oneof_index") and not proto_field.proto3_optional
        if in_oneof:
            oneofs.setdefault(proto_field.oneof_index, []).append(name)
        properties[name] = field_schema(catalog, proto_field, description)
        if is_required(proto_field):
            required.append(name)
    schema: Schema = {"type": "object"}
    if message.description:
        schema["description"] = message.description
    schema["properties"] = properties
    if required:
        schema["required"] = required
    exclusive: list[Schema] = []
    for index, members in oneofs.items():
        oneof = proto.oneof_decl[index]
        choice = ", ".join(f"`{m}`" for m in members)
        needed = oneof.options.Extensions[validate_pb2.oneof].required
        rule = f"exactly one of {choice}" if needed else f"at most one of {choice}"
        for member in members:
            text = f"Part of oneof `{oneof.name}`: set {rule}."
            prop = properties[member]
            prop["description"] = f"{prop['description']}\n\n{text}" if "description" in prop else text
        schema.setdefault("x-oneofs", {})[oneof.name] = members
        exclusive += [{"not": {"required": [a, b]}} for i, a in enumerate(members) for b in members[i + 1 :]]
    if exclusive:
        schema["allOf"] = exclusive
    message_rules = proto.options.Extensions[validate_pb2.message]
    notes = [f"Rule: {cel.message or cel.expression}" for cel in message_rules.cel]
    if notes:
        schema["description"] = "\n\n".join([*([schema["description"]] if "description" in schema else []), *notes])
    return schema


def enum_schema(catalog: _Catalog, full_name: str) -> Schema:
    """An enum as the names of its values, each value's comment listed."""
    enum, description = catalog.enums[full_name]
    schema: Schema = {"type": "string", "enum": [v.name for v in enum.value]}
    if description:
        schema["description"] = description
    return schema


def _referenced(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            yield "." + ref.rsplit("/", 1)[1]
        for value in schema.values():
            yield from _referenced(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _referenced(value)


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


def _field_path(catalog: _Catalog, message_name: str, dotted: str) -> list[descriptor_pb2.FieldDescriptorProto]:
    """The fields along a dotted proto field path, starting at ``message_name``."""
    fields = []
    current = message_name
    for part in dotted.split("."):
        proto_field = next(f for f in catalog.messages[current].proto.field if f.name == part)
        fields.append(proto_field)
        current = proto_field.type_name
    return fields


def _query_parameters(
    catalog: _Catalog,
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
        is_message = proto_field.type == _FD.TYPE_MESSAGE and proto_field.type_name not in _WELL_KNOWN
        if _is_map(catalog, proto_field) or (is_message and proto_field.label == _FD.LABEL_REPEATED):
            continue  # not expressible as query parameters
        if is_message:
            if depth < 3:
                yield from _query_parameters(
                    catalog, proto_field.type_name, omit, name + ".", proto_path + ".", depth + 1
                )
            continue
        schema = field_schema(catalog, proto_field, "")
        description = message.field_descriptions.get(index, "")
        parameter: Schema = {"name": name, "in": "query", "schema": schema}
        if description:
            parameter["description"] = description
        if depth == 0 and is_required(proto_field):
            parameter["required"] = True
        if schema.get("type") == "array":
            parameter["style"], parameter["explode"] = "form", True
        yield parameter


@dataclass
class _Operation:
    service: str
    method: descriptor_pb2.MethodDescriptorProto
    description: str
    binding: _Binding
    rule: access_pb2.AccessRule | None


def _operation(catalog: _Catalog, op: _Operation, operation_id: str) -> tuple[str, Schema]:
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
        schema = field_schema(catalog, fields[-1], "")
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

    if binding.body:
        body_type = request
        if binding.body == "*":
            body = message_schema(catalog, request, omit=top_level_path_fields)
            if "required" in body and not body["required"]:
                del body["required"]
        else:
            body_field = _field_path(catalog, request, binding.body)[-1]
            body = field_schema(catalog, body_field, "")
            body_type = body_field.type_name
        if body_type == HTTP_BODY:
            # Envoy passes the raw body through (and the Content-Type header).
            raw = {**_RAW_SCHEMA, **({"description": body["description"]} if "description" in body else {})}
            operation["requestBody"] = {"required": True, "content": {RAW_MEDIA: {"schema": raw}}}
        else:
            if method.client_streaming:
                body = {
                    "type": "array",
                    "items": body,
                    "description": "A client stream: a JSON array of request messages, sent in order.",
                }
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        # Which request field the body fills ("*": the whole request), for gRPC examples.
        operation["x-grpc-body"] = (
            "*" if binding.body == "*" else ".".join(json_name(f) for f in _field_path(catalog, request, binding.body))
        )

    response: Schema = _ref(method.output_type)
    if binding.response_body:
        response = field_schema(catalog, _field_path(catalog, method.output_type, binding.response_body)[-1], "")
    ok: Schema = {"description": "OK"}
    if method.output_type == HTTP_BODY:
        ok["description"] = "The raw body, with the Content-Type the RPC chose" + (
            ", arriving piece by piece as the RPC streams it." if method.server_streaming else "."
        )
        ok["content"] = {RAW_MEDIA: {"schema": dict(_RAW_SCHEMA)}}
    else:
        if method.server_streaming:
            response = {"type": "array", "items": response}
            ok["description"] = (
                "A server stream: a JSON array whose elements arrive one by one as the "
                "RPC sends its messages (`[` first, then each message, `]` when the stream ends)."
            )
        ok["content"] = {"application/json": {"schema": response}}
    operation["responses"] = {
        "200": ok,
        "default": {
            "description": "An error: a `google.rpc.Status` with the gRPC code, a message and typed details; "
            "the HTTP status follows the gRPC code (400 INVALID_ARGUMENT, 401 UNAUTHENTICATED, "
            "403 PERMISSION_DENIED, 404 NOT_FOUND, 409 ALREADY_EXISTS, …).",
            "content": {"application/json": {"schema": _ref("." + STATUS_SCHEMA)}},
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
        comments = _comments(file)
        for index, service in enumerate(file.service):
            yield ServiceDoc(
                f"{file.package}.{service.name}",
                service,
                comments.get((_SERVICES, index), ""),
                {m.name: comments.get((_SERVICES, index, _METHODS, i), "") for i, m in enumerate(service.method)},
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
    catalog = _Catalog.of(files)
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
                used.update(_referenced(operation))

    schemas: dict[str, Schema] = {}
    pending = sorted(used)
    while pending:
        name = pending.pop()
        key = component_name(name)
        if key in schemas:
            continue
        schema = enum_schema(catalog, name) if name in catalog.enums else message_schema(catalog, name)
        schemas[key] = schema
        pending.extend(sorted(set(_referenced(schema)) - {"." + k for k in schemas}))

    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": "v1",
            "description": (
                "The REST face of the mesh's gRPC services, served by Envoy's gRPC-JSON "
                "transcoder. Field names are lowerCamelCase, enums are names, 64-bit integers "
                "are strings and timestamps RFC 3339. Generated from the protos by `./mesh gen`."
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
