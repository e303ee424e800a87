"""Reading google.rpc.Status details back from failed gRPC calls in tests."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


def field_violations(error: grpc.RpcError) -> dict[str, str]:
    """The BadRequest field violations of a failed call, field -> description."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no google.rpc.Status details on the error"
    found: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.update({v.field: v.description for v in bad.field_violations})
    return found


def rest_field_violations(body: dict) -> dict[str, str]:
    """The BadRequest field violations of a JSON google.rpc.Status body."""
    found: dict[str, str] = {}
    for detail in body.get("details", []):
        if detail.get("@type", "").endswith("google.rpc.BadRequest"):
            found.update({v["field"]: v["description"] for v in detail.get("fieldViolations", [])})
    return found


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail of a failed call, if it carries one."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no google.rpc.Status details on the error"
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def rest_error_info(body: dict) -> dict | None:
    """The ErrorInfo detail of a JSON google.rpc.Status body, if it carries one."""
    return next((d for d in body.get("details", []) if d.get("@type", "").endswith("google.rpc.ErrorInfo")), None)
