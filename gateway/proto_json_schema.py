"""JSON Schemas (OpenAPI 3.0 dialect) of proto3 JSON, from a descriptor set.

They state what the server accepts, not only what it prints: Envoy's
transcoder reads every proto3 JSON input form, and the services enforce the
protovalidate rules, so a schema says

- which fields are required: REQUIRED by ``google.api.field_behavior`` (present
  and not empty when a whole resource is sent), a protovalidate ``required``
  rule, or rules the field's zero value breaks (omitting a field in proto3 JSON
  sends its zero value: ``min_len: 1``, ``uuid``, ``not_in: [0]``, ...);
- the limits JSON Schema can say (lengths, patterns, formats, ranges, item
  counts, allowed values), for every integer its decimal-string form with the
  same range as a pattern, and no NUL characters in strings (no store keeps
  them);
- the other input forms proto3 JSON allows: an enum by name or number, a
  64-bit integer as a string or a number, a single value for a list of one,
  ``null`` for a field that may be left out;
- unknown fields are ignored (a field name may not be empty);
- what JSON Schema cannot say, as extensions: ``x-mesh-rules`` (CEL rules by
  their messages, e.g. "created_after must be before created_before"),
  ``x-mesh-key-pattern`` (a map's keys), ``x-mesh-opaque`` (a value whose
  validity no schema can describe: page tokens, refresh tokens, API keys, link
  tokens only the server hands out, and bytes the service reads as a file).

Responses use the same schemas: what the server prints is one of the forms.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from buf.validate import validate_pb2
from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2

_FD = descriptor_pb2.FieldDescriptorProto
Schema = dict[str, Any]

# Strings: no NUL characters (PostgreSQL cannot store them; the services refuse them).
NO_NUL = r"^[^\x00]*$"

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
    ".google.protobuf.Int32Value": {"type": "integer", "format": "int32", "nullable": True},
    ".google.protobuf.UInt32Value": {"type": "integer", "format": "int64", "minimum": 0, "nullable": True},
    ".google.protobuf.BoolValue": {"type": "boolean", "nullable": True},
    ".google.protobuf.StringValue": {"type": "string", "pattern": NO_NUL, "nullable": True},
    ".google.protobuf.BytesValue": {"type": "string", "format": "byte", "nullable": True},
}
_WRAPPED_64 = {
    ".google.protobuf.Int64Value": ("int64", -(2**63), 2**63 - 1),
    ".google.protobuf.UInt64Value": ("uint64", 0, 2**64 - 1),
}

_INT32 = {_FD.TYPE_INT32: (-(2**31), 2**31 - 1), _FD.TYPE_SINT32: (-(2**31), 2**31 - 1)}
_INT32[_FD.TYPE_SFIXED32] = _INT32[_FD.TYPE_INT32]
_UINT32 = {_FD.TYPE_UINT32: (0, 2**32 - 1), _FD.TYPE_FIXED32: (0, 2**32 - 1)}
_INT64 = {t: (-(2**63), 2**63 - 1) for t in (_FD.TYPE_INT64, _FD.TYPE_SINT64, _FD.TYPE_SFIXED64)}
_UINT64 = {t: (0, 2**64 - 1) for t in (_FD.TYPE_UINT64, _FD.TYPE_FIXED64)}
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
# String fields whose values only the server hands out (tokens, keys): a client
# cannot make one up, so no schema can describe the valid ones.
_OPAQUE_NAMES = frozenset({"page_token", "refresh_token", "token", "api_key", "secret"})

_MESSAGE_FIELDS, _NESTED_MESSAGES, _ENUMS = 4, 3, 5
_FIELDS, _NESTED_ENUMS = 2, 4


@dataclass
class _Message:
    proto: descriptor_pb2.DescriptorProto
    description: str
    field_descriptions: dict[int, str]


@dataclass
class Catalog:
    """Every message, enum and comment of a descriptor set, by full name."""

    messages: dict[str, _Message] = field(default_factory=dict)
    enums: dict[str, tuple[descriptor_pb2.EnumDescriptorProto, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, files: list[descriptor_pb2.FileDescriptorProto]) -> Catalog:
        catalog = cls()
        for file in files:
            found = comments(file)
            prefix = f".{file.package}" if file.package else ""
            for index, message in enumerate(file.message_type):
                catalog._add_message(message, prefix, (_MESSAGE_FIELDS, index), found)
            for index, enum in enumerate(file.enum_type):
                catalog.enums[f"{prefix}.{enum.name}"] = (enum, found.get((_ENUMS, index), ""))
        return catalog

    def _add_message(
        self,
        message: descriptor_pb2.DescriptorProto,
        prefix: str,
        path: tuple[int, ...],
        found: dict[tuple[int, ...], str],
    ) -> None:
        name = f"{prefix}.{message.name}"
        self.messages[name] = _Message(
            message,
            found.get(path, ""),
            {i: found.get((*path, _FIELDS, i), "") for i in range(len(message.field))},
        )
        for index, nested in enumerate(message.nested_type):
            self._add_message(nested, name, (*path, _NESTED_MESSAGES, index), found)
        for index, enum in enumerate(message.enum_type):
            self.enums[f"{name}.{enum.name}"] = (enum, found.get((*path, _NESTED_ENUMS, index), ""))


def comments(file: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
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


def ref(full_name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{component_name(full_name)}"}


def json_name(proto_field: descriptor_pb2.FieldDescriptorProto) -> str:
    """The proto3 JSON (lowerCamelCase) name of a field."""
    if proto_field.json_name:
        return str(proto_field.json_name)
    head, *rest = proto_field.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _behaviors(proto_field: descriptor_pb2.FieldDescriptorProto) -> set[int]:
    return set(proto_field.options.Extensions[field_behavior_pb2.field_behavior])


def rules_of(proto_field: descriptor_pb2.FieldDescriptorProto) -> validate_pb2.FieldRules:
    rules: validate_pb2.FieldRules = proto_field.options.Extensions[validate_pb2.field]
    return rules


def _listed(rules: Any) -> list[Any]:
    """The values of an ``in`` rule (a Python keyword, so not an attribute name)."""
    return list(getattr(rules, "in"))  # noqa: B009


def is_map(catalog: Catalog, proto_field: descriptor_pb2.FieldDescriptorProto) -> bool:
    message = catalog.messages.get(proto_field.type_name)
    return proto_field.label == _FD.LABEL_REPEATED and message is not None and message.proto.options.map_entry


def _has_presence(proto_field: descriptor_pb2.FieldDescriptorProto) -> bool:
    """Left out means "not set" (proto3 optional, a oneof member, a message), not the zero value."""
    return proto_field.proto3_optional or proto_field.HasField("oneof_index") or proto_field.type == _FD.TYPE_MESSAGE


def _zero_is_refused(catalog: Catalog, proto_field: descriptor_pb2.FieldDescriptorProto) -> bool:
    """Whether the field's rules refuse its zero value, which is what leaving it out sends."""
    rules = rules_of(proto_field)
    if rules.ignore in (validate_pb2.IGNORE_IF_ZERO_VALUE, validate_pb2.IGNORE_ALWAYS):
        return False
    if rules.required:
        return True
    if proto_field.label == _FD.LABEL_REPEATED:
        if is_map(catalog, proto_field):
            return rules.HasField("map") and rules.map.min_pairs > 0
        return rules.HasField("repeated") and rules.repeated.min_items > 0
    if _has_presence(proto_field):
        return False
    kind = rules.WhichOneof("type")
    if kind == "string":
        return not _string_accepts(rules.string, "")
    if kind == "bytes":
        b = rules.bytes
        return b.min_len > 0 or b.len > 0 or (b.HasField("const") and b.const != b"")
    if kind in _NUMERIC_RULES:
        return not _number_accepts(getattr(rules, kind), 0)
    if kind == "enum":
        e = rules.enum
        return 0 in e.not_in or bool(_listed(e)) and 0 not in _listed(e) or (e.HasField("const") and e.const != 0)
    if kind == "bool":
        return rules.bool.HasField("const") and rules.bool.const
    return False


def _string_accepts(rules: validate_pb2.StringRules, value: str) -> bool:
    if rules.HasField("const") and rules.const != value:
        return False
    if _listed(rules) and value not in _listed(rules):
        return False
    if rules.min_len > len(value) or rules.min_bytes > len(value.encode()) or (rules.HasField("len") and rules.len):
        return False
    if rules.HasField("pattern") and not re.search(rules.pattern, value):
        return False
    if rules.WhichOneof("well_known") and not value:
        return False
    return not (rules.prefix or rules.suffix or rules.contains) or bool(value)


def _number_accepts(rules: Any, value: float) -> bool:
    if rules.HasField("const") and rules.const != value:
        return False
    if _listed(rules) and value not in _listed(rules):
        return False
    if value in list(rules.not_in):
        return False
    value = float(value)
    bounds = {"gt": value.__gt__, "gte": value.__ge__, "lt": value.__lt__, "lte": value.__le__}
    return all(bool(check(getattr(rules, name))) for name, check in bounds.items() if rules.HasField(name))


def is_required(
    catalog: Catalog, proto_field: descriptor_pb2.FieldDescriptorProto, partial: bool = False
) -> bool:
    """Whether a JSON object must hold the field: REQUIRED by its field
    behaviour (not in a ``partial`` resource: an update names what it sends),
    a protovalidate ``required`` rule, or rules its zero value breaks."""
    behaviour = field_behavior_pb2.REQUIRED in _behaviors(proto_field) and not partial
    return behaviour or _zero_is_refused(catalog, proto_field)


# Decimal integers in a range, as a regex (the string form of a proto3 JSON integer).


def _fill_by_nines(number: int, count: int) -> int:
    text = str(number)
    return int(text[:-count] + "9" * count) if count < len(text) else int("9" * count)


def _range_stops(low: int, high: int) -> list[int]:
    stops = {high}
    count = 1
    stop = _fill_by_nines(low, count)
    while low <= stop < high:
        stops.add(stop)
        count += 1
        stop = _fill_by_nines(low, count)
    count = 1
    stop = (high + 1) - (high + 1) % 10**count - 1
    while low < stop <= high:
        stops.add(stop)
        count += 1
        stop = (high + 1) - (high + 1) % 10**count - 1
    return sorted(stops)


def _same_length_range(start: int, stop: int) -> str:
    if start == stop:
        return str(start)
    pattern, any_digits = "", 0
    for a, b in zip(str(start), str(stop), strict=True):
        if a == b:
            pattern += a
        elif a != "0" or b != "9":
            pattern += f"[{a}-{b}]"
        else:
            any_digits += 1
    if any_digits:
        pattern += "[0-9]" + (f"{{{any_digits}}}" if any_digits > 1 else "")
    return pattern


def _natural_range(low: int, high: int) -> list[str]:
    """Alternatives matching low..high (0 <= low <= high), without leading zeros."""
    parts, start = [], low
    for stop in _range_stops(low, high):
        parts.append(_same_length_range(start, stop))
        start = stop + 1
    return parts


def integer_pattern(low: int, high: int) -> str:
    """A regex of the decimal strings of the integers low..high, as proto3 JSON
    reads them (a sign, leading zeros)."""
    alternatives = []
    if high >= 0:
        alternatives.append(r"\+?0*(?:" + "|".join(_natural_range(max(low, 0), high)) + ")")
    if low < 0:
        alternatives.append("-0*(?:" + "|".join(_natural_range(max(1, -high), -low)) + ")")
    if low <= 0 <= high:
        alternatives.append("-0+")
    return "^(?:" + "|".join(alternatives) + ")$"


def _integer_range(rules: Any, low: int, high: int) -> tuple[int, int]:
    if rules is not None:
        if rules.HasField("gte"):
            low = max(low, int(rules.gte))
        if rules.HasField("gt"):
            low = max(low, int(rules.gt) + 1)
        if rules.HasField("lte"):
            high = min(high, int(rules.lte))
        if rules.HasField("lt"):
            high = min(high, int(rules.lt) - 1)
    return low, high


def _integer_schema(rules: Any, fmt: str, low: int, high: int, wide: bool) -> Schema:
    """An integer in low..high narrowed by ``rules``: a JSON number, or (64-bit:
    how it is printed) a decimal string."""
    low, high = _integer_range(rules, low, high)
    number: Schema = {"type": "integer", "format": "int32" if fmt == "int32" else "int64", "minimum": low}
    number["maximum"] = high
    values = []
    if rules is not None:
        values = [*([rules.const] if rules.HasField("const") else []), *_listed(rules)]
    if values:
        number["enum"] = [int(v) for v in values]
    if not wide:
        return number
    if values:
        text: Schema = {"type": "string", "format": fmt, "enum": [str(int(v)) for v in values]}
    else:
        text = {"type": "string", "format": fmt, "pattern": _text_pattern(low, high), "example": str(max(low, 0))}
    return {"anyOf": [text, number]}


def _text_pattern(low: int, high: int) -> str:
    """The decimal-string pattern of low..high; for a whole 64-bit range, every
    number of up to 18 digits (an exact pattern would be a page long)."""
    if (low, high) == (-(2**63), 2**63 - 1):
        return r"^[+-]?0*[0-9]{1,18}$"
    if (low, high) == (0, 2**64 - 1):
        return r"^\+?0*[0-9]{1,19}$"
    return integer_pattern(low, high)


def _number_schema(rules: Any, fmt: str) -> Schema:
    schema: Schema = {"type": "number", "format": fmt}
    if rules is None:
        return schema
    for rule, keyword, exclusive in (
        ("gte", "minimum", False),
        ("gt", "minimum", True),
        ("lte", "maximum", False),
        ("lt", "maximum", True),
    ):
        if rules.HasField(rule):
            schema[keyword] = getattr(rules, rule)
            if exclusive:
                schema["exclusiveMinimum" if keyword == "minimum" else "exclusiveMaximum"] = True
    values = [*([rules.const] if rules.HasField("const") else []), *_listed(rules)]
    if values:
        schema["enum"] = values
    return schema


def _string_schema(rules: validate_pb2.StringRules | None, zero: str) -> Schema:
    schema: Schema = {"type": "string"}
    if rules is not None:
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
    if "enum" in schema or "format" in schema:
        pass
    elif "pattern" not in schema:
        schema["pattern"] = NO_NUL
    elif re.search(schema["pattern"], "a\x00"):
        schema["allOf"] = [{"pattern": NO_NUL}]
    if zero == _IGNORED:
        _allow_empty(schema)
    elif zero == _REFUSED and "minLength" not in schema and "enum" not in schema:
        schema["minLength"] = 1
    return schema


def _allow_empty(schema: Schema) -> None:
    """Rules that skip the zero value (IGNORE_IF_ZERO_VALUE) also accept it."""
    schema.pop("minLength", None)
    if "pattern" in schema and not re.search(schema["pattern"], ""):
        schema["pattern"] = f"^$|{schema['pattern']}"
    if "format" in schema:
        # Empty, or a value of the format.
        schema["anyOf"] = [{"maxLength": 0}, {"format": schema.pop("format")}]


def _enum_values(
    catalog: Catalog, enum_type: str, rules: validate_pb2.EnumRules | None, nonzero: bool
) -> list[descriptor_pb2.EnumValueDescriptorProto]:
    values = list(catalog.enums[enum_type][0].value)
    if rules is not None:
        excluded, allowed = set(rules.not_in), set(_listed(rules))
        if rules.HasField("const"):
            allowed = {rules.const}
        values = [v for v in values if v.number not in excluded and (not allowed or v.number in allowed)]
    if nonzero:
        values = [v for v in values if v.number != 0]
    return values


def enum_value_schema(values: list[descriptor_pb2.EnumValueDescriptorProto]) -> Schema:
    """An enum value: its name (as printed) or its number."""
    return {
        "anyOf": [
            {"type": "string", "enum": [v.name for v in values]},
            {"type": "integer", "enum": [v.number for v in values]},
        ]
    }


def enum_schema(catalog: Catalog, full_name: str) -> Schema:
    """An enum component: a value's name (as the server prints it) or its number."""
    enum, description = catalog.enums[full_name]
    schema = enum_value_schema(list(enum.value))
    schema["description"] = (f"{description}\n\n" if description else "") + "The value's name, or its number."
    return schema


# protovalidate's words for repeated.unique.
_UNIQUE_ITEMS = "repeated value must contain unique items"

_BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


# What a field's zero value (empty string, enum 0) is: skipped by its rules
# (IGNORE_IF_ZERO_VALUE: accepted), refused (REQUIRED in a whole resource), or
# whatever its rules say.
_IGNORED, _REFUSED, _BY_RULES = "ignored", "refused", "rules"


@dataclass
class _FieldUse:
    """How a field's value is read, and what its description says."""

    zero: str
    notes: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)


def _value_schema(
    catalog: Catalog,
    proto_field: descriptor_pb2.FieldDescriptorProto,
    rules: validate_pb2.FieldRules | None,
    use: _FieldUse,
) -> Schema:
    """The schema of one value of a field (one element of a list, one map value)."""
    t = proto_field.type
    kind = rules.WhichOneof("type") if rules is not None else None
    typed = getattr(rules, kind) if rules is not None and kind is not None else None
    if rules is not None:
        use.rules.extend(cel.message or cel.expression for cel in rules.cel)
    if t in _INT32 or t in _UINT32:
        low, high = _INT32.get(t) or _UINT32[t]
        return _integer_schema(typed if kind in _NUMERIC_RULES else None, "int32" if t in _INT32 else "uint32",
                               low, high, wide=False)
    if t in _INT64 or t in _UINT64:
        low, high = _INT64.get(t) or _UINT64[t]
        fmt = "int64" if t in _INT64 else "uint64"
        return _integer_schema(typed if kind in _NUMERIC_RULES else None, fmt, low, high, wide=True)
    if t in _FLOATS:
        return _number_schema(typed if kind in _NUMERIC_RULES else None, _FLOATS[t])
    if t == _FD.TYPE_BOOL:
        return {"type": "boolean"}
    if t == _FD.TYPE_STRING:
        schema = _string_schema(rules.string if kind == "string" and rules is not None else None, use.zero)
        if proto_field.name in _OPAQUE_NAMES or proto_field.name.endswith("_token"):
            schema["x-mesh-opaque"] = True
        return schema
    if t == _FD.TYPE_BYTES:
        # What the bytes hold (a file) is for the service to judge.
        schema = {"type": "string", "format": "byte", "pattern": _BASE64, "description": "Base64."}
        schema["x-mesh-opaque"] = True
        if kind == "bytes" and rules is not None:
            b = rules.bytes
            if b.HasField("max_len"):
                use.notes.append(f"At most {b.max_len} bytes.")
            if (b.min_len or b.len) and use.zero != _IGNORED:
                schema["minLength"] = 4
        return schema
    if t == _FD.TYPE_ENUM:
        values = _enum_values(
            catalog, proto_field.type_name, rules.enum if kind == "enum" and rules is not None else None,
            nonzero=use.zero == _REFUSED,
        )
        if [v.number for v in values] == [v.number for v in catalog.enums[proto_field.type_name][0].value]:
            return ref(proto_field.type_name)
        return enum_value_schema(values)
    if proto_field.type_name in _WRAPPED_64:
        fmt, low, high = _WRAPPED_64[proto_field.type_name]
        return {**_integer_schema(None, fmt, low, high, wide=True), "nullable": True}
    if proto_field.type_name == ".google.protobuf.FieldMask" and kind == "field_mask" and rules is not None:
        names = [_camel(path) for path in _listed(rules.field_mask)]
        if names:
            choice = "(?:" + "|".join(re.escape(n) for n in names) + ")"
            return {
                "type": "string",
                "pattern": f"^{choice}(?:,{choice})*$",
                "description": "Comma-separated field names: " + ", ".join(f"`{n}`" for n in names) + ".",
            }
    if proto_field.type_name == ".google.protobuf.Duration" and kind == "duration" and rules is not None:
        return _duration_schema(rules.duration)
    if proto_field.type_name in _WELL_KNOWN:
        return dict(_WELL_KNOWN[proto_field.type_name])
    return ref(proto_field.type_name)


_MAX_DURATION_SECONDS = 315_576_000_000


def _duration_schema(rules: validate_pb2.DurationRules) -> Schema:
    """A Duration ("1.5s") within gte/gt/lte/lt, as a pattern over whole seconds."""
    low, high = -_MAX_DURATION_SECONDS, _MAX_DURATION_SECONDS
    for name in ("gte", "gt"):
        if rules.HasField(name):
            bound = getattr(rules, name)
            low = max(low, bound.seconds + (1 if name == "gt" or bound.nanos else 0))
    top_exact = True
    for name in ("lte", "lt"):
        if rules.HasField(name):
            bound = getattr(rules, name)
            high = min(high, bound.seconds)
            top_exact = top_exact and name == "lte" and not bound.nanos
    if low < 0 or high < low:
        return dict(_WELL_KNOWN[".google.protobuf.Duration"])
    # Whole seconds below the top with any fraction; the top itself only as a whole number.
    below = "|".join(_natural_range(low, high - 1)) if high > low else ""
    alternatives = [f"(?:{below})(?:\\.[0-9]{{1,9}})?s"] if below else []
    if top_exact:
        alternatives.append(f"{high}(?:\\.0{{1,9}})?s")
    return {
        "type": "string",
        "pattern": "^(?:" + "|".join(alternatives) + ")$",
        "example": f"{low}s",
        "description": f"Seconds with an `s`, from {low}s to {high}s.",
    }


def _camel(path: str) -> str:
    return ".".join(re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), part) for part in path.split("."))


def _one_or_many(array: Schema) -> Schema:
    """A list; proto3 JSON also takes a single value for a list of one."""
    if array.get("minItems", 0) > 1 or array.get("maxItems", 1) < 1:
        return array
    return {"anyOf": [array, array["items"]]}


def field_schema(
    catalog: Catalog,
    proto_field: descriptor_pb2.FieldDescriptorProto,
    description: str,
    *,
    partial: bool = False,
    in_query: bool = False,
) -> Schema:
    """The schema of a field: its value, a list of values, or a map.

    ``partial``: in a resource sent for an update, where fields REQUIRED on
    create may be left out or empty. ``in_query``: a query parameter (a list is
    the parameter repeated)."""
    rules = rules_of(proto_field)
    ignore_zero = rules.ignore in (validate_pb2.IGNORE_IF_ZERO_VALUE, validate_pb2.IGNORE_ALWAYS)
    required_nonempty = field_behavior_pb2.REQUIRED in _behaviors(proto_field) and not partial
    use = _FieldUse(_REFUSED if required_nonempty else _IGNORED if ignore_zero else _BY_RULES)
    if is_map(catalog, proto_field):
        entry = catalog.messages[proto_field.type_name].proto
        map_rules = rules.map if rules.HasField("map") else None
        value_rules = map_rules.values if map_rules is not None and map_rules.HasField("values") else None
        value = _value_schema(catalog, entry.field[1], value_rules, _FieldUse(_BY_RULES))
        schema: Schema = {"type": "object", "additionalProperties": value}
        key_pattern = NO_NUL
        if map_rules is not None:
            if map_rules.HasField("min_pairs"):
                schema["minProperties"] = map_rules.min_pairs
            if map_rules.HasField("max_pairs"):
                schema["maxProperties"] = map_rules.max_pairs
            if map_rules.HasField("keys") and map_rules.keys.HasField("string"):
                keys = map_rules.keys.string
                if keys.HasField("pattern"):
                    key_pattern = keys.pattern
                    use.notes.append(f"Keys match `{keys.pattern}`.")
        schema["x-mesh-key-pattern"] = key_pattern
    elif proto_field.label == _FD.LABEL_REPEATED:
        repeated = rules.repeated if rules.HasField("repeated") else None
        item_rules = repeated.items if repeated is not None and repeated.HasField("items") else None
        use.rules.extend(cel.message or cel.expression for cel in rules.cel)
        items = _value_schema(catalog, proto_field, item_rules, _FieldUse(_BY_RULES, notes=use.notes))
        schema = {"type": "array", "items": items}
        if repeated is not None:
            if repeated.HasField("min_items"):
                schema["minItems"] = repeated.min_items
            if repeated.HasField("max_items"):
                schema["maxItems"] = repeated.max_items
            if repeated.unique:
                schema["uniqueItems"] = True
                if proto_field.type == _FD.TYPE_ENUM:
                    # A name and its number are the same value: JSON Schema would call them two.
                    use.rules.append(_UNIQUE_ITEMS)
        if not in_query:
            schema = _one_or_many(schema)
    else:
        schema = _value_schema(catalog, proto_field, rules, use)
    behaviors = _behaviors(proto_field)
    notes = [*use.notes, *(f"Rule: {rule}" for rule in use.rules)]
    text = "\n\n".join(part for part in (description, " ".join(notes)) if part)
    extra: Schema = {}
    if text:
        extra["description"] = text
    if use.rules:
        extra["x-mesh-rules"] = use.rules
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


def _without_nul_rule(schema: Schema) -> Schema:
    return {
        key: _without_nul_rule(value) if isinstance(value, dict) else value
        for key, value in schema.items()
        if not (key == "pattern" and value == NO_NUL)
    }


def nullable(schema: Schema) -> Schema:
    """``schema`` or null (proto3 JSON reads null as the field left out)."""
    if schema.get("nullable"):
        return schema
    if "$ref" in schema:
        return {"allOf": [schema], "nullable": True}
    return {**schema, "nullable": True}


def message_schema(
    catalog: Catalog, full_name: str, omit: frozenset[str] = frozenset(), *, partial: bool = False
) -> Schema:
    """The JSON object schema of a message; ``omit`` drops fields (by proto
    name); ``partial``: the message sent for an update (see ``field_schema``)."""
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
        schema = field_schema(catalog, proto_field, description, partial=partial)
        if not full_name.startswith(".mesh."):
            schema = _without_nul_rule(schema)  # google.rpc.Status & co. are only printed
        if is_required(catalog, proto_field, partial):
            required.append(name)
        else:
            schema = nullable(schema)
        properties[name] = schema
    schema = {"type": "object"}
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
    cel_rules = [cel.message or cel.expression for cel in message_rules.cel]
    if cel_rules:
        notes = [f"Rule: {rule}" for rule in cel_rules]
        schema["description"] = "\n\n".join([*([schema["description"]] if "description" in schema else []), *notes])
        schema["x-mesh-rules"] = cel_rules
    return schema


def referenced(schema: Any) -> Iterator[str]:
    """The full names of the components ``schema`` refers to."""
    if isinstance(schema, dict):
        target = schema.get("$ref")
        if isinstance(target, str):
            yield "." + target.rsplit("/", 1)[1]
        for value in schema.values():
            yield from referenced(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from referenced(value)
