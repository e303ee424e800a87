"""Domain errors and their one mapping to gRPC status codes and rich details.

Domain code raises these; the error interceptor turns them into a
``google.rpc.Status`` (code, message, details) on the wire, and
``from_rpc_error`` turns a failed call back into the same typed error on the
client side, after google-api-core's exceptions module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

ERROR_DOMAIN = "analytics-mesh"


class MeshError(Exception):
    """Base of every error a service reports to its callers on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, *, details: Sequence[Message] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[Message] = list(details)
        # Extra response metadata, e.g. www-authenticate on UNAUTHENTICATED.
        self.metadata: tuple[tuple[str, str], ...] = ()

    def to_status(self) -> status_pb2.Status:
        """The error as a google.rpc.Status with packed details."""
        packed = []
        for detail in self.details:
            any_detail = any_pb2.Any()
            any_detail.Pack(detail)
            packed.append(any_detail)
        return status_pb2.Status(
            code=self.code.value[0], message=self.message, details=packed
        )

    def detail(self, kind: type[Message]) -> Message | None:
        """The first detail of type ``kind``, if the error carries one."""
        return next((d for d in self.details if isinstance(d, kind)), None)


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field: its path (``dataset.name``) and what is wrong with it."""

    field: str
    description: str


class InvalidArgument(MeshError):
    """The request is malformed; the caller must change it."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(
        self,
        message: str,
        *,
        violations: Sequence[FieldViolation] = (),
        details: Sequence[Message] = (),
    ) -> None:
        extra: list[Message] = []
        if violations:
            extra.append(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in violations
                    ]
                )
            )
        super().__init__(message, details=[*extra, *details])
        self.violations = list(violations)

    @classmethod
    def for_field(cls, field: str, description: str) -> InvalidArgument:
        """The error for one bad field: ``"<field>: <description>"`` with that one violation."""
        return cls(f"{field}: {description}", violations=[FieldViolation(field, description)])


def _resource_info(resource_type: str, name: str, description: str) -> Message:
    return error_details_pb2.ResourceInfo(
        resource_type=resource_type, resource_name=name, description=description
    )


class NotFound(MeshError):
    """The named resource does not exist."""

    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, resource_type: str, name: str) -> None:
        super().__init__(
            f"{resource_type} {name!r} not found",
            details=[_resource_info(resource_type, name, "not found")],
        )


class AlreadyExists(MeshError):
    """A resource with the same unique key exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS

    def __init__(self, resource_type: str, name: str) -> None:
        super().__init__(
            f"{resource_type} {name!r} already exists",
            details=[_resource_info(resource_type, name, "already exists")],
        )


class FailedPrecondition(MeshError):
    """The system is not in a state where the request can run."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(MeshError):
    """The caller is known but not allowed to do this."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(MeshError):
    """The caller did not prove who it is."""

    code = grpc.StatusCode.UNAUTHENTICATED


def retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    """A RetryInfo detail telling the caller to wait ``seconds`` before retrying."""
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(seconds * 1e9))
    return error_details_pb2.RetryInfo(retry_delay=delay)


class _Retryable(MeshError):
    """An error the caller may retry, after ``retry_after`` seconds when given."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, details: Sequence[Message] = ()
    ) -> None:
        hint = [retry_info(retry_after)] if retry_after is not None else []
        super().__init__(message, details=[*details, *hint])
        if retry_after is not None:
            # HTTP clients read the wait from Retry-After (whole seconds, rounded up).
            self.metadata = (("retry-after", str(max(1, math.ceil(retry_after)))),)


class ResourceExhausted(_Retryable):
    """A quota, rate or size limit was hit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(_Retryable):
    """A dependency is down; the caller may retry after ``retry_after`` seconds."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(MeshError):
    """The call ran out of time."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Internal(MeshError):
    """A bug or an unexpected failure inside the service."""

    code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[MeshError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        PermissionDenied,
        Unauthenticated,
        ResourceExhausted,
        Unavailable,
        DeadlineExceeded,
        Internal,
    )
}

_DETAIL_TYPES: tuple[type[Message], ...] = (
    error_details_pb2.BadRequest,
    error_details_pb2.ResourceInfo,
    error_details_pb2.RetryInfo,
    error_details_pb2.ErrorInfo,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.QuotaFailure,
    error_details_pb2.DebugInfo,
    error_details_pb2.RequestInfo,
    error_details_pb2.Help,
    error_details_pb2.LocalizedMessage,
)


def _unpack(details: Sequence[any_pb2.Any]) -> list[Message]:
    unpacked: list[Message] = []
    for any_detail in details:
        for kind in _DETAIL_TYPES:
            if any_detail.Is(kind.DESCRIPTOR):
                message = kind()
                any_detail.Unpack(message)
                unpacked.append(message)
                break
    return unpacked


def from_rpc_error(error: grpc.RpcError) -> MeshError:
    """The typed MeshError for a failed call, with its rich details unpacked."""
    code = error.code()  # type: ignore[attr-defined]
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    message = status.message if status else (error.details() or code.name)  # type: ignore[attr-defined]
    details = _unpack(status.details) if status else []
    cls = _BY_CODE.get(code, MeshError)
    err = MeshError.__new__(cls)
    MeshError.__init__(err, message, details=details)
    if cls is MeshError:
        err.code = code
    if isinstance(err, InvalidArgument):
        bad = err.detail(error_details_pb2.BadRequest)
        err.violations = [
            FieldViolation(v.field, v.description)
            for v in (bad.field_violations if bad else [])  # type: ignore[attr-defined]
        ]
    return err


def status_code_number(code: grpc.StatusCode) -> int:
    """The numeric google.rpc.Code of a grpc.StatusCode."""
    return int(code.value[0])

