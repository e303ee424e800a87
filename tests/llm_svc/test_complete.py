"""Completions from the offline provider, through gRPC and REST."""

from __future__ import annotations

import grpc
import httpx
import pytest

from mesh.llm.v1 import completion_pb2, llm_service_pb2, llm_service_pb2_grpc
from tests.conftest import RunningStack
from tests.rich_status import field_violations, rest_field_violations


@pytest.fixture
def stub(mesh: RunningStack):  # type: ignore[no-untyped-def]
    with mesh.channel(mesh.llm, "viewer") as channel:
        yield llm_service_pb2_grpc.LlmServiceStub(channel)


def ask(text: str, **kwargs: object) -> llm_service_pb2.CompleteRequest:
    return llm_service_pb2.CompleteRequest(
        messages=[completion_pb2.ChatMessage(role=completion_pb2.ROLE_USER, content=text)], **kwargs
    )


def test_offline_provider_answers_grounded_and_labelled(stub) -> None:  # type: ignore[no-untyped-def]
    reply = stub.Complete(ask("Mean was 12.5 and the max 40 over 3 days"), timeout=10)
    assert reply.provider == "offline"
    assert "[offline model]" in reply.text
    for number in ("12.5", "40", "3"):
        assert number in reply.text
    assert reply.finish_reason == completion_pb2.FINISH_REASON_STOP
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens > 0
    assert reply.model  # the configured default


def test_offline_provider_is_deterministic(stub) -> None:  # type: ignore[no-untyped-def]
    first = stub.Complete(ask("same question 7"), timeout=10).text
    assert stub.Complete(ask("same question 7"), timeout=10).text == first


def test_max_tokens_cuts_the_answer(stub) -> None:  # type: ignore[no-untyped-def]
    reply = stub.Complete(ask("tell me about 1 2 3 4 5", max_tokens=5), timeout=10)
    assert reply.finish_reason == completion_pb2.FINISH_REASON_LENGTH
    assert len(reply.text) <= 20


def test_invalid_requests_get_field_violations(stub) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as caught:
        stub.Complete(llm_service_pb2.CompleteRequest(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "messages" in field_violations(caught.value)

    with pytest.raises(grpc.RpcError) as caught:
        stub.Complete(
            llm_service_pb2.CompleteRequest(
                messages=[completion_pb2.ChatMessage(content="hi")], temperature=3.5
            ),
            timeout=10,
        )
    violations = field_violations(caught.value)
    assert "temperature" in violations
    assert "messages[0].role" in violations


def test_complete_over_rest(rest: httpx.Client) -> None:
    response = rest.post(
        "/v1/completions",
        json={"messages": [{"role": "ROLE_USER", "content": "values 3 and 9"}], "maxTokens": 200},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["provider"] == "offline"
    assert body["finishReason"] == "FINISH_REASON_STOP"
    assert "9" in body["text"]
    assert body["latency"].endswith("s")


def test_rest_rejects_unknown_enum_and_empty_conversation(rest: httpx.Client) -> None:
    response = rest.post("/v1/completions", json={"messages": []})
    assert response.status_code == 400
    assert "messages" in rest_field_violations(response.json())
    response = rest.post("/v1/completions", json={"messages": [{"role": "ROLE_WIZARD", "content": "x"}]})
    assert response.status_code == 400
