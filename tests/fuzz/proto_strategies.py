"""Hypothesis strategies for protobuf messages, built from their descriptors.

``messages(descriptor)`` draws any message of that type: every field may be
set or left out, scalars over their whole range (NaN and infinities too),
enum numbers named and unnamed, strings that are plain, long, UUIDs or
values the mesh's requests commonly hold, nested messages to a bounded depth,
timestamps in and out of the range protobuf allows. Protovalidate rules are
ignored on purpose: invalid requests are half of what a fuzzer should send.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

MAX_DEPTH = 4
INT32 = st.integers(-(2**31), 2**31 - 1)
UINT32 = st.integers(0, 2**32 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
UINT64 = st.integers(0, 2**64 - 1)
# Strings a request of this mesh often holds, so that generated requests get
# past the first checks and reach deeper code.
TYPICAL_STRINGS = st.sampled_from(
    [
        "",
        "cpu.load",
        "fuzz@example.com",  # its own address: other tests read the mailbox by theirs
        "*/5 * * * *",
        "0 6 * * MON-FRI",
        "Europe/Paris",
        "UTC",
        "Europe",  # tz-database folders, not zones
        "America/Argentina",
        "create_time desc",
        "start_time asc",
        "name",
        "enabled",
        "a=b",
        "00000000-0000-4000-8000-000000000000",
    ]
)
STRINGS = st.one_of(
    st.text(max_size=40),
    st.uuids().map(str),
    TYPICAL_STRINGS,
    st.text(min_size=200, max_size=3000),
)

# CSV an ImportCsv request may hold: numbers of every shape, huge exponents
# (once a 9.5 s stall and an INTERNAL), non-ASCII digits, quotes left open, NUL.
CSV_FIELDS = st.one_of(
    st.sampled_from(
        [
            "1e999999",
            "-1e999999",
            "9.9e999998",
            "1e-999999",
            "1714564800",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999-01:00",
            "1_000",
            "\u0661\u0662",
            "\uff11",
            "0x10",
            "nan",
            '"1714564800',
            "1\x00",
            "time",
        ]
    ),
    st.from_regex(r"[+-]?[0-9]{0,13}(\.[0-9]{0,7})?([eE][+-]?[0-9]{1,7})?", fullmatch=True),
)
CSV_TEXT = st.lists(st.lists(CSV_FIELDS, min_size=1, max_size=3).map(",".join), max_size=8).map(
    lambda lines: "\n".join(lines).encode()
)


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return st.one_of(INT32, st.integers(-3, 1001))
    if kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return UINT32
    if kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return st.one_of(INT64, st.integers(-3, 100_000))
    if kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return UINT64
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return st.floats(allow_nan=True, allow_infinity=True)
    if kind == FieldDescriptor.TYPE_FLOAT:
        return st.floats(width=32, allow_nan=True, allow_infinity=True)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_STRING:
        return STRINGS
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.one_of(st.binary(max_size=200), STRINGS.map(lambda s: s.encode()), CSV_TEXT)
    if kind == FieldDescriptor.TYPE_ENUM:
        # Proto3 enums are open: unnamed numbers arrive too.
        return st.one_of(st.sampled_from([v.number for v in field.enum_type.values]), st.integers(-1, 50))
    raise TypeError(f"no strategy for field type {kind} of {field.full_name}")


def _well_known(descriptor: Descriptor) -> st.SearchStrategy[dict[str, Any]] | None:
    name = descriptor.full_name
    if name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        # In range and out of it (a Timestamp before year 1 or after 9999, nanos past a second).
        seconds = st.one_of(st.integers(-62_135_596_800, 253_402_300_799), st.integers(-(2**40), 2**40), INT64)
        nanos = st.one_of(st.integers(0, 999_999_999), INT32)
        return st.fixed_dictionaries({}, optional={"seconds": seconds, "nanos": nanos})
    if name == "google.protobuf.FieldMask":
        return st.fixed_dictionaries({"paths": st.lists(STRINGS, max_size=4)})
    if name in ("google.protobuf.Any", "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"):
        return st.just({})
    return None


def _one_value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
    """Values of one element of ``field``: a nested message (None past MAX_DEPTH) or a scalar."""
    if field.message_type is None:
        return _scalar(field)
    if depth >= MAX_DEPTH:
        return None
    return _message_fields(field.message_type, depth + 1)


def _field_values(descriptor: Descriptor, depth: int) -> dict[str, st.SearchStrategy[Any]]:
    strategies: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = _one_value(field.message_type.fields_by_name["value"], depth)
            if value is not None:
                key = _scalar(field.message_type.fields_by_name["key"])
                strategies[field.name] = st.dictionaries(key, value, max_size=4)
            continue
        single = _one_value(field, depth)
        if single is not None:
            strategies[field.name] = st.lists(single, max_size=6) if field.is_repeated else single
    return strategies


def _message_fields(descriptor: Descriptor, depth: int) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for a message of ``descriptor`` (nested messages as dicts)."""
    well_known = _well_known(descriptor)
    if well_known is not None:
        return well_known
    return st.fixed_dictionaries({}, optional=_field_values(descriptor, depth))


def _fill(message: Message, values: dict[str, Any]) -> Message:
    for name, value in values.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        target = getattr(message, name) if (field.is_repeated or field.message_type is not None) else None
        if is_map:
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                if value_field.message_type is not None:
                    _fill(target[key], item)
                else:
                    target[key] = item
        elif field.is_repeated:
            for item in value:
                if field.message_type is not None:
                    _fill(target.add(), item)
                else:
                    target.append(item)
        elif field.message_type is not None:
            target.SetInParent()
            _fill(target, value)
        else:
            setattr(message, name, value)
    return message


def messages(descriptor: Descriptor) -> st.SearchStrategy[Message]:
    """Any message of ``descriptor``'s type."""
    cls = message_factory.GetMessageClass(descriptor)
    return _message_fields(descriptor, 0).map(lambda values: _fill(cls(), values))
