"""RED metrics of every RPC: calls by status code and their duration.

One step of the chain, in it only when the process serves metrics
(``mesh_runtime.metrics``). Per call it reads the clock twice, observes one
histogram child and increments one counter child: the label children of a
method (and of each code it ended with) are looked up once and kept, so no
call builds label tuples or takes the registry's lock.
"""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc
from google.protobuf import descriptor_pool

from mesh_runtime.interceptors.chain import UNGUARDED_PREFIXES, MeshInterceptor, final_code
from mesh_runtime.metrics import RPC_DURATION, RPC_HANDLED


def call_type(method: str) -> str:
    """``unary``, ``client_stream``, ``server_stream`` or ``bidi_stream``, as
    the method's descriptor says (``unknown`` for a method not in the pool)."""
    try:
        descriptor = descriptor_pool.Default().FindMethodByName(method.lstrip("/").replace("/", "."))
    except KeyError:
        return "unknown"
    if descriptor.client_streaming and descriptor.server_streaming:
        return "bidi_stream"
    if descriptor.client_streaming:
        return "client_stream"
    return "server_stream" if descriptor.server_streaming else "unary"


class MethodMetrics:
    """One method's label children: its duration histogram, a counter per code."""

    __slots__ = ("_labels", "by_code", "duration")

    def __init__(self, method: str) -> None:
        service, _, name = method.lstrip("/").partition("/")
        self._labels = (call_type(method), service, name)
        self.duration = RPC_DURATION.labels(*self._labels)
        self.by_code: dict[grpc.StatusCode, Any] = {}

    def handled(self, code: grpc.StatusCode) -> Any:
        """The counter child of calls that ended with ``code``."""
        child = self.by_code.get(code)
        if child is None:
            child = self.by_code[code] = RPC_HANDLED.labels(*self._labels, code.name)
        return child


class MetricsInterceptor(MeshInterceptor):
    """Counts every call by method and status code and times it (health and
    reflection calls are left out: probes would drown the traffic)."""

    def __init__(self) -> None:
        self._methods: dict[str, MethodMetrics] = {}

    def applies_to(self, method: str) -> bool:
        return not method.startswith(UNGUARDED_PREFIXES)

    def method_metrics(self, method: str) -> MethodMetrics:
        """The label children of ``method`` (made on its first call)."""
        found = self._methods.get(method)
        if found is None:
            found = self._methods[method] = MethodMetrics(method)
        return found

    def scope(self, method: str, context: grpc.aio.ServicerContext) -> AbstractAsyncContextManager[None]:
        return _Measured(self.method_metrics(method), context)


class _Measured:
    """One call's timing and outcome (a class, not a generator: it runs on every call)."""

    __slots__ = ("context", "metrics", "started")

    def __init__(self, metrics: MethodMetrics, context: grpc.aio.ServicerContext) -> None:
        self.metrics = metrics
        self.context = context

    async def __aenter__(self) -> None:
        self.started = time.perf_counter()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> bool:
        self.metrics.duration.observe(time.perf_counter() - self.started)
        self.metrics.handled(final_code(self.context, exc)).inc()
        return False
