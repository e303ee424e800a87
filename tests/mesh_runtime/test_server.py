"""The shared server runtime on a real in-process grpc.aio server: error
mapping, request ids, health, client deadlines and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llm_svc.api import LlmServicer
from llm_svc.config import LlmSettings
from llm_svc.providers import Completion, Message
from llm_svc.server import SERVICE_NAME
from mesh.llm.v1 import completion_pb2, llm_service_pb2, llm_service_pb2_grpc
from mesh_runtime.auth import KeySet, TokenVerifier
from mesh_runtime.auth_keys import KeyFolder
from mesh_runtime.clients import open_channel
from mesh_runtime.errors import InvalidArgument, Unavailable, from_rpc_error
from mesh_runtime.server import RunningServer, ServiceBinding, create_server
from tests.eventually import eventually_async


class ScriptedProvider:
    """A provider whose behaviour each test scripts: wait, fail, or answer."""

    name = "scripted"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.failure: BaseException | None = None

    async def complete(self, messages: list[Message], model: str, max_tokens: int) -> Completion:
        self.started.set()
        if self.failure is not None:
            raise self.failure
        await self.release.wait()
        return Completion("done", "stop", 1, 1, self.name, model, 0.0)


Metadata = tuple[tuple[str, str], ...]

QUESTION = llm_service_pb2.CompleteRequest(
    messages=[completion_pb2.ChatMessage(role=completion_pb2.ROLE_USER, content="hi")]
)


@pytest.fixture
async def server(keys: KeyFolder) -> AsyncIterator[tuple[RunningServer, ScriptedProvider]]:
    provider = ScriptedProvider()
    verifier = TokenVerifier(KeySet.from_file(keys.jwks), "test", "test")
    running = await create_server(
        "127.0.0.1:0",
        [
            ServiceBinding(
                SERVICE_NAME,
                llm_service_pb2_grpc.add_LlmServiceServicer_to_server,
                LlmServicer(provider, LlmSettings()),
            )
        ],
        verifier=verifier,
    )
    yield running, provider
    await running.server.stop(0)


async def test_unexpected_error_is_internal_with_request_id_only(
    server: tuple[RunningServer, ScriptedProvider], caplog: pytest.LogCaptureFixture, auth: Metadata
) -> None:
    running, provider = server
    provider.failure = RuntimeError("secret stack detail")
    async with open_channel(f"127.0.0.1:{running.port}") as channel:
        call = llm_service_pb2_grpc.LlmServiceStub(channel).Complete(
            QUESTION, metadata=(("x-request-id", "req-abc-123"), *auth)
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "req-abc-123" in caught.value.details()
    assert "secret" not in caught.value.details()
    logged = [r for r in caplog.records if r.exc_info and "secret stack detail" in str(r.exc_info[1])]
    assert logged, "the traceback must be logged"
    # An error is answered in one trailers-only frame: the id travels in the trailers.
    assert (await call.trailing_metadata()).get("x-request-id") == "req-abc-123"


async def test_every_call_reports_its_request_id(
    server: tuple[RunningServer, ScriptedProvider], auth: Metadata
) -> None:
    """A caller's id comes back in the headers and trailers; a call without
    one gets a new id in the trailers (its headers stay empty: no extra write)."""
    running, provider = server
    provider.release.set()
    async with open_channel(f"127.0.0.1:{running.port}") as channel:
        stub = llm_service_pb2_grpc.LlmServiceStub(channel)
        sent = stub.Complete(QUESTION, metadata=(("x-request-id", "corr-42"), *auth))
        await sent
        assert (await sent.initial_metadata()).get("x-request-id") == "corr-42"
        assert (await sent.trailing_metadata()).get("x-request-id") == "corr-42"
        plain = stub.Complete(QUESTION, metadata=auth)
        await plain
        generated = (await plain.trailing_metadata()).get("x-request-id")
        assert isinstance(generated, str) and len(generated) == 32
        assert (await plain.initial_metadata()).get("x-request-id") is None
        again = stub.Complete(QUESTION, metadata=auth)
        await again
        assert (await again.trailing_metadata()).get("x-request-id") != generated


async def test_domain_error_keeps_its_code_and_details(
    server: tuple[RunningServer, ScriptedProvider], auth: Metadata
) -> None:
    running, provider = server
    provider.failure = Unavailable("provider down", retry_after=2)
    async with open_channel(f"127.0.0.1:{running.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await llm_service_pb2_grpc.LlmServiceStub(channel).Complete(QUESTION, metadata=auth)
    error = from_rpc_error(caught.value)
    assert isinstance(error, Unavailable)
    assert error.message == "provider down"
    assert error.details, "RetryInfo must survive the trip"


async def test_validation_error_round_trips_as_invalid_argument(
    server: tuple[RunningServer, ScriptedProvider], auth: Metadata
) -> None:
    running, _ = server
    async with open_channel(f"127.0.0.1:{running.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await llm_service_pb2_grpc.LlmServiceStub(channel).Complete(
                llm_service_pb2.CompleteRequest(), metadata=auth
            )
    error = from_rpc_error(caught.value)
    assert isinstance(error, InvalidArgument)
    assert [v.field for v in error.violations] == ["messages"]


async def test_client_default_deadline_applies(server: tuple[RunningServer, ScriptedProvider], auth: Metadata) -> None:
    running, _ = server  # the provider never releases: only the deadline ends the call
    async with open_channel(f"127.0.0.1:{running.port}", default_timeout=0.3) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await llm_service_pb2_grpc.LlmServiceStub(channel).Complete(QUESTION, metadata=auth)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_graceful_stop_finishes_in_flight_calls_and_refuses_new_ones(
    server: tuple[RunningServer, ScriptedProvider], auth: Metadata
) -> None:
    running, provider = server
    async with open_channel(f"127.0.0.1:{running.port}") as channel:
        stub = llm_service_pb2_grpc.LlmServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        status = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        assert status.status == health_pb2.HealthCheckResponse.SERVING

        in_flight = asyncio.ensure_future(stub.Complete(QUESTION, metadata=auth))
        await asyncio.wait_for(provider.started.wait(), 5)
        stopping = asyncio.ensure_future(running.stop(grace=10))
        await _until_refusing(health)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Complete(QUESTION, timeout=2, metadata=auth)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        provider.release.set()
        reply = await asyncio.wait_for(in_flight, 5)
        assert reply.text == "done"
        await asyncio.wait_for(stopping, 15)


async def test_a_service_can_be_not_serving_while_the_server_lives(
    server: tuple[RunningServer, ScriptedProvider],
) -> None:
    running, _ = server

    async def statuses(health: health_pb2_grpc.HealthStub) -> tuple[int, int]:
        whole = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        service = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
        return whole.status, service.status

    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
    async with open_channel(f"127.0.0.1:{running.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        running.set_service_serving(SERVICE_NAME, False)  # e.g. its reads may be stale for now
        assert await statuses(health) == (serving, not_serving)  # liveness holds, readiness does not
        running.set_serving(True)  # a server-wide report keeps the service's own state
        assert await statuses(health) == (serving, not_serving)
        running.set_service_serving(SERVICE_NAME, True)
        assert await statuses(health) == (serving, serving)


async def _until_refusing(health: health_pb2_grpc.HealthStub, timeout: float = 5) -> None:
    """Wait until the server has begun stopping: it answers nothing any more."""

    async def refusing() -> bool:
        try:
            await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.aio.AioRpcError as error:
            return error.code() == grpc.StatusCode.UNAVAILABLE
        return False

    await eventually_async(refusing, timeout, "the server to start refusing calls", interval=0.01)


def test_request_ids_are_sanitised() -> None:
    from mesh_runtime.interceptors.access_log import _REQUEST_ID_PATTERN

    assert _REQUEST_ID_PATTERN.match("abc-123_x.y")
    assert not _REQUEST_ID_PATTERN.match("bad id\nInjected: 1")
    assert not _REQUEST_ID_PATTERN.match("x" * 65)


def test_structured_log_lines_are_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from mesh_runtime.structured_logging import configure_logging, request_id_var

    configure_logging("test", "info", "json")
    token = request_id_var.set("rid-1")
    try:
        logging.getLogger("mesh.test").info("hello", extra={"dataset": "x"})
    finally:
        request_id_var.reset(token)
        logging.getLogger().handlers.clear()
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["msg"] == "hello" and line["request_id"] == "rid-1" and line["dataset"] == "x"
    assert line["service"] == "test" and line["level"] == "info"


class EndlessProvider(ScriptedProvider):
    """A provider that writes an answer without end, as fast as it is read."""

    def stream(
        self, messages: list[Message], model: str, max_tokens: int, *, temperature: float | None = None
    ) -> AsyncIterator[str]:
        async def pieces() -> AsyncIterator[str]:
            self.started.set()
            while True:
                yield "x" * 4096

        return pieces()


async def test_a_client_leaving_a_stream_logs_no_traceback(
    keys: KeyFolder, auth: Metadata, caplog: pytest.LogCaptureFixture
) -> None:
    """Clients that cancel a server stream mid-flow (a watch left open in a
    closed tab): each call ends as CANCELLED, its interceptors unwind in the
    call's own task, and nothing is logged as an unexpected error, now or
    when the garbage collector comes by."""
    import gc

    caplog.set_level(logging.INFO)
    provider = EndlessProvider()
    verifier = TokenVerifier(KeySet.from_file(keys.jwks), "test", "test")
    running = await create_server(
        "127.0.0.1:0",
        [
            ServiceBinding(
                SERVICE_NAME,
                llm_service_pb2_grpc.add_LlmServiceServicer_to_server,
                LlmServicer(provider, LlmSettings()),
            )
        ],
        verifier=verifier,
    )
    request = llm_service_pb2.StreamCompleteRequest(messages=QUESTION.messages)
    try:
        async with open_channel(f"127.0.0.1:{running.port}") as channel:
            stub = llm_service_pb2_grpc.LlmServiceStub(channel)
            for _ in range(20):
                call = stub.StreamComplete(request, metadata=auth, timeout=30)
                for _ in range(3):
                    await call.read()
                call.cancel()
            await asyncio.sleep(0.5)
        gc.collect()
        await asyncio.sleep(0.5)
    finally:
        await running.server.stop(0)
    problems = [
        f"{r.getMessage()}: {r.exc_info[1] if r.exc_info else ''}"
        for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info
    ]
    assert problems == []
    # Each call ended, in its own task, as CANCELLED (its access-log line says so).
    ended = [
        r for r in caplog.records if r.getMessage() == "rpc" and getattr(r, "method", "").endswith("StreamComplete")
    ]
    assert len(ended) == 20 and {getattr(r, "code", "") for r in ended} == {"CANCELLED"}
