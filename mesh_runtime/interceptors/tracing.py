"""A server span for every call, child of the caller's ``traceparent``.

In the chain only when tracing is on (``mesh_runtime.telemetry``), outermost,
so the access-log line and everything the call does (database queries,
client calls, outbox rows) belong to its span. A scope class per call, like
the access log's, not the contrib grpc.aio interceptor: that one is a
grpc.aio interceptor of its own, run and wrapping the handler on every call
(see the package's design note).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from mesh_runtime.interceptors.chain import UNGUARDED_PREFIXES, MeshInterceptor, final_code

_tracer = trace.get_tracer("mesh_runtime.rpc")


class TracingInterceptor(MeshInterceptor):
    """Starts a SERVER span per call (name ``package.Service/Method``) with
    the OpenTelemetry RPC attributes and the call's final status code."""

    def applies_to(self, method: str) -> bool:
        return not method.startswith(UNGUARDED_PREFIXES)

    def scope(self, method: str, context: grpc.aio.ServicerContext) -> AbstractAsyncContextManager[None]:
        return _CallSpan(method, context)


class _CallSpan:
    __slots__ = ("context", "method", "span", "token")

    def __init__(self, method: str, context: grpc.aio.ServicerContext) -> None:
        self.method = method
        self.context = context

    async def __aenter__(self) -> None:
        carrier = {key: value for key, value in self.context.invocation_metadata() or () if isinstance(value, str)}
        parent = propagate.extract(carrier)
        name = self.method.lstrip("/")
        service, _, rpc_method = name.partition("/")
        self.span = _tracer.start_span(
            name,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": rpc_method},
        )
        self.token = otel_context.attach(trace.set_span_in_context(self.span, parent))

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> bool:
        try:
            code = final_code(self.context, exc)
            self.span.set_attribute("rpc.grpc.status_code", code.value[0])
            if code not in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED):
                self.span.set_status(Status(StatusCode.ERROR, code.name))
        finally:
            otel_context.detach(self.token)
            self.span.end()
        return False
