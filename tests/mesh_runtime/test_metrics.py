"""The RPC metrics and the /metrics endpoint on a real in-process server:
calls counted by method and status code, timed, scraped over HTTP as
Prometheus does; and the LLM service's usage read at scrape time."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from llm_svc.api import LlmServicer
from llm_svc.config import LlmSettings
from llm_svc.metrics import expose_usage
from llm_svc.providers import OfflineProvider
from llm_svc.server import SERVICE_NAME
from local_stack.ports import free_port
from mesh.llm.v1 import completion_pb2, llm_service_pb2, llm_service_pb2_grpc
from mesh_runtime import metrics
from mesh_runtime.auth import KeySet, TokenVerifier
from mesh_runtime.auth_keys import KeyFolder
from mesh_runtime.interceptors import InterceptorChain, MetricsInterceptor
from mesh_runtime.interceptors.metrics import call_type
from mesh_runtime.server import RunningServer, ServiceBinding, create_server, default_interceptors
from tests.observability.scrape import Scrape, scrape

Metadata = tuple[tuple[str, str], ...]

QUESTION = llm_service_pb2.CompleteRequest(
    messages=[completion_pb2.ChatMessage(role=completion_pb2.ROLE_USER, content="mean 12.5, max 40")]
)
COMPLETE = {"grpc_service": "mesh.llm.v1.LlmService", "grpc_method": "Complete", "grpc_type": "unary"}


@pytest.fixture
def endpoint() -> Iterator[str]:
    """This process's /metrics endpoint, served for the test."""
    port = free_port()
    assert metrics.start_metrics_endpoint("127.0.0.1", port)
    assert metrics.metrics_enabled()
    yield f"http://127.0.0.1:{port}/metrics"
    metrics.stop_metrics_endpoint()


def _servicer() -> LlmServicer:
    # The response cache on, so repeated questions are hits.
    return LlmServicer(OfflineProvider(), LlmSettings(cache_ttl_seconds=60.0))


async def _server(keys: KeyFolder, servicer: LlmServicer, metrics_on: bool | None) -> RunningServer:
    verifier = TokenVerifier(KeySet.from_file(keys.jwks), "test", "test")
    binding = ServiceBinding(SERVICE_NAME, llm_service_pb2_grpc.add_LlmServiceServicer_to_server, servicer)
    return await create_server("127.0.0.1:0", [binding], verifier=verifier, tracing=False, metrics=metrics_on)


@pytest.fixture
async def measured(keys: KeyFolder, endpoint: str) -> AsyncIterator[tuple[RunningServer, LlmServicer]]:
    """A server whose chain has the metrics step (the process serves /metrics)."""
    servicer = _servicer()
    running = await _server(keys, servicer, None)
    yield running, servicer
    await running.server.stop(0)


async def _scrape(url: str) -> Scrape:
    return await asyncio.to_thread(scrape, url)


async def test_calls_are_counted_by_method_and_code_and_timed(
    measured: tuple[RunningServer, LlmServicer], auth: Metadata, endpoint: str
) -> None:
    running, _ = measured
    before = await _scrape(endpoint)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = llm_service_pb2_grpc.LlmServiceStub(channel)
        for _ in range(3):
            await stub.Complete(QUESTION, timeout=10, metadata=auth)
        with pytest.raises(grpc.aio.AioRpcError) as unauthenticated:
            await stub.Complete(QUESTION, timeout=10)
        assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await stub.Complete(llm_service_pb2.CompleteRequest(), timeout=10, metadata=auth)
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # Probes are not traffic: health calls are left out.
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    after = await _scrape(endpoint)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert after.types["grpc_server_handled"] == "counter"
    assert after.types["grpc_server_handling_seconds"] == "histogram"
    assert moved("grpc_server_handled_total", **COMPLETE, grpc_code="OK") == 3
    assert moved("grpc_server_handled_total", **COMPLETE, grpc_code="UNAUTHENTICATED") == 1
    assert moved("grpc_server_handled_total", **COMPLETE, grpc_code="INVALID_ARGUMENT") == 1
    # Every call, refused or not, is timed once.
    assert moved("grpc_server_handling_seconds_count", **COMPLETE) == 5
    assert moved("grpc_server_handling_seconds_bucket", **COMPLETE, le="+Inf") == 5
    assert moved("grpc_server_handling_seconds_sum", **COMPLETE) > 0
    assert not [s for s in after.label_sets("grpc_server_handled_total") if "Health" in s["grpc_service"]]


async def test_a_stream_is_labelled_as_one(
    measured: tuple[RunningServer, LlmServicer], auth: Metadata, endpoint: str
) -> None:
    running, _ = measured
    labels = {"grpc_service": "mesh.llm.v1.LlmService", "grpc_method": "StreamComplete", "grpc_type": "server_stream"}
    before = await _scrape(endpoint)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = llm_service_pb2_grpc.LlmServiceStub(channel)
        request = llm_service_pb2.StreamCompleteRequest(messages=QUESTION.messages)
        pieces = [reply async for reply in stub.StreamComplete(request, timeout=10, metadata=auth)]
    assert pieces
    after = await _scrape(endpoint)
    assert after.value("grpc_server_handled_total", **labels, grpc_code="OK") - before.value(
        "grpc_server_handled_total", **labels, grpc_code="OK"
    ) == 1


async def test_llm_tokens_and_cache_lookups_are_read_at_scrape_time(
    measured: tuple[RunningServer, LlmServicer], auth: Metadata, endpoint: str
) -> None:
    running, servicer = measured
    collector = expose_usage(servicer.guarded)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = llm_service_pb2_grpc.LlmServiceStub(channel)
            first = await stub.Complete(QUESTION, timeout=10, metadata=auth)
            again = await stub.Complete(QUESTION, timeout=10, metadata=auth)
        assert again.cached and not first.cached
        after = await _scrape(endpoint)
        # A server built again (e.g. in tests) takes over the LLM metrics rather than failing.
        assert expose_usage(servicer.guarded) is not collector
    finally:
        REGISTRY.unregister(expose_usage(servicer.guarded))
    model = {"provider": first.provider, "model": first.model}
    assert after.value("mesh_llm_tokens_total", **model, type="prompt") == first.usage.prompt_tokens > 0
    assert after.value("mesh_llm_tokens_total", **model, type="completion") == first.usage.completion_tokens > 0
    assert after.value("mesh_llm_requests_total", **model, outcome="answered") == 1
    assert after.value("mesh_llm_requests_total", **model, outcome="cache_hit") == 1
    assert after.value("mesh_llm_cache_lookups_total", result="hit") == 1
    assert after.value("mesh_llm_cache_lookups_total", result="miss") == 1


def test_the_chain_has_the_metrics_step_only_while_metrics_are_served(keys: KeyFolder, endpoint: str) -> None:
    verifier = TokenVerifier(KeySet.from_file(keys.jwks), "test", "test")

    def steps() -> list[type]:
        (chain,) = default_interceptors(verifier, tracing=False)
        assert isinstance(chain, InterceptorChain)
        return [type(step) for step in chain.interceptors]

    assert steps()[0] is MetricsInterceptor  # outermost but tracing: it counts whatever refused a call
    metrics.stop_metrics_endpoint()
    assert not metrics.metrics_enabled()
    assert MetricsInterceptor not in steps()


def test_a_taken_port_is_refused_naming_the_variable() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match="METRICS_PORT"):
            metrics.start_metrics_endpoint("127.0.0.1", port)
    assert not metrics.metrics_enabled()


def test_call_types_come_from_the_descriptors() -> None:
    assert call_type("/mesh.llm.v1.LlmService/Complete") == "unary"
    assert call_type("/mesh.llm.v1.LlmService/StreamComplete") == "server_stream"
    assert call_type("/no.such.Service/Method") == "unknown"
