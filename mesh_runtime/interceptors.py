"""Server interceptors shared by every service.

Each interceptor wraps the behaviour of every RPC, whatever its kind (unary or
streaming on either side), through two hooks: ``scope`` surrounds the whole
call, ``check_request`` sees each incoming message. Order matters: the first
interceptor given to the server is the outermost, so the server uses
request id/logging, then error mapping, then validation.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

import grpc
import protovalidate
from google.protobuf.message import Message

from mesh_runtime.errors import (
    FieldViolation,
    Internal,
    InvalidArgument,
    MeshError,
    Unavailable,
)
from mesh_runtime.structured_logging import request_id_var

logger = logging.getLogger("mesh.rpc")

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# Calls that must keep working whatever else happens: probes and debugging.
UNGUARDED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class MeshInterceptor(grpc.aio.ServerInterceptor):
    """Base class: override ``scope`` and/or ``check_request``."""

    def scope(self, method: str, context: grpc.aio.ServicerContext) -> AbstractAsyncContextManager[None]:
        """Context entered around the whole call (all of a stream's messages)."""
        return nullcontext()

    async def check_request(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        """Called with every request message before the servicer sees it."""

    def applies_to(self, method: str) -> bool:
        """Whether this interceptor wraps ``method`` (full name, /pkg.Svc/Method)."""
        return True

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not self.applies_to(method):
            return handler
        return _wrap_handler(self, method, handler)


def _wrap_handler(icpt: MeshInterceptor, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    async def checked_stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for request in requests:
            await icpt.check_request(method, request, context)
            yield request

    async def respond_stream(result: Any) -> AsyncIterator[Any]:
        if hasattr(result, "__aiter__"):
            async for response in result:
                yield response
        else:  # a servicer that writes with context.write() and returns None
            await result

    codecs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }

    if handler.unary_unary:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with icpt.scope(method, context):
                await icpt.check_request(method, request, context)
                return await inner_uu(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, **codecs)

    if handler.stream_unary:
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            async with icpt.scope(method, context):
                return await inner_su(checked_stream(requests, context), context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, **codecs)

    if handler.unary_stream:
        inner_us = handler.unary_stream

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async with icpt.scope(method, context):
                await icpt.check_request(method, request, context)
                async for response in respond_stream(inner_us(request, context)):
                    yield response

        return grpc.unary_stream_rpc_method_handler(unary_stream, **codecs)

    inner_ss = handler.stream_stream

    async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async with icpt.scope(method, context):
            result = inner_ss(checked_stream(requests, context), context)
            async for response in respond_stream(result):
                yield response

    return grpc.stream_stream_rpc_method_handler(stream_stream, **codecs)


def _incoming_request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_HEADER and isinstance(value, str):
            if _REQUEST_ID_PATTERN.match(value):
                return value
    return uuid.uuid4().hex


class RequestLoggingInterceptor(MeshInterceptor):
    """Gives every call a request id (the caller's x-request-id, or a new one),
    returns it in the response headers, and logs one line per call."""

    def applies_to(self, method: str) -> bool:
        return not method.startswith(UNGUARDED_PREFIXES)

    @asynccontextmanager
    async def scope(self, method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        request_id = _incoming_request_id(context)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        # Read now: once a call is cancelled its context must not be touched
        # (grpc may have released the call; reading it crashed the process).
        peer = context.peer()
        code = grpc.StatusCode.OK
        try:
            await context.send_initial_metadata(((REQUEST_ID_HEADER, request_id),))
            yield
            code = context.code() or grpc.StatusCode.OK
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except BaseException:
            code = context.code() or grpc.StatusCode.UNKNOWN
            if isinstance(code, int):
                code = grpc.StatusCode.UNKNOWN
            raise
        finally:
            code_name = code.name if isinstance(code, grpc.StatusCode) else str(code)
            logger.info(
                "rpc",
                extra={
                    "method": method,
                    "code": code_name,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "peer": peer,
                },
            )
            request_id_var.reset(token)


async def abort_with(context: grpc.aio.ServicerContext, error: MeshError) -> None:
    """End the call with ``error``'s code, message and rich details."""
    status = error.to_status()
    await context.abort(
        error.code,
        error.message,
        trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()), *error.metadata),
    )


class ErrorMappingInterceptor(MeshInterceptor):
    """Turns domain errors into their status; anything unexpected into INTERNAL.

    An unexpected exception is logged with its traceback, and the caller only
    learns the request id to quote, never the exception text.
    """

    @asynccontextmanager
    async def scope(self, method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        try:
            yield
        except MeshError as error:
            await abort_with(context, error)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except grpc.RpcError as error:
            code = error.code() if hasattr(error, "code") else None
            logger.warning("dependency call failed", extra={"dependency_code": str(code)})
            retryable = code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            error_out: MeshError = (
                Unavailable("a service this call needs is unavailable; retry shortly", retry_after=1.0)
                if retryable
                else _internal()
            )
            await abort_with(context, error_out)
        except Exception:
            logger.exception("unexpected error", extra={"method": method})
            await abort_with(context, _internal())


def _internal() -> Internal:
    return Internal(f"internal error; quote request id {request_id_var.get() or 'unknown'} when reporting it")


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


def violations_of(message: Message) -> list[FieldViolation]:
    """The protovalidate rule violations of ``message``, as field violations."""
    return [
        FieldViolation(field=_field_path(v) or "(message)", description=v.proto.message or v.proto.rule_id)
        for v in protovalidate.collect_violations(message)
    ]


class ValidationInterceptor(MeshInterceptor):
    """Checks every request against the protovalidate rules in its proto."""

    def applies_to(self, method: str) -> bool:
        return not method.startswith(UNGUARDED_PREFIXES)

    async def check_request(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        if not isinstance(request, Message):
            return
        violations = violations_of(request)
        if violations:
            summary = "; ".join(f"{v.field}: {v.description}" for v in violations[:5])
            raise InvalidArgument(f"invalid request: {summary}", violations=violations)
