"""Request validation: the protovalidate rules in each request's proto, and
what no storage accepts whatever the rules say (NUL characters, timestamps
outside RFC 3339's range); bad input is INVALID_ARGUMENT with field violations."""

from __future__ import annotations

from typing import Any

import grpc
import protovalidate
from google.protobuf import descriptor
from google.protobuf.message import Message

from mesh_runtime.errors import FieldViolation, InvalidArgument
from mesh_runtime.interceptors.chain import UNGUARDED_PREFIXES, MeshInterceptor, Undecodable


def _field_path(violation: Any) -> str:
    parts: list[str] = []
    # Message-level (CEL) rules name no field.
    if violation.proto.field is None:
        return ""
    for element in violation.proto.field.elements:
        name = element.field_name
        subscript = element.subscript
        if subscript is not None:
            value = subscript.value
            if isinstance(value, str):
                name += f'["{value}"]'
            else:
                name += f"[{value}]"
        parts.append(name)
    return ".".join(parts)


def _message_rule_field(message: Message, rule_id: str) -> str:
    """The field a message-level rule is about: the first part of its id when
    that names a field of the message (``end_time.after_start_time``), else
    "(message)"."""
    name = rule_id.split(".", 1)[0]
    return name if name in message.DESCRIPTOR.fields_by_name else "(message)"


def violations_of(message: Message) -> list[FieldViolation]:
    """The protovalidate rule violations of ``message``, as field violations."""
    return [
        FieldViolation(
            field=_field_path(v) or _message_rule_field(message, v.proto.rule_id),
            description=v.proto.message or v.proto.rule_id,
        )
        for v in protovalidate.collect_violations(message)
    ]


class ValidationInterceptor(MeshInterceptor):
    """Checks every request against the protovalidate rules in its proto."""

    def applies_to(self, method: str) -> bool:
        return not method.startswith(UNGUARDED_PREFIXES)

    tolerant_requests = True

    async def check_request(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        if isinstance(request, Undecodable):
            raise InvalidArgument(
                "the request is not a valid message", violations=[FieldViolation("(body)", request.error[:200])]
            )
        if not isinstance(request, Message):
            return
        violations = wire_violations(request) or violations_of(request)
        if violations:
            summary = "; ".join(f"{v.field}: {v.description}" for v in violations[:5])
            raise InvalidArgument(f"invalid request: {summary}", violations=violations)


_MAX_TIMESTAMP_SECONDS = 253402300799  # 9999-12-31T23:59:59Z, the largest RFC 3339 time
_MIN_TIMESTAMP_SECONDS = -62135596800  # 0001-01-01T00:00:00Z


def wire_violations(message: Message, prefix: str = "") -> list[FieldViolation]:
    """What no storage or conversion accepts, whatever a proto's rules say:
    NUL characters in strings (PostgreSQL cannot store them) and Timestamps
    outside RFC 3339's range or with nanos outside [0, 1e9)."""
    found: list[FieldViolation] = []
    if message.DESCRIPTOR.full_name == "google.protobuf.Timestamp":
        seconds, nanos = message.seconds, message.nanos  # type: ignore[attr-defined]
        if not (0 <= nanos < 1_000_000_000 and _MIN_TIMESTAMP_SECONDS <= seconds <= _MAX_TIMESTAMP_SECONDS):
            found.append(FieldViolation(prefix.rstrip(".") or "(message)", "not a valid timestamp"))
        return found
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        repeated = field.is_repeated
        if field.type == descriptor.FieldDescriptor.TYPE_STRING:
            items = value if repeated else [value]
            if field.message_type is None and any("\x00" in item for item in items):
                found.append(FieldViolation(path, "must not contain NUL characters"))
        elif field.type == descriptor.FieldDescriptor.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                for key, item in value.items():
                    if isinstance(key, str) and "\x00" in key:
                        found.append(FieldViolation(path, "keys must not contain NUL characters"))
                    if isinstance(item, str) and "\x00" in item:
                        found.append(FieldViolation(f'{path}["{key}"]', "must not contain NUL characters"))
                    elif isinstance(item, Message):
                        found += wire_violations(item, f'{path}["{key}"].')
            elif repeated:
                for index, item in enumerate(value):
                    found += wire_violations(item, f"{path}[{index}].")
            else:
                found += wire_violations(value, f"{path}.")
    return found
