"""Server interceptors shared by every service, run as one chain.

Modules: ``chain`` (the base class and the chain that runs them),
``access_log`` (request id, one log line per call), ``metrics`` (calls by
status code and their duration, for Prometheus), ``errors`` (domain
errors to status codes with rich details), ``validation`` (protovalidate
rules and wire checks). Authentication and authorization live with the
rest of auth, in ``mesh_runtime.auth``. A server uses, outermost first:
(tracing and metrics when on,) request id/logging, error mapping,
authorization, validation.

Design note: why our own chain rather than grpc.aio's. grpc.aio calls every
server interceptor's ``intercept_service`` on every call, and each one that
wraps the handler adds a layer per call (a new handler, a closure, a
generator-based context manager). ``./mesh bench rpc_overhead`` (a trivial
unary RPC at concurrency 50, against a bare ``grpc.aio`` server in the same
run) measured the runtime at 60% of the bare server that way.
``InterceptorChain`` is the only grpc.aio interceptor: it wraps each method's
handler once with every interceptor that applies to it, reuses that wrapper
for every later call, and nests the per-call scopes (small classes, not
generators) directly on the unary hot path. With the verified-token cache
and per-method access rules, the runtime now serves 78-83% of the bare
server's calls (the README's Benchmarks section has the figures). Keep new
per-call work in these hooks and measure it with that benchmark.
"""

from mesh_runtime.interceptors.access_log import RequestLoggingInterceptor
from mesh_runtime.interceptors.chain import (
    UNGUARDED_PREFIXES,
    InterceptorChain,
    MeshInterceptor,
    Undecodable,
    send_headers,
)
from mesh_runtime.interceptors.errors import ErrorMappingInterceptor, abort_with
from mesh_runtime.interceptors.metrics import MetricsInterceptor
from mesh_runtime.interceptors.validation import ValidationInterceptor, violations_of, wire_violations

__all__ = [
    "UNGUARDED_PREFIXES",
    "ErrorMappingInterceptor",
    "InterceptorChain",
    "MeshInterceptor",
    "MetricsInterceptor",
    "RequestLoggingInterceptor",
    "Undecodable",
    "ValidationInterceptor",
    "abort_with",
    "send_headers",
    "violations_of",
    "wire_violations",
]
