"""A real ``python -m llm_svc`` process configured by environment variables to use
an OpenAI-compatible endpoint (the fake server), called through gRPC: answers,
streams, models, usage, the caller's deadline, and errors with their details.
Its logs never hold the key, and hold prompts at debug level only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from local_stack.paths import ROOT
from local_stack.ports import free_port
from mesh.llm.v1 import completion_pb2, llm_service_pb2, llm_service_pb2_grpc
from mesh_runtime.errors import FailedPrecondition, ResourceExhausted, Unavailable, from_rpc_error
from tests.clients import authed_channel
from tests.conftest import RunningStack
from tests.eventually import eventually
from tests.llm_svc.fake_openai import GOOD_KEY, FakeOpenAI, error, ok, slow

PROMPT = "the private revenue figure is 31337"


@dataclass
class LlmProcess:
    address: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]


def _wait_serving(address: str, process: subprocess.Popen[bytes], log: Path) -> None:
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)

        def serving() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"llm_svc exited with {process.returncode}:\n{log.read_text()}")
            reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

        eventually(serving, 60, lambda: f"llm_svc to become healthy:\n{log.read_text()}", retry_on=(grpc.RpcError,))


@pytest.fixture(scope="module")
def llm_process(
    mesh: RunningStack, fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LlmProcess]:
    port = free_port()
    log = tmp_path_factory.mktemp("llm-process") / "llm.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LLM_", "OPENROUTER_", "OPENAI_"))}
    env.update(
        {
            "LLM_GRPC_PORT": str(port),
            "LLM_BASE_URL": fake_openai_server.base_url,
            "LLM_API_KEY": GOOD_KEY,
            "LLM_DEFAULT_MODEL": "fake-model",
            "LLM_MODELS": "fake-model-large",
            "LLM_MAX_RETRIES": "1",
            "LLM_RETRY_BASE_SECONDS": "0.01",
            "LLM_RETRY_MAX_SECONDS": "0.02",
            "LLM_CACHE_TTL_SECONDS": "60",
            "AUTH_JWKS_FILE": str(mesh.keys.jwks),
            "MESH_LOG_LEVEL": "debug",
            "MESH_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
    )
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "llm_svc"], cwd=ROOT, env=env, stdout=sink, stderr=sink)
    address = f"127.0.0.1:{port}"
    try:
        _wait_serving(address, process, log)
        yield LlmProcess(address, log, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def stub(
    llm_process: LlmProcess, mesh: RunningStack, fake_openai: FakeOpenAI
) -> Iterator[llm_service_pb2_grpc.LlmServiceStub]:
    with authed_channel(llm_process.address, mesh.tokens["viewer"]) as channel:
        yield llm_service_pb2_grpc.LlmServiceStub(channel)


def ask(text: str, **kwargs: object) -> llm_service_pb2.CompleteRequest:
    return llm_service_pb2.CompleteRequest(
        messages=[completion_pb2.ChatMessage(role=completion_pb2.ROLE_USER, content=text)], **kwargs
    )


def test_complete_through_the_configured_provider(stub, fake_openai: FakeOpenAI) -> None:  # type: ignore[no-untyped-def]
    fake_openai.push(ok("Revenue rose to 31337."))
    reply = stub.Complete(ask(PROMPT, temperature=0.0), timeout=10)
    assert reply.text == "Revenue rose to 31337."
    assert (reply.provider, reply.model) == ("openai-compatible", "fake-model-snapshot")
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens > 0
    assert reply.finish_reason == completion_pb2.FINISH_REASON_STOP
    assert not reply.cached
    again = stub.Complete(ask(PROMPT, temperature=0.0), timeout=10)
    assert again.cached and again.text == reply.text
    assert len(fake_openai.requests) == 1, "the cache answers identical requests"


def test_stream_complete_through_the_configured_provider(stub, fake_openai: FakeOpenAI) -> None:  # type: ignore[no-untyped-def]
    fake_openai.push(ok("one two three four five"))
    request = llm_service_pb2.StreamCompleteRequest(
        messages=[completion_pb2.ChatMessage(role=completion_pb2.ROLE_USER, content="count to five")],
        model="fake-model-large",
    )
    *pieces, last = list(stub.StreamComplete(request, timeout=10))
    assert [p.text for p in pieces] == ["one ", "two ", "three ", "four ", "five"]
    assert last.model == "fake-model-large-snapshot" and last.usage.completion_tokens == 5


def test_models_and_usage(stub, fake_openai: FakeOpenAI) -> None:  # type: ignore[no-untyped-def]
    models = stub.ListModels(llm_service_pb2.ListModelsRequest(), timeout=10).models
    assert [(m.name, m.default) for m in models] == [("fake-model", True), ("fake-model-large", False)]
    assert {m.provider for m in models} == {"openai-compatible"}
    first = stub.ListModels(llm_service_pb2.ListModelsRequest(page_size=1), timeout=10)
    second = stub.ListModels(
        llm_service_pb2.ListModelsRequest(page_size=1, page_token=first.next_page_token), timeout=10
    )
    assert [m.name for m in [*first.models, *second.models]] == ["fake-model", "fake-model-large"]
    assert second.next_page_token == ""
    before = stub.GetUsage(llm_service_pb2.GetUsageRequest(), timeout=10).totals
    stub.Complete(ask("usage please"), timeout=10)
    after = stub.GetUsage(llm_service_pb2.GetUsageRequest(), timeout=10).totals
    assert after.requests == before.requests + 1 and after.total_tokens > before.total_tokens
    with pytest.raises(grpc.RpcError) as caught:
        stub.Complete(ask("hi", model="not-offered"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_the_callers_deadline_reaches_the_provider(stub, fake_openai: FakeOpenAI) -> None:  # type: ignore[no-untyped-def]
    fake_openai.push(slow(30))
    with pytest.raises(grpc.RpcError) as caught:
        stub.Complete(ask("take your time"), timeout=1)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    fake_openai.wait_until_abandoned()
    assert len(fake_openai.requests) == 1


def test_rate_limit_is_resource_exhausted_with_retry_info(stub, fake_openai: FakeOpenAI) -> None:  # type: ignore[no-untyped-def]
    fake_openai.default = error(429, "too many requests", retry_after="45")
    with pytest.raises(grpc.RpcError) as caught:
        stub.Complete(ask("again"), timeout=5)
    failure = from_rpc_error(caught.value)
    assert isinstance(failure, ResourceExhausted)
    info = failure.detail(error_details_pb2.RetryInfo)
    assert info is not None and info.retry_delay.seconds == 45  # type: ignore[attr-defined]


def test_provider_down_is_unavailable(stub, fake_openai: FakeOpenAI) -> None:  # type: ignore[no-untyped-def]
    fake_openai.default = error(503, "maintenance")
    with pytest.raises(grpc.RpcError) as caught:
        stub.Complete(ask("anyone there?"), timeout=10)
    failure = from_rpc_error(caught.value)
    assert isinstance(failure, Unavailable)
    assert failure.detail(error_details_pb2.RetryInfo) is not None
    assert len(fake_openai.requests) == 2  # LLM_MAX_RETRIES=1


def test_bad_key_names_the_variable_and_never_the_key(stub, fake_openai: FakeOpenAI) -> None:  # type: ignore[no-untyped-def]
    fake_openai.api_key = "sk-the-provider-wants-another-key"
    with pytest.raises(grpc.RpcError) as caught:
        stub.Complete(ask("who am I"), timeout=10)
    failure = from_rpc_error(caught.value)
    assert isinstance(failure, FailedPrecondition)
    assert "LLM_API_KEY" in failure.message
    assert GOOD_KEY not in (caught.value.details() or "")


def test_logs_hold_no_key_and_prompts_at_debug_only(llm_process: LlmProcess, stub, fake_openai: FakeOpenAI) -> None:  # type: ignore[no-untyped-def]
    stub.Complete(ask(PROMPT + " (log check)"), timeout=10)
    fake_openai.api_key = "sk-another"
    with pytest.raises(grpc.RpcError):
        stub.Complete(ask("with a key the provider rejects"), timeout=10)
    eventually(lambda: "log check" in llm_process.log.read_text(), 10, "the request in the log", interval=0.05)
    text = llm_process.log.read_text()
    assert GOOD_KEY not in text
    lines = llm_process.log_lines()
    with_prompt = [line for line in lines if "31337" in json.dumps(line)]
    assert with_prompt, "prompts are logged at debug level"
    assert {line["level"] for line in with_prompt} == {"debug"}
    assert any(line.get("msg") == "completion" and line["level"] == "info" for line in lines)
