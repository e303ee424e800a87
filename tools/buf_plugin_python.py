"""buf plugin that generates Python messages, .pyi stubs and gRPC stubs.

buf has no offline Python gRPC plugin, so this plugin takes buf's
CodeGeneratorRequest, hands the same descriptors to the protoc bundled with
grpcio-tools (whose versions match the protobuf runtime we install), and
returns the files it wrote. Used by buf.gen.yaml; run ``./mesh gen``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    """Run grpc_tools' protoc on the request's files and collect its output."""
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        descriptor_set = root / "input.binpb"
        descriptor_set.write_bytes(
            descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString()
        )
        out = root / "out"
        out.mkdir()
        status = protoc.main(
            [
                "protoc",
                f"--descriptor_set_in={descriptor_set}",
                f"--python_out={out}",
                f"--pyi_out={out}",
                f"--grpc_python_out={out}",
                *request.file_to_generate,
            ]
        )
        if status != 0:
            response.error = f"grpc_tools.protoc failed with status {status}"
            return response
        for path in sorted(out.rglob("*")):
            if path.is_file():
                response.file.add(
                    name=path.relative_to(out).as_posix(), content=path.read_text()
                )
    return response


def main() -> None:
    """Plugin entry point: request on stdin, response on stdout."""
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(generate(request).SerializeToString())


if __name__ == "__main__":
    main()
