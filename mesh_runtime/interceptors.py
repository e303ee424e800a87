"""Server interceptors shared by every service.

Each interceptor wraps the behaviour of every RPC, whatever its kind (unary or
streaming on either side), through two hooks: ``scope`` surrounds the whole
call, ``check_request`` sees each incoming message. A server runs them as
one ``InterceptorChain``; order matters: the first is the outermost, so the
server uses request id/logging, then error mapping, then authorization, then
validation.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, nullcontext
from typing import Any

import grpc
import protovalidate
from google.protobuf import descriptor
from google.protobuf.message import DecodeError, Message

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


# Whether the call being served streams its responses (set by the wrappers).
_streaming_response: contextvars.ContextVar[bool] = contextvars.ContextVar("streaming_response", default=False)
# Whether the call's response headers (with its request id) went out.
_headers_sent: contextvars.ContextVar[bool] = contextvars.ContextVar("headers_sent", default=False)


async def send_headers(context: grpc.aio.ServicerContext) -> None:
    """Send the response headers (with the request id) now, once.

    Unary calls whose caller sent an id send them as they start. A server stream sends them with its
    first message, so a stream that fails before any message is a plain
    error (an HTTP error status through Envoy, not "200" and an error
    body); a servicer whose stream may stay quiet calls this once it is
    established (e.g. WatchResults after subscribing).
    """
    if _headers_sent.get():
        return
    _headers_sent.set(True)
    await context.send_initial_metadata(((REQUEST_ID_HEADER, request_id_var.get() or ""),))


_NO_REQUEST = object()  # a stream's requests are checked one by one as they arrive


class Undecodable:
    """A request body that is not a valid message (e.g. corrupt bytes)."""

    def __init__(self, error: str) -> None:
        self.error = error


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """A deserializer that returns Undecodable instead of raising, so the
    caller gets INVALID_ARGUMENT rather than an UNKNOWN naming a Python exception."""
    if deserializer is None or getattr(deserializer, "_mesh_tolerant", False):
        return deserializer

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except (DecodeError, ValueError, TypeError) as exc:
            return Undecodable(str(exc))

    deserialize._mesh_tolerant = True  # type: ignore[attr-defined]
    return deserialize


class MeshInterceptor:
    """Base class: override ``scope`` and/or ``check_request``.

    A server runs them through one ``InterceptorChain`` (the grpc.aio
    interceptor), which wraps each method's handler once.
    """

    # Whether requests this interceptor wraps may arrive as Undecodable (it must check them).
    tolerant_requests = False

    def scope(self, method: str, context: grpc.aio.ServicerContext) -> AbstractAsyncContextManager[None]:
        """Context entered around the whole call (all of a stream's messages)."""
        return nullcontext()

    async def check_request(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        """Called with every request message before the servicer sees it."""

    def applies_to(self, method: str) -> bool:
        """Whether this interceptor wraps ``method`` (full name, /pkg.Svc/Method)."""
        return True


class InterceptorChain(grpc.aio.ServerInterceptor):
    """Several MeshInterceptors run as one, outermost first.

    grpc.aio asks every interceptor for every call; wrapping a method's
    handler once and reusing it saves a wrapper per interceptor per call,
    and one wrapper runs all the scopes and checks instead of one layer each.
    """

    def __init__(self, interceptors: Sequence[MeshInterceptor]) -> None:
        self.interceptors = tuple(interceptors)
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        chain = tuple(i for i in self.interceptors if i.applies_to(method))
        wrapped = _wrap_handler(chain, method, handler) if chain else handler
        self._wrapped[method] = (handler, wrapped)
        return wrapped


def _overrides(icpt: MeshInterceptor, name: str) -> bool:
    return getattr(type(icpt), name) is not getattr(MeshInterceptor, name)


def _wrap_handler(
    chain: Sequence[MeshInterceptor], method: str, handler: grpc.RpcMethodHandler
) -> grpc.RpcMethodHandler:
    # Per interceptor, outermost first: its scope (entered) and its request check.
    steps = [
        (
            icpt.scope if _overrides(icpt, "scope") else None,
            icpt.check_request if _overrides(icpt, "check_request") else None,
        )
        for icpt in chain
    ]
    checks = [check for _, check in steps if check is not None]

    async def enter(stack: AsyncExitStack, context: grpc.aio.ServicerContext, request: Any = _NO_REQUEST) -> None:
        for scope, check in steps:
            if scope is not None:
                await stack.enter_async_context(scope(method, context))
            if check is not None and request is not _NO_REQUEST:
                await check(method, request, context)

    async def checked_stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for request in requests:
            for check in checks:
                await check(method, request, context)
            yield request

    async def respond_stream(result: Any) -> AsyncIterator[Any]:
        if hasattr(result, "__aiter__"):
            async for response in result:
                yield response
        else:  # a servicer that writes with context.write() and returns None
            await result

    tolerant = any(icpt.tolerant_requests for icpt in chain)
    codecs = {
        "request_deserializer": (
            _tolerant(handler.request_deserializer) if tolerant else handler.request_deserializer
        ),
        "response_serializer": handler.response_serializer,
    }

    if handler.unary_unary:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext, index: int = 0) -> Any:
            # Steps from ``index`` inwards, nested directly (the hot path: no exit stack).
            if index == len(steps):
                return await inner_uu(request, context)
            scope, check = steps[index]
            if scope is None:
                if check is not None:
                    await check(method, request, context)
                return await unary_unary(request, context, index + 1)
            async with scope(method, context):
                if check is not None:
                    await check(method, request, context)
                return await unary_unary(request, context, index + 1)

        return grpc.unary_unary_rpc_method_handler(unary_unary, **codecs)

    if handler.stream_unary:
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            async with AsyncExitStack() as stack:
                await enter(stack, context)
                return await inner_su(checked_stream(requests, context), context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, **codecs)

    if handler.unary_stream:
        inner_us = handler.unary_stream

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            _streaming_response.set(True)
            async with AsyncExitStack() as stack:
                await enter(stack, context, request)
                async for response in respond_stream(inner_us(request, context)):
                    await send_headers(context)
                    yield response

        return grpc.unary_stream_rpc_method_handler(unary_stream, **codecs)

    inner_ss = handler.stream_stream

    async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        _streaming_response.set(True)
        async with AsyncExitStack() as stack:
            await enter(stack, context)
            async for response in respond_stream(inner_ss(checked_stream(requests, context), context)):
                await send_headers(context)
                yield response

    return grpc.stream_stream_rpc_method_handler(stream_stream, **codecs)


def _incoming_request_id(context: grpc.aio.ServicerContext) -> tuple[str, bool]:
    """The caller's request id (and True), or a new one (and False)."""
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_HEADER and isinstance(value, str):
            if _REQUEST_ID_PATTERN.match(value):
                return value, True
    return os.urandom(16).hex(), False  # as random as uuid4().hex, without building a UUID


class RequestLoggingInterceptor(MeshInterceptor):
    """Gives every call a request id (the caller's x-request-id, or a new one)
    and logs one line per call.

    The id goes back in the trailers of every call, and in the response
    headers of every stream and of every unary call whose caller sent one
    (REST calls through Envoy always do). A unary call's headers can only go
    out on their own before the response, a separate write that cost a
    quarter of a cached read's time, so a caller who did not ask to correlate
    does not pay for it.
    """

    def applies_to(self, method: str) -> bool:
        return not method.startswith(UNGUARDED_PREFIXES)

    def scope(self, method: str, context: grpc.aio.ServicerContext) -> AbstractAsyncContextManager[None]:
        return _CallLog(method, context)


class _CallLog:
    """One call's request id, response id metadata and access-log line.

    A class rather than a generator-based context manager: it runs on every
    call, and this is several microseconds cheaper.
    """

    __slots__ = ("context", "method", "peer", "started", "token")

    def __init__(self, method: str, context: grpc.aio.ServicerContext) -> None:
        self.method = method
        self.context = context

    async def __aenter__(self) -> None:
        context = self.context
        request_id, supplied = _incoming_request_id(context)
        self.token = request_id_var.set(request_id)
        self.started = time.perf_counter()
        # Read now: once a call is cancelled its context must not be touched
        # (grpc may have released the call; reading it crashed the process).
        self.peer = context.peer()
        try:
            context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
            if supplied and not _streaming_response.get():
                await send_headers(context)
        except BaseException as exc:
            self._finish(exc)
            raise

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> bool:
        self._finish(exc)
        return False

    def _finish(self, exc: BaseException | None) -> None:
        code: Any
        if exc is None:
            code = self.context.code() or grpc.StatusCode.OK
        elif isinstance(exc, asyncio.CancelledError):
            code = grpc.StatusCode.CANCELLED
        else:
            code = self.context.code() or grpc.StatusCode.UNKNOWN
            if isinstance(code, int):
                code = grpc.StatusCode.UNKNOWN
        try:
            logger.info(
                "rpc",
                extra={
                    "method": self.method,
                    "code": code.name if isinstance(code, grpc.StatusCode) else str(code),
                    "duration_ms": round((time.perf_counter() - self.started) * 1000, 2),
                    "peer": self.peer,
                },
            )
        finally:
            request_id_var.reset(self.token)


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
