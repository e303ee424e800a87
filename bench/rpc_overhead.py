"""Cost of the shared service runtime per call, as a ratio to a bare server.

Both servers run the same LlmService servicer with the offline provider, in
this process, on loopback: the baseline is a plain ``grpc.aio.server()``; ours
is ``mesh_runtime.server.create_server`` with the full interceptor chain
(request id + access log, error mapping, JWT verification and access rule,
protovalidate validation), called with a signed access token; a third server
is ours again with 10,000 token revocations in force (none of them the
bench's token, which carries a generation and a session id, so every call
looks both up): the cost of checking revocation on every call; a fourth is
ours with tracing on (a span per call, every call sampled, batched and
encoded as OTLP protobuf as for export, then dropped instead of sent, so the
figure is the process's own cost, not a receiver's), and again with one
trace in ten sampled (``parentbased_traceidratio``, 0.1); a fifth is ours with
metrics on (each call counted by code and timed in a Prometheus histogram,
as with METRICS_PORT set; nothing scrapes during the run). Clients
call ``Complete`` at a fixed concurrency; the report gives calls per second and
latency percentiles for each, and the ratios.

Run: ./mesh bench rpc_overhead [--calls 20000 --concurrency 50 --rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import grpc
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from llm_svc.api import LlmServicer
from llm_svc.config import LlmSettings
from llm_svc.providers import OfflineProvider
from llm_svc.server import SERVICE_NAME
from mesh.auth.v1 import access_pb2
from mesh.llm.v1 import completion_pb2, llm_service_pb2, llm_service_pb2_grpc
from mesh_runtime.auth import EVERY_TOKEN, KeySet, Principal, Revocation, TokenVerifier
from mesh_runtime.auth_keys import KeyFolder, TokenSigner
from mesh_runtime.interceptors import MetricsInterceptor
from mesh_runtime.interceptors.tracing import TracingInterceptor
from mesh_runtime.server import ServiceBinding, create_server

Metadata = tuple[tuple[str, str], ...]

REQUEST = llm_service_pb2.CompleteRequest(
    messages=[completion_pb2.ChatMessage(role=completion_pb2.ROLE_USER, content="mean 12.5, max 40")]
)


class _EncodingSink(SpanExporter):
    """Encodes each batch as the OTLP exporter would, then drops it."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        encode_spans(spans).SerializeToString()
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


async def _measure(port: int, calls: int, concurrency: int, metadata: Metadata) -> dict[str, float]:
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = llm_service_pb2_grpc.LlmServiceStub(channel)
        await stub.Complete(REQUEST, timeout=10, metadata=metadata)  # warm up the connection
        remaining = calls

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                await stub.Complete(REQUEST, timeout=10, metadata=metadata)
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "qps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


async def run(calls: int, concurrency: int, rounds: int = 2) -> None:
    logging.disable(logging.INFO)  # the access log would measure the terminal
    servicer = LlmServicer(OfflineProvider(), LlmSettings())

    bare = grpc.aio.server()
    llm_service_pb2_grpc.add_LlmServiceServicer_to_server(servicer, bare)
    bare_port = bare.add_insecure_port("127.0.0.1:0")
    await bare.start()
    with tempfile.TemporaryDirectory() as scratch:
        keys = KeyFolder(Path(scratch))
        keys.ensure()
        verifier = TokenVerifier(KeySet.from_file(keys.jwks), "bench", "bench")
        revoking = TokenVerifier(KeySet.from_file(keys.jwks), "bench", "bench")
        signer = TokenSigner.from_file(keys.signing_key, "bench", "bench")
    expire = time.time() + 3600
    revoking.revocations.replace(
        [Revocation(str(uuid.uuid4()), EVERY_TOKEN, expire) for _ in range(5000)]
        + [Revocation(str(uuid.uuid4()), 3, expire) for _ in range(5000)]
    )
    principal = Principal("bench", "bench", access_pb2.ROLE_VIEWER, generation=2, session_id=str(uuid.uuid4()))
    token = signer.mint(principal, dt.timedelta(hours=1)).token
    auth: Metadata = (("authorization", f"Bearer {token}"),)
    binding = ServiceBinding(SERVICE_NAME, llm_service_pb2_grpc.add_LlmServiceServicer_to_server, servicer)
    sink = _EncodingSink()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(sink))
    trace.set_tracer_provider(provider)
    ours = await create_server("127.0.0.1:0", [binding], verifier=verifier, tracing=False, metrics=False)
    checked = await create_server("127.0.0.1:0", [binding], verifier=revoking, tracing=False, metrics=False)
    traced = await create_server("127.0.0.1:0", [binding], verifier=verifier, tracing=True, metrics=False)
    sampled_sink = _EncodingSink()
    sampling = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.1)))
    sampling.add_span_processor(BatchSpanProcessor(sampled_sink))
    sampled = await create_server("127.0.0.1:0", [binding], verifier=verifier, tracing=sampling, metrics=False)
    measured = await create_server("127.0.0.1:0", [binding], verifier=verifier, tracing=False, metrics=True)
    servers = {
        "bare grpc.aio": (bare_port, ()),
        "mesh runtime": (ours.port, auth),
        "mesh runtime, 10k revocations": (checked.port, auth),
        "mesh runtime, tracing on": (traced.port, auth),
        "mesh runtime, tracing on, 10% sampled": (sampled.port, auth),
        "mesh runtime, metrics on": (measured.port, auth),
    }
    try:
        # Alternate them, ``rounds`` times, so warm-up and drift hit all alike.
        results: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        for _ in range(rounds):
            for name, (port, metadata) in servers.items():
                results[name].append(await _measure(port, calls // rounds, concurrency, metadata))
    finally:
        await bare.stop(0)
        await ours.server.stop(0)
        await checked.server.stop(0)
        await traced.server.stop(0)
        await sampled.server.stop(0)
        await measured.server.stop(0)
        provider.shutdown()
        sampling.shutdown()

    summary = {name: {k: statistics.mean(r[k] for r in runs) for k in runs[0]} for name, runs in results.items()}
    print(f"Unary Complete, {calls} calls at concurrency {concurrency}, client and server in one process\n")
    print("| server | calls/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|")
    for name, row in summary.items():
        print(f"| {name} | {row['qps']:.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} |")
    ratio = summary["mesh runtime"]["qps"] / summary["bare grpc.aio"]["qps"]
    print(f"\nmesh runtime throughput = {ratio:.0%} of the bare server")
    revoking_ratio = summary["mesh runtime, 10k revocations"]["qps"] / summary["mesh runtime"]["qps"]
    print(f"with 10,000 revocations in force = {revoking_ratio:.0%} of the mesh runtime without")
    traced_ratio = summary["mesh runtime, tracing on"]["qps"] / summary["bare grpc.aio"]["qps"]
    print(
        f"with tracing on = {traced_ratio:.0%} of the bare server, "
        f"{summary['mesh runtime, tracing on']['qps'] / summary['mesh runtime']['qps']:.0%} of the mesh runtime "
        f"without ({sink.spans} spans encoded)"
    )
    one_in_ten = summary["mesh runtime, tracing on, 10% sampled"]["qps"]
    print(
        f"with tracing on, 10% sampled = {one_in_ten / summary['bare grpc.aio']['qps']:.0%} of the bare server, "
        f"{one_in_ten / summary['mesh runtime']['qps']:.0%} of the mesh runtime without "
        f"({sampled_sink.spans} spans encoded)"
    )
    metered = summary["mesh runtime, metrics on"]["qps"]
    print(
        f"with metrics on = {metered / summary['bare grpc.aio']['qps']:.0%} of the bare server, "
        f"{metered / summary['mesh runtime']['qps']:.0%} of the mesh runtime without"
    )
    started = time.perf_counter()
    rounds = 200_000
    for _ in range(rounds):
        revoking.revocations.revoked(principal)
    per_check = (time.perf_counter() - started) / rounds * 1e9
    print(f"one revocation check: {per_check:.0f} ns")
    print(f"one call's metrics step: {await _metrics_step_ns():.0f} ns")
    print(f"one call's span (started, current, ended; export not included): {await _span_step_ns(provider):.0f} ns")
    unsampled = await _span_step_ns(sampling, sampled=False)
    print(f"one call's span when the caller's traceparent says not sampled (non-recording): {unsampled:.0f} ns")


async def _scope_ns(step: MetricsInterceptor | TracingInterceptor, context: _FinishedCall, rounds: int) -> float:
    """A step's own time per call: its scope entered and left around nothing."""
    method = "/mesh.llm.v1.LlmService/Complete"
    started = time.perf_counter()
    for _ in range(rounds):
        async with step.scope(method, context):  # type: ignore[arg-type]
            pass
    return (time.perf_counter() - started) / rounds * 1e9


async def _metrics_step_ns(rounds: int = 100_000) -> float:
    """The metrics step's own time per call (the clock read twice, one
    histogram observation, one counter)."""
    return await _scope_ns(MetricsInterceptor(), _FinishedCall(), rounds)


async def _span_step_ns(provider: TracerProvider, rounds: int = 50_000, sampled: bool = True) -> float:
    """The tracing step's own time per call, the caller's traceparent in the
    metadata (as Envoy sends it), flagged sampled or not."""
    return await _scope_ns(TracingInterceptor(provider), _FinishedCall(sampled), rounds)


class _FinishedCall:
    """A call context that ended OK (what the metrics and tracing steps read of it)."""

    def __init__(self, sampled: bool = True) -> None:
        self.flags = "01" if sampled else "00"

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.OK

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (
            ("authorization", "Bearer x"),
            ("traceparent", f"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{self.flags}"),
            ("x-request-id", "7c1d"),
        )


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="times each server is measured, alternating")
    args = parser.parse_args()
    if args.calls < 100 or args.concurrency < 1 or not 1 <= args.rounds <= args.calls // 100:
        parser.error("--calls must be at least 100, --concurrency at least 1, --rounds 1 to calls/100")
    asyncio.run(run(args.calls, args.concurrency, args.rounds))


if __name__ == "__main__":
    main()
