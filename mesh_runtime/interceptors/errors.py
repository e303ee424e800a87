"""Error mapping: domain errors become their gRPC status with rich details;
anything unexpected becomes INTERNAL naming only the request id."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc

from mesh_runtime.errors import Internal, MeshError, Unavailable
from mesh_runtime.interceptors.chain import MeshInterceptor
from mesh_runtime.structured_logging import REQUEST_ID_HEADER, request_id_var

logger = logging.getLogger("mesh.rpc")


async def abort_with(context: grpc.aio.ServicerContext, error: MeshError) -> None:
    """End the call with ``error``'s code, message and rich details."""
    status = error.to_status()
    request_id = request_id_var.get()
    await context.abort(
        error.code,
        error.message,
        trailing_metadata=(
            ("grpc-status-details-bin", status.SerializeToString()),
            *(((REQUEST_ID_HEADER, request_id),) if request_id else ()),
            *error.metadata,
        ),
    )


class ErrorMappingInterceptor(MeshInterceptor):
    """Turns domain errors into their status; anything unexpected into INTERNAL.

    An unexpected exception is logged with its traceback, and the caller only
    learns the request id to quote, never the exception text.
    """

    def scope(self, method: str, context: grpc.aio.ServicerContext) -> AbstractAsyncContextManager[None]:
        return _ErrorMapping(method, context)


class _ErrorMapping:
    """The error mapping of one call (a class: cheaper than a generator per call)."""

    __slots__ = ("context", "method")

    def __init__(self, method: str, context: grpc.aio.ServicerContext) -> None:
        self.method = method
        self.context = context

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> bool:
        if exc is None or isinstance(exc, (asyncio.CancelledError, grpc.aio.AbortError)):
            return False
        if isinstance(exc, MeshError):
            await abort_with(self.context, exc)
        elif isinstance(exc, grpc.RpcError):
            code = exc.code() if hasattr(exc, "code") else None
            logger.warning("dependency call failed", extra={"dependency_code": str(code)})
            retryable = code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            error_out: MeshError = (
                Unavailable("a service this call needs is unavailable; retry shortly", retry_after=1.0)
                if retryable
                else _internal()
            )
            await abort_with(self.context, error_out)
        elif isinstance(exc, Exception):
            logger.error("unexpected error", exc_info=exc, extra={"method": self.method})
            await abort_with(self.context, _internal())
        return False


def _internal() -> Internal:
    return Internal(f"internal error; quote request id {request_id_var.get() or 'unknown'} when reporting it")
