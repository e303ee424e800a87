"""Domain errors map to status codes and details, and back again."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2

from mesh_runtime.errors import (
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unavailable,
)


def test_status_carries_code_message_and_details() -> None:
    status = InvalidArgument("bad", violations=[FieldViolation("a.b", "too long")]).to_status()
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.message == "bad"
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == [("a.b", "too long")]


def test_resource_errors_name_the_resource() -> None:
    info = NotFound("dataset", "42").detail(error_details_pb2.ResourceInfo)
    assert info is not None and info.resource_name == "42"  # type: ignore[attr-defined]
    assert AlreadyExists("dataset", "x").code == grpc.StatusCode.ALREADY_EXISTS


def test_unavailable_suggests_when_to_retry() -> None:
    retry = Unavailable("down", retry_after=1.5).detail(error_details_pb2.RetryInfo)
    assert retry is not None
    assert retry.retry_delay.ToNanoseconds() == 1_500_000_000  # type: ignore[attr-defined]
