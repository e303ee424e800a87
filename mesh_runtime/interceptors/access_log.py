"""The access log: a request id for every call and one log line when it ends."""

from __future__ import annotations

import logging
import os
import re
import time
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc

from mesh_runtime.interceptors.chain import (
    UNGUARDED_PREFIXES,
    MeshInterceptor,
    final_code,
    send_headers,
    streaming_response,
)
from mesh_runtime.structured_logging import REQUEST_ID_HEADER, request_id_var

logger = logging.getLogger("mesh.rpc")

_REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
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
    does not pay for it. They go out when the call has its answer, not as it
    starts: a server that dies in between has then sent nothing, and Envoy
    can still tell the caller UNAVAILABLE (after response headers it could
    only reset the stream, which clients read as INTERNAL). An error is one
    trailers-only frame, so headers a failed call sets for HTTP clients
    (Retry-After, WWW-Authenticate) reach them through Envoy's transcoding,
    which drops trailers that follow headers.
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

    __slots__ = ("context", "method", "peer", "started", "supplied", "token")

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
        self.supplied = supplied
        try:
            context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
        except BaseException as exc:
            self._finish(exc)
            raise

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> bool:
        try:
            if exc is None and self.supplied and not streaming_response.get():
                await send_headers(self.context)
        finally:
            self._finish(exc)
        return False

    def _finish(self, exc: BaseException | None) -> None:
        code = final_code(self.context, exc)
        try:
            logger.info(
                "rpc",
                extra={
                    "method": self.method,
                    "code": code.name,
                    "duration_ms": round((time.perf_counter() - self.started) * 1000, 2),
                    "peer": self.peer,
                },
            )
        finally:
            request_id_var.reset(self.token)
