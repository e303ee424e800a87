"""A server span for every call, child of the caller's ``traceparent``.

In the chain only when tracing is on (``mesh_runtime.telemetry``), outermost,
so the access-log line and everything the call does (database queries,
client calls, outbox rows) belong to its span. A scope class per call, like
the access log's, not the contrib grpc.aio interceptor: that one is a
grpc.aio interceptor of its own, run and wrapping the handler on every call
(see the package's design note).

What a call costs here, kept small because ``./mesh bench rpc_overhead``
measures it: the span's name and attributes are made once per method; the
caller's W3C ``traceparent``/``tracestate`` are read straight from the
metadata (the generic propagator API builds a carrier dict and runs every
configured propagator, baggage included, on every call); the tracer is the
provider's own, not the API's proxy. A process with ``OTEL_PROPAGATORS`` set
to something else than W3C trace context gets the generic path.
"""

from __future__ import annotations

import os
import re
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from mesh_runtime.interceptors.chain import UNGUARDED_PREFIXES, MeshInterceptor, final_code

# version-traceid-parentid-flags; a future version may append fields (W3C Trace Context, section 3.2.4).
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_W3C_ONLY = {"", "tracecontext", "tracecontext,baggage", "baggage,tracecontext"}


def remote_parent(traceparent: str, tracestate: str | None = None) -> otel_context.Context | None:
    """The context of a W3C ``traceparent`` header's remote span, or None if it is not a valid one."""
    found = _TRACEPARENT.fullmatch(traceparent.strip())
    if found is None:
        return None
    version, trace_id, span_id, flags, rest = found.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    span_context = SpanContext(
        int(trace_id, 16),
        int(span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(int(flags, 16) & TraceFlags.SAMPLED),
        trace_state=TraceState.from_header([tracestate]) if tracestate else None,
    )
    if not span_context.is_valid:
        return None
    return trace.set_span_in_context(NonRecordingSpan(span_context))


class TracingInterceptor(MeshInterceptor):
    """Starts a SERVER span per call (name ``package.Service/Method``) with
    the OpenTelemetry RPC attributes and the call's final status code."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        # Made after setup_telemetry installed the provider: its tracer, not a proxy.
        self.tracer = trace.get_tracer("mesh_runtime.rpc", tracer_provider=tracer_provider)
        self.w3c_only = os.environ.get("OTEL_PROPAGATORS", "").replace(" ", "").lower() in _W3C_ONLY
        self._methods: dict[str, tuple[str, dict[str, str]]] = {}

    def applies_to(self, method: str) -> bool:
        return not method.startswith(UNGUARDED_PREFIXES)

    def scope(self, method: str, context: grpc.aio.ServicerContext) -> AbstractAsyncContextManager[None]:
        return _CallSpan(self, method, context)

    def name_and_attributes(self, method: str) -> tuple[str, dict[str, str]]:
        """The span name and RPC attributes of ``method`` (/pkg.Svc/Method), made once."""
        known = self._methods.get(method)
        if known is None:
            name = method.lstrip("/")
            service, _, rpc_method = name.partition("/")
            known = self._methods[method] = (
                name,
                {"rpc.system": "grpc", "rpc.service": service, "rpc.method": rpc_method},
            )
        return known

    def parent(self, context: grpc.aio.ServicerContext) -> otel_context.Context | None:
        """The caller's trace context from the call's metadata (None: a new trace)."""
        metadata = context.invocation_metadata() or ()
        if not self.w3c_only:
            return propagate.extract({k: v for k, v in metadata if isinstance(v, str)})
        traceparent = tracestate = None
        for key, value in metadata:
            if key == "traceparent":
                traceparent = value
            elif key == "tracestate":
                tracestate = value
        if not isinstance(traceparent, str):
            return None
        return remote_parent(traceparent, tracestate if isinstance(tracestate, str) else None)


class _CallSpan:
    __slots__ = ("context", "interceptor", "method", "span", "token")

    def __init__(self, interceptor: TracingInterceptor, method: str, context: grpc.aio.ServicerContext) -> None:
        self.interceptor = interceptor
        self.method = method
        self.context = context

    async def __aenter__(self) -> None:
        interceptor = self.interceptor
        parent = interceptor.parent(self.context)
        name, attributes = interceptor.name_and_attributes(self.method)
        self.span = interceptor.tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
        self.token = otel_context.attach(trace.set_span_in_context(self.span, parent))

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> bool:
        try:
            if self.span.is_recording():
                code = final_code(self.context, exc)
                self.span.set_attribute("rpc.grpc.status_code", code.value[0])
                if code not in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED):
                    self.span.set_status(Status(StatusCode.ERROR, code.name))
        finally:
            otel_context.detach(self.token)
            self.span.end()
        return False
