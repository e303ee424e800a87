"""The proto3 JSON mapping as Envoy's transcoder prints it: the options it runs
with (read from the running stack's Envoy config), the same conversion of a
gRPC reply with ``json_format.MessageToDict``, and a field-by-field check of a
JSON document against a message descriptor."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

TRANSCODER = "envoy.filters.http.grpc_json_transcoder"

# Envoy's gRPC-status-to-HTTP table (Grpc::Utility::grpcToHttpStatus), the one
# REST clients see: https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md
HTTP_STATUS_OF_GRPC_CODE = {
    1: 499,  # CANCELLED
    2: 500,  # UNKNOWN
    3: 400,  # INVALID_ARGUMENT
    4: 504,  # DEADLINE_EXCEEDED
    5: 404,  # NOT_FOUND
    6: 409,  # ALREADY_EXISTS
    7: 403,  # PERMISSION_DENIED
    8: 429,  # RESOURCE_EXHAUSTED
    9: 400,  # FAILED_PRECONDITION
    10: 409,  # ABORTED
    11: 400,  # OUT_OF_RANGE
    12: 501,  # UNIMPLEMENTED
    13: 500,  # INTERNAL
    14: 503,  # UNAVAILABLE
    15: 500,  # DATA_LOSS
    16: 401,  # UNAUTHENTICATED
}

_INT64_TYPES = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}
_INT32_TYPES = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_SFIXED32,
}
_FLOAT_TYPES = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT}
_INT64_TEXT = re.compile(r"^-?\d+$")
# RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits: what proto3 JSON allows printers to emit.
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6}|\.\d{9})?Z$")
_DURATION = re.compile(r"^-?\d+(\.\d{3}|\.\d{6}|\.\d{9})?s$")
_LOWER_CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")


def transcoder_print_options(envoy_config: Path) -> dict[str, bool]:
    """The ``print_options`` of the gRPC-JSON transcoder in an Envoy config file."""
    config = json.loads(envoy_config.read_text())
    for listener in config["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                for http_filter in network_filter["typed_config"].get("http_filters", []):
                    if http_filter["name"] == TRANSCODER:
                        return dict(http_filter["typed_config"].get("print_options", {}))
    raise AssertionError(f"no {TRANSCODER} filter in {envoy_config}")


def as_rest_json(message: Message, print_options: dict[str, bool]) -> dict[str, Any]:
    """``message`` as Envoy's transcoder prints it, by ``json_format`` with the same options."""
    return json_format.MessageToDict(
        message,
        always_print_fields_with_no_presence=print_options.get("always_print_primitive_fields", False),
        preserving_proto_field_name=print_options.get("preserve_proto_field_names", False),
        use_integers_for_enums=print_options.get("always_print_enums_as_ints", False),
    )


def lower_camel(name: str) -> str:
    """The proto3 JSON name of a snake_case field name."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def json_problems(descriptor: Descriptor, value: Any, defaults_printed: bool, path: str = "$") -> list[str]:
    """Every way ``value`` departs from the proto3 JSON form of a ``descriptor`` message
    as Envoy prints it: lowerCamelCase names, enums as names, 64-bit integers as
    strings, RFC 3339 timestamps, and (``defaults_printed``) every field without
    presence printed even when it holds its default."""
    problems: list[str] = []
    well_known = _well_known_problems(descriptor, value, path)
    if well_known is not None:
        return well_known
    if not isinstance(value, dict):
        return [f"{path}: expected a JSON object for {descriptor.full_name}, got {value!r}"]
    fields = {f.json_name: f for f in descriptor.fields}
    for key in value:
        if key not in fields:
            problems.append(f"{path}.{key}: no field of {descriptor.full_name} has this JSON name")
    for field in descriptor.fields:
        key = field.json_name
        if key != lower_camel(field.name) or not _LOWER_CAMEL.match(key):
            problems.append(f"{path}.{key}: JSON name of {field.name} is not its lowerCamelCase form")
        if key not in value:
            if defaults_printed and not field.has_presence:
                problems.append(f"{path}.{key}: missing, but fields without presence are printed with defaults")
            continue
        problems.extend(_field_problems(field, value[key], defaults_printed, f"{path}.{key}"))
    return problems


def _field_problems(field: FieldDescriptor, value: Any, defaults_printed: bool, path: str) -> list[str]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        if not isinstance(value, dict):
            return [f"{path}: a map is a JSON object, got {value!r}"]
        value_field = field.message_type.fields_by_name["value"]
        return [
            p for k, v in value.items() for p in _single_problems(value_field, v, defaults_printed, f"{path}[{k!r}]")
        ]
    if field.is_repeated:
        if not isinstance(value, list):
            return [f"{path}: a repeated field is a JSON array, got {value!r}"]
        return [p for i, v in enumerate(value) for p in _single_problems(field, v, defaults_printed, f"{path}[{i}]")]
    return _single_problems(field, value, defaults_printed, path)


def _single_problems(field: FieldDescriptor, value: Any, defaults_printed: bool, path: str) -> list[str]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE or kind == FieldDescriptor.TYPE_GROUP:
        return json_problems(field.message_type, value, defaults_printed, path)
    if kind == FieldDescriptor.TYPE_ENUM:
        names = {v.name for v in field.enum_type.values}
        if field.enum_type.full_name == "google.protobuf.NullValue":
            return [] if value is None else [f"{path}: NullValue prints as null, got {value!r}"]
        return (
            []
            if isinstance(value, str) and value in names
            else [f"{path}: enum value {value!r} is not a name of {field.enum_type.full_name}"]
        )
    if kind in _INT64_TYPES:
        ok = isinstance(value, str) and bool(_INT64_TEXT.match(value))
        return [] if ok else [f"{path}: 64-bit integers print as decimal strings, got {value!r}"]
    if kind in _INT32_TYPES:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: 32-bit integers print as JSON numbers, got {value!r}"]
    if kind in _FLOAT_TYPES:
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or value in (
            "NaN",
            "Infinity",
            "-Infinity",
        )
        return [] if ok else [f"{path}: floating point prints as a number or NaN/Infinity, got {value!r}"]
    if kind == FieldDescriptor.TYPE_BOOL:
        return [] if isinstance(value, bool) else [f"{path}: bool prints as true/false, got {value!r}"]
    if kind == FieldDescriptor.TYPE_STRING:
        return [] if isinstance(value, str) else [f"{path}: string expected, got {value!r}"]
    if kind == FieldDescriptor.TYPE_BYTES:
        try:
            base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
        except (AttributeError, binascii.Error):
            return [f"{path}: bytes print as base64, got {value!r}"]
        return []
    return [f"{path}: unhandled field type {kind}"]


def _well_known_problems(descriptor: Descriptor, value: Any, path: str) -> list[str] | None:
    name = descriptor.full_name
    if name == "google.protobuf.Timestamp":
        if not isinstance(value, str) or not RFC3339_UTC.match(value):
            return [f"{path}: a Timestamp prints as RFC 3339 in UTC ('Z'), got {value!r}"]
        try:
            dt.datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            return [f"{path}: {value!r} is no calendar date and time"]
        return []
    if name == "google.protobuf.Duration":
        ok = isinstance(value, str) and bool(_DURATION.match(value))
        return [] if ok else [f"{path}: a Duration prints as seconds with an 's', got {value!r}"]
    if name == "google.protobuf.FieldMask":
        return (
            [] if isinstance(value, str) else [f"{path}: a FieldMask prints as a comma-separated string, got {value!r}"]
        )
    if name == "google.protobuf.Any":
        ok = isinstance(value, dict) and isinstance(value.get("@type"), str)
        return [] if ok else [f"{path}: an Any prints as an object with @type, got {value!r}"]
    if name in (
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
        "google.protobuf.Empty",
    ):
        return []
    return None
