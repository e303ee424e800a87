"""Re-create the vendored third-party .proto sources under ``protos/third_party``.

Nothing in ``protos/third_party`` is copied by hand. This script derives every
file from the Python packages installed in the virtualenv:

* ``google/api/*.proto`` and ``google/rpc/*.proto`` are copied byte for byte
  from the ``.proto`` files shipped inside ``googleapis-common-protos``
  (plus their non-well-known-type imports, e.g. ``launch_stage.proto``).
  ``google/protobuf/*`` well-known types are never vendored: protoc and buf
  provide them.
* ``buf/validate/validate.proto`` is rebuilt from the serialized
  ``FileDescriptorProto`` embedded in the ``protovalidate`` wheel, because
  protovalidate 2.x ships no ``.proto`` file. The source text is produced by
  the small ``FileDescriptorProto`` -> ``.proto`` printer in this module
  (:func:`print_proto_file`).

Usage::

    python tools/vendor_protos.py           # (re)write protos/third_party
    python tools/vendor_protos.py --check   # exit 1 if the files are stale

The output is deterministic, so running the script twice gives byte-identical
files and ``--check`` can guard CI.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.metadata
import importlib.util
import math
import re
import struct
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    unknown_fields,
)
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT_DIR = REPO_ROOT / "protos" / "third_party"
REGENERATE_HINT = "run `python tools/vendor_protos.py` to regenerate protos/third_party"

#: Files vendored verbatim from googleapis-common-protos (imports are followed).
GOOGLEAPIS_DISTRIBUTION = "googleapis-common-protos"
GOOGLEAPIS_FILES: tuple[str, ...] = (
    "google/api/annotations.proto",
    "google/api/http.proto",
    "google/api/field_behavior.proto",
    "google/api/httpbody.proto",
    "google/api/client.proto",
    "google/api/launch_stage.proto",
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
    "google/rpc/code.proto",
)
#: Well-known types come with protoc / buf and are never vendored.
WKT_PREFIX = "google/protobuf/"

PROTOVALIDATE_DISTRIBUTION = "protovalidate"
PROTOVALIDATE_MODULE = "protovalidate._gen.buf.validate.validate_pb"
VALIDATE_PROTO = "buf/validate/validate.proto"

_IMPORT_RE = re.compile(r'^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;', re.MULTILINE)


# --------------------------------------------------------------------------
# FileDescriptorProto -> .proto source printer
# --------------------------------------------------------------------------

_FDP = descriptor_pb2.FieldDescriptorProto
_DESCRIPTOR_PROTO = "google/protobuf/descriptor.proto"
_SCALAR_TYPE_NAMES: dict[int, str] = {
    _FDP.TYPE_DOUBLE: "double",
    _FDP.TYPE_FLOAT: "float",
    _FDP.TYPE_INT64: "int64",
    _FDP.TYPE_UINT64: "uint64",
    _FDP.TYPE_INT32: "int32",
    _FDP.TYPE_FIXED64: "fixed64",
    _FDP.TYPE_FIXED32: "fixed32",
    _FDP.TYPE_BOOL: "bool",
    _FDP.TYPE_STRING: "string",
    _FDP.TYPE_BYTES: "bytes",
    _FDP.TYPE_UINT32: "uint32",
    _FDP.TYPE_SFIXED32: "sfixed32",
    _FDP.TYPE_SFIXED64: "sfixed64",
    _FDP.TYPE_SINT32: "sint32",
    _FDP.TYPE_SINT64: "sint64",
}
_LABELS: dict[int, str] = {
    _FDP.LABEL_OPTIONAL: "optional",
    _FDP.LABEL_REQUIRED: "required",
    _FDP.LABEL_REPEATED: "repeated",
}
# Field numbers are < 2**29; `max` in message ranges (end is exclusive).
_MESSAGE_RANGE_MAX_END = 2**29
# Enum ranges are inclusive and may go up to INT32_MAX.
_ENUM_RANGE_MAX = 2**31 - 1
# A bracketed option list is kept on one line if it is at most this long.
_INLINE_OPTIONS_WIDTH = 80
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def default_json_name(field_name: str) -> str:
    """Return the json_name protoc derives for ``field_name`` (protoc's ToJsonName)."""
    out: list[str] = []
    capitalize_next = False
    for char in field_name:
        if char == "_":
            capitalize_next = True
        elif capitalize_next:
            out.append(char.upper())
            capitalize_next = False
        else:
            out.append(char)
    return "".join(out)


def quote_string(value: str | bytes) -> str:
    """Return a double-quoted literal that protoc (and text format) parse back to ``value``.

    Only backslash, double quote and control characters are escaped, so CEL
    expressions such as ``'a' + "b"`` stay readable; non-ASCII text is kept as
    UTF-8. Bytes outside printable ASCII are written as octal escapes.
    """
    out: list[str] = []
    units: Iterable[str] = value.decode("latin-1") if isinstance(value, bytes) else value
    for char in units:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif code < 0x20 or code == 0x7F or (isinstance(value, bytes) and code > 0x7F):
            out.append(f"\\{code:03o}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _shortest_float32(value: float) -> str:
    """Shortest decimal that parses back to the same 32-bit float (``0.1``, not ``0.100000001``)."""
    text = repr(value)
    for precision in range(1, 10):
        candidate = f"{value:.{precision}g}"
        if struct.unpack("<f", struct.pack("<f", float(candidate)))[0] == value:
            text = candidate
            break
    return text if any(char in text for char in ".en") else text + ".0"


def _indent_continuation(text: str, prefix: str) -> str:
    """Indent every line of ``text`` but the first by ``prefix``."""
    return text.replace("\n", "\n" + prefix)


class ProtoPrinter:
    """Prints one ``FileDescriptorProto`` as ``.proto`` source text.

    Custom options are stored in descriptors as unknown fields of the
    ``*Options`` messages. To print them by name, the printer builds a private
    :class:`~google.protobuf.descriptor_pool.DescriptorPool` holding the file
    and its dependencies, and re-parses every options message with classes
    from that pool so that extensions (``(buf.validate.field)`` ...) resolve.

    Supported: proto2 and proto3 syntax, imports (public/weak), file /
    message / field / oneof / enum / enum value / service / method /
    extension range options (including custom options with message values),
    nested messages and enums, maps, groups, oneofs, proto3 ``optional``,
    default values, non-default ``json_name``, reserved ranges and names,
    extension ranges, ``extend`` blocks and services. Editions files are
    rejected. Comments (``source_code_info``) are not printed.
    """

    def __init__(
        self,
        file: descriptor_pb2.FileDescriptorProto,
        dependencies: Iterable[descriptor_pb2.FileDescriptorProto] = (),
    ) -> None:
        if file.syntax not in ("", "proto2", "proto3"):
            raise NotImplementedError(f"{file.name}: syntax {file.syntax!r} is not supported")
        self._file = file
        self._proto3 = file.syntax == "proto3"
        self._pool = descriptor_pool.DescriptorPool()
        self._symbols: dict[str, bool] = {}
        self._symbol_packages: dict[str, str] = {}  # type name -> package defining it
        available = {dep.name: dep for dep in dependencies}
        available[file.name] = file
        if _DESCRIPTOR_PROTO not in available:
            # Options messages must be in the pool even if the file does not
            # import descriptor.proto; use the runtime's copy.
            descriptor_proto = descriptor_pb2.FileDescriptorProto()
            descriptor_pb2.DESCRIPTOR.CopyToProto(descriptor_proto)
            available[_DESCRIPTOR_PROTO] = descriptor_proto
        added: set[str] = set()

        def add(name: str) -> None:
            if name in added:
                return
            if name not in available:
                raise ValueError(f"{file.name}: dependency {name!r} was not provided")
            added.add(name)
            proto = available[name]
            for dep in proto.dependency:
                add(dep)
            self._pool.Add(proto)
            self._collect_symbols(proto)

        add(_DESCRIPTOR_PROTO)
        add(file.name)
        self._lines: list[str] = []

    # ---- entry point ------------------------------------------------------

    def render(self, header: str = "") -> str:
        """Return the complete ``.proto`` source, optionally preceded by ``header``."""
        self._lines = []
        file = self._file
        if header:
            self._lines.extend(f"// {line}".rstrip() for line in header.splitlines())
            self._blank()
        self._emit(0, f'syntax = "{file.syntax or "proto2"}";')
        if file.package:
            self._blank()
            self._emit(0, f"package {file.package};")
        if file.dependency:
            self._blank()
            public = set(file.public_dependency)
            weak = set(file.weak_dependency)
            for index, dep in enumerate(file.dependency):
                modifier = "public " if index in public else "weak " if index in weak else ""
                self._emit(0, f"import {modifier}{quote_string(dep)};")
        if file.HasField("options"):
            self._blank()
            self._print_option_statements(0, file.options, file.package)
        for message in file.message_type:
            self._blank()
            self._print_message(0, message, file.package)
        for enum in file.enum_type:
            self._blank()
            self._print_enum(0, enum, file.package)
        for service in file.service:
            self._blank()
            self._print_service(0, service, file.package)
        self._print_extensions(0, file.extension, file.package)
        return "\n".join(self._lines) + "\n"

    # ---- output helpers -----------------------------------------------------

    def _emit(self, depth: int, text: str) -> None:
        prefix = "  " * depth
        self._lines.append(prefix + _indent_continuation(text, prefix))

    def _blank(self) -> None:
        """Add an empty line unless at the start of the file or of a block."""
        if self._lines and self._lines[-1] != "" and not self._lines[-1].endswith("{"):
            self._lines.append("")

    # ---- name resolution ----------------------------------------------------

    def _collect_symbols(self, proto: descriptor_pb2.FileDescriptorProto) -> None:
        """Record every name ``proto`` defines; the value says if it is an aggregate."""

        def join(scope: str, name: str) -> str:
            return f"{scope}.{name}" if scope else name

        def add_enum(enum: descriptor_pb2.EnumDescriptorProto, scope: str) -> None:
            self._symbols[join(scope, enum.name)] = True
            self._symbol_packages[join(scope, enum.name)] = proto.package
            for value in enum.value:  # C++ scoping: values are siblings of the enum
                self._symbols.setdefault(join(scope, value.name), False)

        def add_message(message: descriptor_pb2.DescriptorProto, scope: str) -> None:
            full_name = join(scope, message.name)
            self._symbols[full_name] = True
            self._symbol_packages[full_name] = proto.package
            for field in [*message.field, *message.extension, *message.oneof_decl]:
                self._symbols.setdefault(join(full_name, field.name), False)
            for enum in message.enum_type:
                add_enum(enum, full_name)
            for nested in message.nested_type:
                add_message(nested, full_name)

        parts = proto.package.split(".") if proto.package else []
        for end in range(1, len(parts) + 1):
            self._symbols[".".join(parts[:end])] = True
        for message in proto.message_type:
            add_message(message, proto.package)
        for enum in proto.enum_type:
            add_enum(enum, proto.package)
        for extension in proto.extension:
            self._symbols.setdefault(join(proto.package, extension.name), False)
        for service in proto.service:
            service_name = join(proto.package, service.name)
            self._symbols[service_name] = True
            for method in service.method:
                self._symbols.setdefault(join(service_name, method.name), False)

    def _resolve(self, spelled: str, scope: str) -> str | None:
        """Return the full name protoc binds ``spelled`` to when used in ``scope``.

        protoc searches the first component of a name from the innermost scope
        outwards; for a dotted name only aggregates (packages, messages, enums,
        services) match, and the search stops at the first match.
        """
        first, dot, rest = spelled.partition(".")
        parts = scope.split(".") if scope else []
        while True:
            candidate = ".".join([*parts, first])
            is_aggregate = self._symbols.get(candidate)
            if is_aggregate or (is_aggregate is not None and not dot):
                resolved = candidate + dot + rest
                return resolved if resolved in self._symbols else None
            if not parts:
                return None
            parts.pop()

    def _ref(self, full_name: str, scope: str, *, shortest: bool = True) -> str:
        """Spell the fully-qualified ``full_name`` so that it resolves from ``scope``.

        With ``shortest``, names defined in this file's package use their
        shortest unambiguous suffix (``Rule``); all other names are written in
        full (``google.protobuf.Duration``, ``buf.validate.predefined``). A leading dot
        is added only if nothing else resolves correctly.
        """
        full_name = full_name.lstrip(".")
        components = full_name.split(".")
        lengths: Iterable[int] = [len(components)]
        if shortest and self._symbol_packages.get(full_name) == self._file.package:
            # Names from our own package are written relative to it (`Rule`);
            # names from other packages keep their package (`google.protobuf.Duration`).
            lengths = range(1, len(components) + 1)
        for length in lengths:
            spelled = ".".join(components[-length:])
            if self._resolve(spelled, scope) == full_name:
                return spelled
        return "." + full_name

    # ---- options ------------------------------------------------------------

    def _resolve_options(self, options: Message) -> Message:
        """Re-parse ``options`` with the private pool so custom options are known."""
        descriptor = self._pool.FindMessageTypeByName(options.DESCRIPTOR.full_name)
        resolved: Message = message_factory.GetMessageClass(descriptor)()
        resolved.ParseFromString(options.SerializeToString(deterministic=True))
        self._reject_unknown_fields(resolved, options.DESCRIPTOR.full_name)
        return resolved

    def _reject_unknown_fields(self, message: Message, where: str) -> None:
        if len(unknown_fields.UnknownFieldSet(message)):
            numbers = sorted({field.field_number for field in unknown_fields.UnknownFieldSet(message)})
            raise ValueError(
                f"{self._file.name}: cannot print unknown option field(s) {numbers} in {where};"
                " is the file defining the extension among the dependencies?"
            )
        for field, value in message.ListFields():
            if field.message_type is None:
                continue
            if field.message_type.GetOptions().map_entry:
                value_field = field.message_type.fields_by_name["value"]
                items = list(value.values()) if value_field.message_type is not None else []
            else:
                items = list(value) if field.is_repeated else [value]
            for item in items:
                self._reject_unknown_fields(item, f"{where}.{field.name}")

    def _option_entries(self, options: Message, scope: str) -> list[str]:
        """Return ``name = value`` strings for every option set in ``options``."""
        entries: list[str] = []
        for field, value in self._resolve_options(options).ListFields():
            if field.is_extension:
                name = f"({self._ref(field.full_name, scope, shortest=False)})"
            else:
                name = field.name
            if field.is_extension and field.message_type is not None and not field.is_repeated:
                entries.extend(self._expanded_entries(name, value, scope))
            else:
                entries.extend(f"{name} = {text}" for text in self._values(field, value))
        return entries

    def _expanded_entries(self, name: str, value: Message, scope: str) -> list[str]:
        """Split a message-valued custom option into one entry per set sub-field.

        ``(ext) = { a: 1 cel { ... } cel { ... } }`` becomes
        ``(ext).a = 1``, ``(ext).cel = { ... }``, ``(ext).cel = { ... }``, which
        protoc merges back into the same extension value.
        """
        fields = value.ListFields()
        if not fields:
            return [f"{name} = {{}}"]
        entries: list[str] = []
        for field, sub_value in fields:
            if field.is_extension:
                sub_name = f"{name}.({self._ref(field.full_name, scope, shortest=False)})"
            else:
                sub_name = f"{name}.{field.name}"
            entries.extend(f"{sub_name} = {text}" for text in self._values(field, sub_value))
        return entries

    def _values(self, field: FieldDescriptor, value: Any) -> list[str]:
        """Format an option value; repeated fields yield one value per element."""
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            entry_class = message_factory.GetMessageClass(field.message_type)
            texts = []
            for key in sorted(value):
                entry = entry_class()
                entry.key = key
                if field.message_type.fields_by_name["value"].message_type is not None:
                    entry.value.CopyFrom(value[key])
                else:
                    entry.value = value[key]
                texts.append(self._aggregate(entry))
            return texts
        items = list(value) if field.is_repeated else [value]
        return [self._scalar_or_aggregate(field, item) for item in items]

    def _scalar_or_aggregate(self, field: FieldDescriptor, value: Any) -> str:
        if field.message_type is not None:
            return self._aggregate(value)
        if field.type == FieldDescriptor.TYPE_ENUM:
            enum_value = field.enum_type.values_by_number.get(value)
            return enum_value.name if enum_value is not None else str(value)
        if field.type == FieldDescriptor.TYPE_BOOL:
            return "true" if value else "false"
        if field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
            return quote_string(value)
        if field.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            if math.isnan(value):
                return "nan"
            if math.isinf(value):
                return "inf" if value > 0 else "-inf"
            if field.type == FieldDescriptor.TYPE_FLOAT:
                return _shortest_float32(value)
            return repr(float(value))
        return str(int(value))

    def _aggregate(self, value: Message) -> str:
        """Format a message as a protobuf text-format aggregate ``{ ... }``."""
        lines = self._text_format(value)
        if not lines:
            return "{}"
        return "{\n" + "\n".join("  " + line for line in lines) + "\n}"

    def _text_format(self, message: Message) -> list[str]:
        """Text format of ``message``, one field per line, with our string quoting."""
        lines: list[str] = []
        for field, value in message.ListFields():
            if field.is_extension:
                name = f"[{field.full_name}]"
            elif field.type == FieldDescriptor.TYPE_GROUP:
                name = field.message_type.name  # text format names groups by their type
            else:
                name = field.name
            for text in self._values(field, value):
                if field.message_type is None:
                    lines.append(f"{name}: {text}")
                else:
                    lines.extend(f"{name} {text}".split("\n"))
        return lines

    def _print_option_statements(self, depth: int, options: Message, scope: str) -> None:
        for entry in self._option_entries(options, scope):
            self._emit(depth, f"option {entry};")

    @staticmethod
    def _bracket(entries: Sequence[str]) -> str:
        """Format a ``[a = 1, b = 2]`` list (empty string if there are none)."""
        if not entries:
            return ""
        inline = ", ".join(entries)
        if len(entries) == 1 or ("\n" not in inline and len(inline) <= _INLINE_OPTIONS_WIDTH):
            return f" [{inline}]"
        body = ",\n".join("  " + _indent_continuation(entry, "  ") for entry in entries)
        return " [\n" + body + "\n]"

    # ---- messages -----------------------------------------------------------

    def _print_message(
        self,
        depth: int,
        message: descriptor_pb2.DescriptorProto,
        scope: str,
        group_field: descriptor_pb2.FieldDescriptorProto | None = None,
        group_label: str = "",
    ) -> None:
        full_name = f"{scope}.{message.name}" if scope else message.name
        if group_field is None:
            self._emit(depth, f"message {message.name} {{")
        else:
            options = self._field_option_entries(group_field, full_name, is_extension=False)
            self._emit(
                depth,
                f"{group_label}group {message.name} = {group_field.number}{self._bracket(options)} {{",
            )
        inner = depth + 1

        if message.HasField("options"):
            self._print_option_statements(inner, message.options, full_name)

        # Map entries and groups are printed with their field; protoc appends
        # their nested types at the field's position, so regular nested types
        # declared before them must be printed first to keep the order.
        inline_types: dict[str, int] = {}
        for index, nested in enumerate(message.nested_type):
            if nested.options.map_entry:
                inline_types[f".{full_name}.{nested.name}"] = index
        for field in message.field:
            if field.type == _FDP.TYPE_GROUP:
                for index, nested in enumerate(message.nested_type):
                    if f".{full_name}.{nested.name}" == field.type_name:
                        inline_types[field.type_name] = index
        inline_indexes = set(inline_types.values())
        next_nested = 0

        def flush_nested(until: int) -> bool:
            """Print regular nested types before index ``until``; True if any."""
            nonlocal next_nested
            printed = False
            while next_nested < min(until, len(message.nested_type)):
                if next_nested not in inline_indexes:
                    self._blank()
                    self._print_message(inner, message.nested_type[next_nested], full_name)
                    printed = True
                next_nested += 1
            return printed

        for enum in message.enum_type:
            self._blank()
            self._print_enum(inner, enum, full_name)
        first_inline = min(inline_indexes, default=len(message.nested_type))
        flush_nested(first_inline)

        self._blank()
        index = 0
        fields = list(message.field)
        while index < len(fields):
            field = fields[index]
            if field.type_name in inline_types and flush_nested(inline_types[field.type_name]):
                self._blank()
            if field.HasField("oneof_index") and not field.proto3_optional:
                oneof_index = field.oneof_index
                members = []
                while (
                    index < len(fields)
                    and fields[index].HasField("oneof_index")
                    and (fields[index].oneof_index == oneof_index)
                ):
                    members.append(fields[index])
                    index += 1
                self._print_oneof(inner, message, oneof_index, members, full_name, inline_types)
                continue
            self._print_field(inner, field, message, full_name, inline_types)
            index += 1
        flush_nested(len(message.nested_type))

        if message.extension_range:
            self._blank()
            for ext_range in message.extension_range:
                options = []
                if ext_range.HasField("options"):
                    options = self._option_entries(ext_range.options, full_name)
                spelled = self._range(ext_range.start, ext_range.end - 1, _MESSAGE_RANGE_MAX_END - 1)
                self._emit(inner, f"extensions {spelled}{self._bracket(options)};")
        if message.reserved_range or message.reserved_name:
            self._blank()
            self._print_reserved(
                inner,
                [(r.start, r.end - 1) for r in message.reserved_range],
                message.reserved_name,
                _MESSAGE_RANGE_MAX_END - 1,
            )
        if message.extension:
            self._blank()
            self._print_extensions(inner, message.extension, full_name)
        self._emit(depth, "}")

    def _print_oneof(
        self,
        depth: int,
        message: descriptor_pb2.DescriptorProto,
        oneof_index: int,
        members: Sequence[descriptor_pb2.FieldDescriptorProto],
        scope: str,
        inline_types: dict[str, int],
    ) -> None:
        oneof = message.oneof_decl[oneof_index]
        self._emit(depth, f"oneof {oneof.name} {{")
        if oneof.HasField("options"):
            self._print_option_statements(depth + 1, oneof.options, f"{scope}.{oneof.name}")
        for field in members:
            self._print_field(depth + 1, field, message, scope, inline_types, in_oneof=True)
        self._emit(depth, "}")

    def _label(self, field: descriptor_pb2.FieldDescriptorProto, in_oneof: bool) -> str:
        if in_oneof:
            return ""
        if field.label == _FDP.LABEL_REPEATED:
            return "repeated "
        if self._proto3 and field.label == _FDP.LABEL_OPTIONAL and not field.proto3_optional:
            return ""
        return _LABELS[field.label] + " "

    def _type_name(self, field: descriptor_pb2.FieldDescriptorProto, scope: str) -> str:
        if field.type in _SCALAR_TYPE_NAMES:
            return _SCALAR_TYPE_NAMES[field.type]
        return self._ref(field.type_name, scope)

    def _field_option_entries(
        self, field: descriptor_pb2.FieldDescriptorProto, scope: str, *, is_extension: bool
    ) -> list[str]:
        entries: list[str] = []
        if field.HasField("default_value"):
            entries.append(f"default = {self._default_value(field)}")
        if (
            not is_extension
            and field.HasField("json_name")
            and field.json_name != default_json_name(field.name)
        ):
            entries.append(f"json_name = {quote_string(field.json_name)}")
        if field.HasField("options"):
            entries.extend(self._option_entries(field.options, f"{scope}.{field.name}"))
        return entries

    @staticmethod
    def _default_value(field: descriptor_pb2.FieldDescriptorProto) -> str:
        value: str = field.default_value
        if field.type == _FDP.TYPE_STRING:
            return quote_string(value)
        if field.type == _FDP.TYPE_BYTES:
            # protoc stores bytes defaults already C-escaped.
            return f'"{value}"'
        # Numbers (including inf / -inf / nan), bools and enum value names are
        # stored exactly as they are spelled in .proto source.
        return value

    def _print_field(
        self,
        depth: int,
        field: descriptor_pb2.FieldDescriptorProto,
        message: descriptor_pb2.DescriptorProto | None,
        scope: str,
        inline_types: dict[str, int],
        *,
        in_oneof: bool = False,
        is_extension: bool = False,
    ) -> None:
        label = self._label(field, in_oneof)
        if message is not None and field.type_name in inline_types:
            nested = message.nested_type[inline_types[field.type_name]]
            if nested.options.map_entry:
                key, value = nested.field[0], nested.field[1]
                options = self._field_option_entries(field, scope, is_extension=is_extension)
                self._emit(
                    depth,
                    f"map<{self._type_name(key, scope)}, {self._type_name(value, scope)}> "
                    f"{field.name} = {field.number}{self._bracket(options)};",
                )
            else:
                self._print_message(depth, nested, scope, group_field=field, group_label=label)
            return
        if field.type == _FDP.TYPE_GROUP:
            raise NotImplementedError(f"{scope}.{field.name}: extension groups are not supported")
        options = self._field_option_entries(field, scope, is_extension=is_extension)
        self._emit(
            depth,
            f"{label}{self._type_name(field, scope)} {field.name} = {field.number}{self._bracket(options)};",
        )

    def _print_extensions(
        self, depth: int, extensions: Sequence[descriptor_pb2.FieldDescriptorProto], scope: str
    ) -> None:
        """Print ``extend`` blocks, one per run of extensions of the same extendee."""
        index = 0
        while index < len(extensions):
            extendee = extensions[index].extendee
            self._blank()
            self._emit(depth, f"extend {self._ref(extendee, scope)} {{")
            while index < len(extensions) and extensions[index].extendee == extendee:
                self._print_field(depth + 1, extensions[index], None, scope, {}, is_extension=True)
                index += 1
            self._emit(depth, "}")

    # ---- enums, reserved, services -------------------------------------------

    def _print_enum(self, depth: int, enum: descriptor_pb2.EnumDescriptorProto, scope: str) -> None:
        full_name = f"{scope}.{enum.name}" if scope else enum.name
        self._emit(depth, f"enum {enum.name} {{")
        if enum.HasField("options"):
            self._print_option_statements(depth + 1, enum.options, full_name)
        for value in enum.value:
            options = []
            if value.HasField("options"):
                # Enum values are scoped as siblings of their enum.
                value_scope = f"{scope}.{value.name}" if scope else value.name
                options = self._option_entries(value.options, value_scope)
            self._emit(depth + 1, f"{value.name} = {value.number}{self._bracket(options)};")
        if enum.reserved_range or enum.reserved_name:
            self._print_reserved(
                depth + 1,
                [(r.start, r.end) for r in enum.reserved_range],
                enum.reserved_name,
                _ENUM_RANGE_MAX,
            )
        self._emit(depth, "}")

    @staticmethod
    def _range(start: int, last: int, max_value: int) -> str:
        """Format an inclusive range ``start..last`` (``max`` if ``last`` is the limit)."""
        if start == last:
            return str(start)
        return f"{start} to {'max' if last == max_value else last}"

    def _print_reserved(
        self,
        depth: int,
        ranges: Sequence[tuple[int, int]],
        names: Sequence[str],
        max_value: int,
    ) -> None:
        if ranges:
            spelled = ", ".join(self._range(start, last, max_value) for start, last in ranges)
            self._emit(depth, f"reserved {spelled};")
        if names:
            self._emit(depth, f"reserved {', '.join(quote_string(name) for name in names)};")

    def _print_service(self, depth: int, service: descriptor_pb2.ServiceDescriptorProto, scope: str) -> None:
        full_name = f"{scope}.{service.name}" if scope else service.name
        self._emit(depth, f"service {service.name} {{")
        if service.HasField("options"):
            self._print_option_statements(depth + 1, service.options, full_name)
        for method in service.method:
            request = ("stream " if method.client_streaming else "") + self._ref(method.input_type, full_name)
            response = ("stream " if method.server_streaming else "") + self._ref(
                method.output_type, full_name
            )
            signature = f"rpc {method.name}({request}) returns ({response})"
            if method.HasField("options") and self._option_entries(method.options, full_name):
                self._emit(depth + 1, f"{signature} {{")
                self._print_option_statements(depth + 2, method.options, f"{full_name}.{method.name}")
                self._emit(depth + 1, "}")
            else:
                self._emit(depth + 1, f"{signature};")
        self._emit(depth, "}")


def print_proto_file(
    file: descriptor_pb2.FileDescriptorProto,
    dependencies: Iterable[descriptor_pb2.FileDescriptorProto] = (),
    header: str = "",
) -> str:
    """Return ``.proto`` source text for ``file``.

    ``dependencies`` must contain (at least) every file ``file`` imports,
    directly or transitively; they are needed to name custom options.
    ``header`` is emitted as ``//`` comment lines before ``syntax``.
    """
    return ProtoPrinter(file, dependencies).render(header)


# --------------------------------------------------------------------------
# Sources: googleapis-common-protos
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class VendoredFile:
    """One file to write under the output directory."""

    path: str  # POSIX path relative to protos/third_party, e.g. "google/api/http.proto"
    content: bytes
    source: str  # human-readable origin, e.g. "googleapis-common-protos 1.76.0"


def _distribution_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


def find_installed_proto(path: str) -> Path:
    """Locate ``path`` (e.g. ``google/api/http.proto``) in the installed Python packages.

    The directory part is treated as a Python package (``google.api``) and its
    import locations are searched, so this follows the active environment.
    """
    package, _, filename = path.rpartition("/")
    spec = importlib.util.find_spec(package.replace("/", "."))
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / filename
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{path} not found in the installed package {package.replace('/', '.')!r} "
        f"(searched {locations}); is {GOOGLEAPIS_DISTRIBUTION} installed?"
    )


def proto_imports(source: str) -> list[str]:
    """Return the import paths of a ``.proto`` source text, in order."""
    return _IMPORT_RE.findall(source)


def googleapis_files(roots: Sequence[str] = GOOGLEAPIS_FILES) -> list[VendoredFile]:
    """Copy ``roots`` and their non-WKT transitive imports from googleapis-common-protos."""
    source = f"{GOOGLEAPIS_DISTRIBUTION} {_distribution_version(GOOGLEAPIS_DISTRIBUTION)}"
    found: dict[str, VendoredFile] = {}
    pending = list(roots)
    while pending:
        path = pending.pop(0)
        if path in found or path.startswith(WKT_PREFIX):
            continue
        content = find_installed_proto(path).read_bytes()
        found[path] = VendoredFile(path, content, source)
        pending.extend(proto_imports(content.decode("utf-8")))
    return [found[path] for path in sorted(found)]


# --------------------------------------------------------------------------
# Sources: protovalidate (buf/validate/validate.proto)
# --------------------------------------------------------------------------


def _bytes_literal_from_source(module_file: Path) -> bytes:
    """Fallback: read the bytes literal passed to ``file_desc(...)`` in generated code."""
    tree = ast.parse(module_file.read_text(encoding="utf-8"), filename=str(module_file))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        first = node.args[0]
        if name == "file_desc" and isinstance(first, ast.Constant) and isinstance(first.value, bytes):
            return first.value
    raise ValueError(f"no file_desc(b'...') call found in {module_file}")


def _walk_protobuf_py_files(desc_file: Any) -> Iterator[Any]:
    """Yield a protobuf-py ``DescFile`` and all its transitive dependencies."""
    seen: set[str] = set()
    stack = [desc_file]
    while stack:
        current = stack.pop()
        if current.name in seen:
            continue
        seen.add(current.name)
        yield current
        stack.extend(current.dependencies)


def _default_pool_file(name: str) -> descriptor_pb2.FileDescriptorProto:
    """Fetch a (well-known type) file from google.protobuf's default pool."""
    if name.startswith(WKT_PREFIX):
        importlib.import_module("google.protobuf." + name[len(WKT_PREFIX) : -len(".proto")] + "_pb2")
    proto = descriptor_pb2.FileDescriptorProto()
    descriptor_pool.Default().FindFileByName(name).CopyToProto(proto)
    return proto


def embedded_file_descriptors(
    module_name: str,
) -> tuple[descriptor_pb2.FileDescriptorProto, list[descriptor_pb2.FileDescriptorProto]]:
    """Return the FileDescriptorProto embedded in a protobuf-py generated module, and its deps.

    protobuf-py (the ``protobuf`` package, not ``google.protobuf``) generates
    ``*_pb.py`` modules exposing ``desc()`` -> ``DescFile``, whose ``proto``
    attribute is a protobuf-py ``FileDescriptorProto`` with ``to_binary()``.
    The bytes are re-parsed into ``google.protobuf`` messages. If that API is
    unavailable, the bytes literal passed to ``file_desc(...)`` is read from
    the module source instead.
    """
    module = importlib.import_module(module_name)
    dependencies: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    try:
        desc_file = module.desc()
        data = bytes(desc_file.proto.to_binary())
        for dep in _walk_protobuf_py_files(desc_file):
            if dep is not desc_file:
                dependencies[dep.name] = descriptor_pb2.FileDescriptorProto.FromString(
                    bytes(dep.proto.to_binary())
                )
    except AttributeError:
        module_file = module.__file__
        if module_file is None:
            raise
        data = _bytes_literal_from_source(Path(module_file))
    file = descriptor_pb2.FileDescriptorProto.FromString(data)
    pending = list(file.dependency)
    while pending:
        name = pending.pop()
        if name not in dependencies:
            dependencies[name] = _default_pool_file(name)
            pending.extend(dependencies[name].dependency)
    return file, [dependencies[name] for name in sorted(dependencies)]


def _license_header(module_name: str) -> list[str]:
    """Return the leading ``#`` comment block (the license) of a module's source."""
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None:
        return []
    lines: list[str] = []
    for line in Path(spec.origin).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].removeprefix(" "))
    return lines


def validate_proto_file() -> VendoredFile:
    """Rebuild ``buf/validate/validate.proto`` from the installed protovalidate wheel."""
    version = _distribution_version(PROTOVALIDATE_DISTRIBUTION)
    file, dependencies = embedded_file_descriptors(PROTOVALIDATE_MODULE)
    if file.name != VALIDATE_PROTO:
        raise ValueError(f"{PROTOVALIDATE_MODULE} embeds {file.name!r}, expected {VALIDATE_PROTO!r}")
    header = [
        f"Code generated by tools/vendor_protos.py from protovalidate {version}. DO NOT EDIT.",
        "Re-generate with `python tools/vendor_protos.py`.",
        "",
        f"Printed from the FileDescriptorProto embedded in {PROTOVALIDATE_MODULE};",
        "the upstream comments are not part of that descriptor and are not reproduced.",
    ]
    license_lines = _license_header(PROTOVALIDATE_MODULE)
    if license_lines:
        header += ["", "License of the upstream source:", "", *license_lines]
    text = print_proto_file(file, dependencies, header="\n".join(header))
    return VendoredFile(VALIDATE_PROTO, text.encode("utf-8"), f"protovalidate {version}")


def buf_format(path: str, content: bytes) -> bytes:
    """``content`` as ``buf format`` lays it out, so the whole buf workspace,
    vendored files included, passes ``buf format --exit-code``."""
    buf = Path(sys.executable).parent / "buf"
    result = subprocess.run(
        [str(buf if buf.exists() else "buf"), "format", "--stdin-filepath", path],
        input=content,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"buf format failed on {path}: {result.stderr.decode(errors='replace')}")
    return result.stdout


def vendored_files() -> list[VendoredFile]:
    """Return every file that belongs in ``protos/third_party``, buf-formatted, sorted by path."""
    files = [
        VendoredFile(file.path, buf_format(file.path, file.content), file.source)
        for file in [*googleapis_files(), validate_proto_file()]
    ]
    return sorted(files, key=lambda file: file.path)


# --------------------------------------------------------------------------
# Writing / checking
# --------------------------------------------------------------------------


def _display(path: Path) -> str:
    try:
        return path.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def _existing_protos(out_dir: Path) -> set[str]:
    if not out_dir.is_dir():
        return set()
    return {path.relative_to(out_dir).as_posix() for path in out_dir.rglob("*.proto")}


def stale_files(files: Sequence[VendoredFile], out_dir: Path) -> list[str]:
    """Describe every difference between ``files`` and the ``.proto`` files in ``out_dir``."""
    problems: list[str] = []
    expected = {file.path for file in files}
    for file in files:
        target = out_dir / file.path
        if not target.is_file():
            problems.append(f"{_display(target)} is missing (expected from {file.source})")
        elif target.read_bytes() != file.content:
            problems.append(f"{_display(target)} is stale (differs from {file.source})")
    for extra in sorted(_existing_protos(out_dir) - expected):
        problems.append(f"{_display(out_dir / extra)} is not produced by tools/vendor_protos.py")
    return problems


def write_files(files: Sequence[VendoredFile], out_dir: Path) -> list[str]:
    """Write ``files`` under ``out_dir``, delete stray ``.proto`` files; return one line per file."""
    report: list[str] = []
    for file in files:
        target = out_dir / file.path
        if target.is_file() and target.read_bytes() == file.content:
            report.append(f"unchanged {_display(target)} ({file.source})")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.content)
        report.append(f"wrote     {_display(target)} ({file.source})")
    for extra in sorted(_existing_protos(out_dir) - {file.path for file in files}):
        stray = out_dir / extra
        stray.unlink()
        report.append(f"removed   {_display(stray)} (no longer vendored)")
        for parent in stray.parents:
            if parent == out_dir or not parent.is_relative_to(out_dir) or any(parent.iterdir()):
                break
            parent.rmdir()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if the files on disk differ from what would be written",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help=f"output directory (default: {_display(DEFAULT_OUT_DIR)})",
    )
    args = parser.parse_args(argv)
    out_dir: Path = args.out.resolve()
    files = vendored_files()
    if args.check:
        problems = stale_files(files, out_dir)
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if problems:
            print(f"error: vendored protos are out of date; {REGENERATE_HINT}", file=sys.stderr)
            return 1
        print(f"ok: {len(files)} vendored files in {_display(out_dir)} are up to date")
        return 0
    for line in write_files(files, out_dir):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
