"""Tests for tools/vendor_protos.py (vendored protos and the descriptor printer).

The printer is checked by round trips through protoc: descriptor -> printed
.proto -> ``python -m grpc_tools.protoc --descriptor_set_out`` -> descriptor,
which must equal the original.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType

import grpc_tools
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf.message import Message

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "tools" / "vendor_protos.py"
THIRD_PARTY = REPO_ROOT / "protos" / "third_party"
WKT_INCLUDE = Path(grpc_tools.__file__).resolve().parent / "_proto"


def _load_script() -> ModuleType:
    """Import tools/vendor_protos.py by path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("vendor_protos", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


vendor = _load_script()


# ---- helpers -----------------------------------------------------------------


def run_protoc(
    include_dirs: Sequence[Path], files: Sequence[str], out: Path, *, include_imports: bool = False
) -> descriptor_pb2.FileDescriptorSet:
    """Compile ``files`` with grpc_tools' protoc and return the descriptor set."""
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        *(f"--proto_path={directory}" for directory in [*include_dirs, WKT_INCLUDE]),
        f"--descriptor_set_out={out}",
        *(["--include_imports"] if include_imports else []),
        *files,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"protoc failed:\n{result.stdout}\n{result.stderr}"
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _normalise_json_names(fields: Iterable[descriptor_pb2.FieldDescriptorProto]) -> None:
    for field in fields:
        if field.json_name == vendor.default_json_name(field.name):
            field.ClearField("json_name")


def _normalise_message(message: descriptor_pb2.DescriptorProto) -> None:
    _normalise_json_names(message.field)
    _normalise_json_names(message.extension)
    for nested in message.nested_type:
        _normalise_message(nested)


def normalised(file: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """Copy of ``file`` without source info and with default json_names cleared."""
    copy = descriptor_pb2.FileDescriptorProto()
    copy.CopyFrom(file)
    copy.ClearField("source_code_info")
    _normalise_json_names(copy.extension)
    for message in copy.message_type:
        _normalise_message(message)
    return copy


def build_pool(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> descriptor_pool.DescriptorPool:
    """A pool holding ``files`` (added dependencies first)."""
    by_name = {file.name: file for file in files}
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(name: str) -> None:
        if name not in added:
            added.add(name)
            for dependency in by_name[name].dependency:
                add(dependency)
            pool.Add(by_name[name])

    for name in by_name:
        add(name)
    return pool


def resolved(pool: descriptor_pool.DescriptorPool, message: Message) -> Message:
    """Re-parse ``message`` with ``pool``'s classes so custom options become known fields."""
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(message.DESCRIPTOR.full_name))
    return cls.FromString(message.SerializeToString())


def assert_same_descriptor(
    expected: descriptor_pb2.FileDescriptorProto,
    actual: descriptor_pb2.FileDescriptorProto,
    pool: descriptor_pool.DescriptorPool,
) -> None:
    """Compare normalised descriptors; options are compared with extensions resolved."""
    want = resolved(pool, normalised(expected))
    got = resolved(pool, normalised(actual))
    if want.SerializeToString(deterministic=True) != got.SerializeToString(deterministic=True):
        diff = difflib.unified_diff(
            text_format.MessageToString(want).splitlines(),
            text_format.MessageToString(got).splitlines(),
            "original",
            "reprinted",
            lineterm="",
        )
        pytest.fail(f"{expected.name} does not round-trip:\n" + "\n".join(list(diff)[:200]))


# ---- the committed vendored files ----------------------------------------------


def test_committed_files_are_fresh() -> None:
    """`python tools/vendor_protos.py --check` passes on the committed tree."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert vendor.stale_files(vendor.vendored_files(), THIRD_PARTY) == []


def test_expected_file_set() -> None:
    paths = {file.path for file in vendor.vendored_files()}
    assert set(vendor.GOOGLEAPIS_FILES) | {vendor.VALIDATE_PROTO} <= paths
    assert not any(path.startswith("google/protobuf/") for path in paths), "WKTs must not be vendored"
    for path in paths:
        text = (THIRD_PARTY / path).read_text(encoding="utf-8")
        for imported in vendor.proto_imports(text):
            assert imported in paths or imported.startswith("google/protobuf/"), (path, imported)


def test_googleapis_files_are_the_installed_ones_buf_formatted() -> None:
    for path in vendor.GOOGLEAPIS_FILES:
        installed = vendor.find_installed_proto(path)
        assert installed.parts[-3:] == tuple(path.split("/"))
        assert (THIRD_PARTY / path).read_bytes() == vendor.buf_format(path, installed.read_bytes())


def test_validate_proto_header_names_version() -> None:
    text = (THIRD_PARTY / vendor.VALIDATE_PROTO).read_text(encoding="utf-8")
    version = importlib.metadata.version("protovalidate")
    assert text.startswith(f"// Code generated by tools/vendor_protos.py from protovalidate {version}.")
    assert "DO NOT EDIT" in text.splitlines()[0]


# ---- validate.proto round trip -------------------------------------------------


def test_validate_proto_round_trips_through_protoc(tmp_path: Path) -> None:
    original, dependencies = vendor.embedded_file_descriptors(vendor.PROTOVALIDATE_MODULE)
    source = vendor.validate_proto_file().content
    target = tmp_path / "src" / vendor.VALIDATE_PROTO
    target.parent.mkdir(parents=True)
    target.write_bytes(source)

    compiled = run_protoc([tmp_path / "src"], [vendor.VALIDATE_PROTO], tmp_path / "validate.binpb")

    assert [file.name for file in compiled.file] == [vendor.VALIDATE_PROTO]
    pool = build_pool([*dependencies, original])
    assert_same_descriptor(original, compiled.file[0], pool)
    # Plain message equality holds as well (same option order as upstream).
    assert normalised(compiled.file[0]) == normalised(original)


def test_descriptor_object_matches_bytes_literal() -> None:
    """Both ways of reading the embedded descriptor agree (the literal is the fallback)."""
    module = importlib.import_module(vendor.PROTOVALIDATE_MODULE)
    literal = vendor._bytes_literal_from_source(Path(module.__file__))
    original, _ = vendor.embedded_file_descriptors(vendor.PROTOVALIDATE_MODULE)
    # Compare parsed: the generator wrote json_name before options, upb re-serializes in field order.
    assert original == descriptor_pb2.FileDescriptorProto.FromString(literal)


def test_printer_is_deterministic() -> None:
    original, dependencies = vendor.embedded_file_descriptors(vendor.PROTOVALIDATE_MODULE)
    first = vendor.print_proto_file(original, dependencies)
    second = vendor.print_proto_file(original, list(reversed(dependencies)))
    assert first == second


# ---- the vendored protos are usable ---------------------------------------------

CONSUMER_PROTO = """\
syntax = "proto3";

package consumer.v1;

import "buf/validate/validate.proto";
import "google/api/annotations.proto";

message CreateThingRequest {
  string name = 1 [(buf.validate.field).string.min_len = 1];
}

message Thing {
  string name = 1;
}

service ThingService {
  rpc CreateThing(CreateThingRequest) returns (Thing) {
    option (google.api.http) = {
      post: "/v1/things"
      body: "*"
    };
  }
}
"""


def test_consumer_proto_compiles_against_third_party(tmp_path: Path) -> None:
    source_dir = tmp_path / "src"
    (source_dir / "consumer" / "v1").mkdir(parents=True)
    (source_dir / "consumer" / "v1" / "thing.proto").write_text(CONSUMER_PROTO, encoding="utf-8")

    compiled = run_protoc(
        [source_dir, THIRD_PARTY],
        ["consumer/v1/thing.proto"],
        tmp_path / "thing.binpb",
        include_imports=True,
    )

    pool = build_pool(compiled.file)
    consumer = next(file for file in compiled.file if file.name == "consumer/v1/thing.proto")
    field_options = resolved(pool, consumer.message_type[0].field[0].options)
    (field_rules,) = [value for field, value in field_options.ListFields() if field.is_extension]
    assert field_rules.string.min_len == 1
    method_options = resolved(pool, consumer.service[0].method[0].options)
    (http_rule,) = [value for field, value in method_options.ListFields() if field.is_extension]
    assert (http_rule.post, http_rule.body) == ("/v1/things", "*")


# ---- the printer on other inputs ---------------------------------------------------

KITCHEN_SINK_PROTO2 = r"""
syntax = "proto2";

package kitchen.sink;

import "google/protobuf/descriptor.proto";

option java_package = "com.example.kitchen";
option optimize_for = CODE_SIZE;

message Annotation {
  enum Level {
    LOW = 0;
    HIGH = 1;
  }
  optional string text = 1;
  repeated int32 numbers = 2;
  optional Annotation child = 3;
  map<string, int32> counts = 4;
  optional bytes blob = 5;
  optional Level level = 6;
  optional float ratio = 7;
}

extend google.protobuf.FieldOptions {
  optional Annotation note = 50001;
  repeated string tags = 50002;
  optional double weight = 50003;
  repeated Annotation notes = 50004;
  optional float fweight = 50005;
}

extend google.protobuf.MessageOptions {
  optional Annotation msg_note = 50001;
}

extend google.protobuf.EnumValueOptions {
  optional string label = 50001;
}

extend google.protobuf.MethodOptions {
  optional Annotation rpc_note = 50001;
}

extend google.protobuf.OneofOptions {
  optional sint32 oneof_weight = 50001;
}

enum Color {
  option allow_alias = true;
  RED = 1 [(label) = "r\"ed\\ 'x' \n\t\001 é"];
  CRIMSON = 1;
  GREEN = 2 [deprecated = true];
  NEGATIVE = -5;
  reserved 10 to 20, 30, 100 to max;
  reserved "BLUE";
}

message Thing {
  option (msg_note) = { text: "a \"quoted\" 'thing'\n" numbers: [1, 2] };
  option deprecated = true;

  message Nested {
    optional int32 deep = 1;
    message Deeper {
      optional Nested up = 1;
    }
  }

  optional string name = 1 [default = "hé \"x\" \\ \n", json_name = "displayName"];
  optional bytes raw = 2 [default = "\000\001\377abc\"'"];
  optional double ratio = 3 [default = -inf];
  optional float f = 4 [default = nan];
  optional Color color = 5 [default = GREEN];
  required int64 id = 6 [
    (note) = {
      text: "id \\d+"
      child { text: "nested" }
      counts { key: "a" value: 1 }
      blob: "\x00\xff"
      level: HIGH
      ratio: 0.1
    },
    (tags) = "a",
    (tags) = "b",
    (weight) = 1e-300,
    (notes) = { text: "one" },
    (notes) = {}
  ];
  repeated int32 packed_ints = 7 [packed = true];
  optional group Result = 8 {
    optional string url = 9;
    repeated string snippets = 10;
  }
  map<string, Thing> children = 11;
  oneof choice {
    option (oneof_weight) = -3;
    string text = 12;
    int32 number = 13 [deprecated = true];
    group Inner = 14 {
      optional int32 x = 15 [default = -7];
    }
  }
  optional Nested nested = 16;
  optional Nested.Deeper deeper = 17;
  optional uint64 big = 18 [default = 18446744073709551615];
  optional bool flag = 19 [default = true];
  optional Annotation empty_note = 20 [(note) = {}];
  optional int32 odd_floats = 21 [(fweight) = -inf, (note).ratio = nan, (note).numbers = -1];

  message Later {
    optional Thing back = 1;
  }

  extensions 100 to 199;
  extensions 1000 to max;
  reserved 500, 600 to 700;
  reserved "old_field";

  extend Thing {
    optional int32 ext_in_scope = 100;
  }
}

extend Thing {
  optional string top_ext = 101;
  repeated Thing things = 102;
}

message Shadow {
  message kitchen {
    optional int32 v = 1;
  }
  optional .kitchen.sink.Thing thing = 1 [(.kitchen.sink.weight) = 2];
  optional kitchen k = 2;
}

service Svc {
  option deprecated = true;
  rpc Unary(Thing) returns (Thing);
  rpc Stream(stream Thing) returns (stream Thing) {
    option (rpc_note).text = "x";
    option idempotency_level = NO_SIDE_EFFECTS;
  }
}
"""

KITCHEN_SINK_PROTO3 = r"""
syntax = "proto3";

package kitchen.three;

import "google/protobuf/descriptor.proto";
import "google/protobuf/timestamp.proto";
import public "kitchen/sink.proto";

extend google.protobuf.FileOptions {
  string file_tag = 60000;
}

option (file_tag) = "three";

message P3 {
  optional string maybe = 1;
  string plain = 2 [(kitchen.sink.tags) = "t"];
  repeated int32 nums = 3 [packed = false];
  map<int64, E3> colors = 4;
  kitchen.sink.Thing.Nested nested = 10;
  google.protobuf.Timestamp ts = 5;
  oneof kind {
    string a = 6;
    bytes b = 7;
  }
  optional int32 another = 8;
  string with_json = 9 [json_name = "custom"];
}

enum E3 {
  E3_UNSPECIFIED = 0;
  E3_ONE = 1 [(kitchen.sink.label) = "üñí"];
}
"""


def _reprint_and_compare(tmp_path: Path, sources: dict[str, str]) -> None:
    """Compile ``sources``, print every file back and check protoc agrees."""
    source_dir = tmp_path / "src"
    for name, text in sources.items():
        (source_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (source_dir / name).write_text(text, encoding="utf-8")
    original = run_protoc([source_dir], list(sources), tmp_path / "a.binpb", include_imports=True)

    printed_dir = tmp_path / "printed"
    for file in original.file:
        if file.name in sources:
            (printed_dir / file.name).parent.mkdir(parents=True, exist_ok=True)
            text = vendor.print_proto_file(file, [f for f in original.file if f.name != file.name])
            (printed_dir / file.name).write_text(text, encoding="utf-8")
    reprinted = run_protoc([printed_dir], list(sources), tmp_path / "b.binpb", include_imports=True)

    pool = build_pool(original.file)
    by_name = {file.name: file for file in reprinted.file}
    for file in original.file:
        if file.name in sources:
            assert_same_descriptor(file, by_name[file.name], pool)


def test_printer_round_trips_kitchen_sink(tmp_path: Path) -> None:
    _reprint_and_compare(
        tmp_path,
        {"kitchen/sink.proto": KITCHEN_SINK_PROTO2, "kitchen/three.proto": KITCHEN_SINK_PROTO3},
    )


def test_printer_round_trips_googleapis(tmp_path: Path) -> None:
    sources = {
        path: (THIRD_PARTY / path).read_text(encoding="utf-8")
        for path in sorted({file.path for file in vendor.googleapis_files()})
    }
    _reprint_and_compare(tmp_path, sources)


def test_printer_qualifies_shadowed_names(tmp_path: Path) -> None:
    source_dir = tmp_path / "src"
    (source_dir / "kitchen").mkdir(parents=True)
    (source_dir / "kitchen" / "sink.proto").write_text(KITCHEN_SINK_PROTO2, encoding="utf-8")
    compiled = run_protoc([source_dir], ["kitchen/sink.proto"], tmp_path / "k.binpb", include_imports=True)
    file = next(f for f in compiled.file if f.name == "kitchen/sink.proto")
    text = vendor.print_proto_file(file, [f for f in compiled.file if f is not file])
    # Inside Shadow, `kitchen` is a nested message, so package names need a leading dot.
    assert "optional Thing thing = 1 [(.kitchen.sink.weight) = 2.0];" in text
    assert "optional kitchen k = 2;" in text


def test_quote_string_escapes() -> None:
    assert vendor.quote_string('it\'s "x" \\ \n é') == '"it\'s \\"x\\" \\\\ \\n é"'
    assert vendor.quote_string(b"\x00'\xff") == '"\\000\'\\377"'


# ---- CLI behaviour ------------------------------------------------------------------


def test_write_is_idempotent_and_check_detects_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "third_party"
    assert vendor.main(["--out", str(out)]) == 0
    written = capsys.readouterr().out.splitlines()
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert len(written) == len(files) == len(vendor.vendored_files())
    assert all(line.startswith("wrote") for line in written)
    snapshot = {name: (out / name).read_bytes() for name in files}

    assert vendor.main(["--out", str(out)]) == 0
    assert all(line.startswith("unchanged") for line in capsys.readouterr().out.splitlines())
    assert {name: (out / name).read_bytes() for name in files} == snapshot
    assert vendor.main(["--check", "--out", str(out)]) == 0
    capsys.readouterr()

    stale = out / "google" / "api" / "http.proto"
    stale.write_bytes(stale.read_bytes() + b"\n// local edit\n")
    (out / "extra").mkdir()
    (out / "extra" / "stray.proto").write_text('syntax = "proto3";\n', encoding="utf-8")
    assert vendor.main(["--check", "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert "google/api/http.proto is stale" in error
    assert "extra/stray.proto is not produced" in error
    assert "python tools/vendor_protos.py" in error

    (out / vendor.VALIDATE_PROTO).unlink()
    assert vendor.main(["--check", "--out", str(out)]) == 1
    assert "buf/validate/validate.proto is missing" in capsys.readouterr().err

    assert vendor.main(["--out", str(out)]) == 0
    capsys.readouterr()
    assert not (out / "extra").exists()
    assert {name: (out / name).read_bytes() for name in files} == snapshot
    assert vendor.main(["--check", "--out", str(out)]) == 0
