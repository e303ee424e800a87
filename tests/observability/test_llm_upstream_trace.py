"""The LLM service's call to its upstream provider is a span of the caller's
trace: a real ``python -m llm_svc`` against the fake OpenAI-compatible server,
exporting to the in-process OTLP receiver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from local_stack.paths import ROOT
from local_stack.ports import free_port
from mesh.llm.v1 import completion_pb2, llm_service_pb2, llm_service_pb2_grpc
from tests.clients import authed_channel
from tests.conftest import RunningStack
from tests.eventually import eventually
from tests.llm_svc.fake_openai import GOOD_KEY, ok, running_fake
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

SERVER, CLIENT = 2, 3  # OTLP span kinds


def _serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def test_the_upstream_llm_call_is_a_span_under_the_rpc(mesh: RunningStack, otlp: OtlpReceiver, tmp_path: Path) -> None:
    port = free_port()
    with running_fake() as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "OPENROUTER_", "OPENAI_", "OTEL_"))}
        env |= {
            "LLM_GRPC_PORT": str(port),
            "LLM_BASE_URL": fake.base_url,
            "LLM_API_KEY": GOOD_KEY,
            "LLM_DEFAULT_MODEL": "fake-model",
            "LLM_CACHE_TTL_SECONDS": "0",
            "AUTH_JWKS_FILE": str(mesh.keys.jwks),
            "NATS_URL": mesh.nats_url,  # revocations
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        log = tmp_path / "llm.log"
        with log.open("wb") as sink:
            process = subprocess.Popen([sys.executable, "-m", "llm_svc"], cwd=ROOT, env=env, stdout=sink, stderr=sink)
        try:
            address = f"127.0.0.1:{port}"
            eventually(lambda: _serving(address), 60, lambda: log.read_text(), retry_on=(grpc.RpcError,))
            fake.push(ok("Latency doubled at noon."))
            trace_id, caller = os.urandom(16).hex(), os.urandom(8).hex()
            with authed_channel(address, mesh.tokens["viewer"]) as channel:
                reply = llm_service_pb2_grpc.LlmServiceStub(channel).Complete(
                    llm_service_pb2.CompleteRequest(
                        messages=[completion_pb2.ChatMessage(role=completion_pb2.ROLE_USER, content="why?")]
                    ),
                    timeout=10,
                    metadata=(("traceparent", f"00-{trace_id}-{caller}-01"),),
                )
            assert reply.text == "Latency doubled at noon."

            def upstream() -> list[ReceivedSpan]:
                return [
                    s for s in otlp.trace(trace_id)
                    if s.kind == CLIENT and "/v1/chat/completions" in str(s.attributes.get("url.full", ""))
                    + str(s.attributes.get("http.url", ""))
                ]  # fmt: skip

            (call,) = eventually(upstream, 20, lambda: f"the upstream call's span: {otlp.trace(trace_id)}")
            spans = {s.span_id: s for s in otlp.trace(trace_id)}
            (rpc,) = [s for s in spans.values() if s.name == "mesh.llm.v1.LlmService/Complete"]
            assert (rpc.kind, rpc.parent_span_id) == (SERVER, caller)
            # The upstream call is under the RPC (directly or through the provider's spans).
            ancestor = call
            while ancestor.parent_span_id in spans and ancestor.span_id != rpc.span_id:
                ancestor = spans[ancestor.parent_span_id]
            assert ancestor.span_id == rpc.span_id
            assert call.service == "llm"
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
