"""The chain: several MeshInterceptors run as one grpc.aio server interceptor.

Each interceptor wraps every RPC, whatever its kind (unary or streaming on
either side), through two hooks: ``scope`` surrounds the whole call,
``check_request`` sees each incoming message. The chain wraps a method's
handler once, with every interceptor that applies to it, and reuses that
wrapper (see the package's design note for why it is not grpc.aio's own
per-interceptor chaining).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, nullcontext
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from mesh_runtime.structured_logging import REQUEST_ID_HEADER, request_id_var

# Calls that must keep working whatever else happens: probes and debugging.
UNGUARDED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


# Whether the call being served streams its responses (set by the wrappers).
streaming_response: contextvars.ContextVar[bool] = contextvars.ContextVar("streaming_response", default=False)
# Whether the call's response headers (with its request id) went out.
_headers_sent: contextvars.ContextVar[bool] = contextvars.ContextVar("headers_sent", default=False)


async def send_headers(context: grpc.aio.ServicerContext, extra: Sequence[tuple[str, str]] = ()) -> None:
    """Send the response headers (with the request id, and ``extra``) now, once.

    Unary calls whose caller sent an id send them with their answer. A server stream sends them with its
    first message, so a stream that fails before any message is a plain
    error (an HTTP error status through Envoy, not "200" and an error
    body); a servicer whose stream may stay quiet calls this once it is
    established (e.g. WatchResults after subscribing), and one with headers
    of its own sends them here before its first message (Envoy passes them
    on to REST clients, e.g. ExportPoints' Content-Disposition).
    """
    if _headers_sent.get():
        return
    _headers_sent.set(True)
    await context.send_initial_metadata(((REQUEST_ID_HEADER, request_id_var.get() or ""), *extra))


def final_code(context: grpc.aio.ServicerContext, exc: BaseException | None) -> grpc.StatusCode:
    """The status a call ended with: OK, the code the servicer set, or
    CANCELLED/UNKNOWN for an exception that escaped it."""
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    return grpc.StatusCode.OK if exc is None else grpc.StatusCode.UNKNOWN


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

    async def respond_stream(stack: AsyncExitStack, result: Any, context: grpc.aio.ServicerContext) -> None:
        """Write the servicer's responses, all within the call's own task.

        The wrapper is a coroutine that writes, not an async generator that
        grpc iterates: when a call is cancelled while grpc sends a message, a
        generator is left suspended and closed later by the garbage collector
        in another task, where the scopes' context variables cannot be reset
        ("created in a different Context", logged as an unexpected error).
        """
        if not hasattr(result, "__aiter__"):  # a servicer that writes with context.write() and returns None
            await result
            return
        closing = getattr(result, "aclose", None)
        if closing is not None:
            stack.push_async_callback(closing)  # its own cleanup runs inside the scopes, in this task
        async for response in result:
            await send_headers(context)
            await context.write(response)

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

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> None:
            streaming_response.set(True)
            async with AsyncExitStack() as stack:
                await enter(stack, context, request)
                await respond_stream(stack, inner_us(request, context), context)

        return grpc.unary_stream_rpc_method_handler(unary_stream, **codecs)

    inner_ss = handler.stream_stream

    async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> None:
        streaming_response.set(True)
        async with AsyncExitStack() as stack:
            await enter(stack, context)
            await respond_stream(stack, inner_ss(checked_stream(requests, context), context), context)

    return grpc.stream_stream_rpc_method_handler(stream_stream, **codecs)
