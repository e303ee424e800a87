"""The one way services and the web app open gRPC channels: with deadlines.

Every call made through a channel from ``open_channel`` gets the default
deadline unless the caller set one, and carries the current request id so a
request can be followed across services in the logs; with tracing on
(``mesh_runtime.telemetry``) each call is a client span and sends ``traceparent``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from mesh_runtime.structured_logging import REQUEST_ID_HEADER, request_id_var
from mesh_runtime.telemetry import tracing_enabled

DEFAULT_DEADLINE_SECONDS = 10.0


class _DeadlineInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """Fills in the default timeout and the request id on each outgoing call."""

    def __init__(self, default_timeout: float) -> None:
        self.default_timeout = default_timeout

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        request_id = request_id_var.get()
        if request_id and REQUEST_ID_HEADER not in metadata:
            metadata.add(REQUEST_ID_HEADER, request_id)
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=details.timeout if details.timeout is not None else self.default_timeout,
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )

    async def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_stream_unary(
        self, continuation: Callable[..., Any], details: Any, request_iterator: Any
    ) -> Any:
        return await continuation(self._details(details), request_iterator)

    async def intercept_stream_stream(
        self, continuation: Callable[..., Any], details: Any, request_iterator: Any
    ) -> Any:
        return await continuation(self._details(details), request_iterator)


def open_channel(target: str, *, default_timeout: float = DEFAULT_DEADLINE_SECONDS) -> grpc.aio.Channel:
    """An insecure grpc.aio channel to ``target`` ("host:port") whose calls all
    have a deadline (``default_timeout`` seconds unless the call sets one)."""
    if default_timeout <= 0:
        raise ValueError("default_timeout must be positive")
    interceptors: list[Any] = [_DeadlineInterceptor(default_timeout)]
    if tracing_enabled():
        # A client span per call, and the call's traceparent in its metadata.
        from opentelemetry.instrumentation.grpc import aio_client_interceptors

        interceptors += aio_client_interceptors()
    return grpc.aio.insecure_channel(
        target,
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
        ],
    )
