"""Completions from the offline provider (the session stack has no key),
through gRPC and REST: whole, streamed, models and usage."""

from __future__ import annotations

import json

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
            llm_service_pb2.CompleteRequest(messages=[completion_pb2.ChatMessage(content="hi")], temperature=3.5),
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


INSIGHT = (
    'Write an insight about this analysis result: {"dataset": "cpu.load", "unit": "%", "count": 1440, '
    '"mean": 41.25, "min": 3.5, "max": 99.75, "stddev": 12.5, "trend": {"slope_per_day": 0.625}, "anomalies": 2}'
)


def test_offline_insight_is_grounded_in_the_results_numbers(stub) -> None:  # type: ignore[no-untyped-def]
    reply = stub.Complete(ask(INSIGHT), timeout=10)
    assert reply.provider == "offline" and reply.model == "offline-summary-1"
    assert reply.text.startswith("[offline model]")
    for number in ("1440", "41.25", "3.5", "99.75", "12.5", "0.625", "2"):
        assert number in reply.text, f"{number} missing from: {reply.text}"
    assert "rising" in reply.text and "2 anomalies" in reply.text


def test_stream_complete_sends_pieces_then_a_summary(stub) -> None:  # type: ignore[no-untyped-def]
    whole = stub.Complete(ask(INSIGHT), timeout=10)
    request = llm_service_pb2.StreamCompleteRequest(
        messages=[completion_pb2.ChatMessage(role=completion_pb2.ROLE_USER, content=INSIGHT)]
    )
    *pieces, last = list(stub.StreamComplete(request, timeout=10))
    assert len(pieces) > 5
    assert "".join(p.text for p in pieces) == whole.text
    assert not last.text
    assert last.finish_reason == completion_pb2.FINISH_REASON_STOP
    assert (last.provider, last.model) == ("offline", "offline-summary-1")
    assert last.usage.completion_tokens == whole.usage.completion_tokens


def test_stream_complete_validates_its_request(stub) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.StreamComplete(llm_service_pb2.StreamCompleteRequest(), timeout=10))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "messages" in field_violations(caught.value)


def test_stream_complete_over_rest_through_envoy(rest: httpx.Client) -> None:
    body = {"messages": [{"role": "ROLE_USER", "content": INSIGHT}]}
    whole = rest.post("/v1/completions", json=body).json()
    with rest.stream("POST", "/v1/completions:stream", json=body) as response:
        assert response.status_code == 200
        raw = "".join(response.iter_text())
    # Newline-delimited JSON: a StreamCompleteResponse message a line.
    chunks = [json.loads(line) for line in raw.splitlines() if line]
    assert len(chunks) > 5
    *pieces, last = chunks
    assert "".join(p["text"] for p in pieces) == whole["text"]
    assert last["finishReason"] == "FINISH_REASON_STOP"
    assert last["provider"] == "offline" and last["model"] == "offline-summary-1"
    assert int(last["usage"]["totalTokens"]) > 0


def test_list_models_shows_the_offline_model(stub, rest: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    reply = stub.ListModels(llm_service_pb2.ListModelsRequest(), timeout=10)
    assert [(m.name, m.provider, m.default) for m in reply.models] == [("offline-summary-1", "offline", True)]
    assert reply.next_page_token == ""
    response = rest.get("/v1/models")
    assert response.status_code == 200, response.text
    assert response.json()["models"] == [{"name": "offline-summary-1", "provider": "offline", "default": True}]
    assert rest.get("/v1/models", params={"pageToken": "forged"}).status_code == 400


def test_usage_totals_grow_with_each_completion(stub, rest: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    before = stub.GetUsage(llm_service_pb2.GetUsageRequest(), timeout=10)
    reply = stub.Complete(ask("usage check 1 2 3"), timeout=10)
    after = stub.GetUsage(llm_service_pb2.GetUsageRequest(), timeout=10)
    assert after.totals.requests == before.totals.requests + 1
    assert after.totals.total_tokens == before.totals.total_tokens + reply.usage.total_tokens
    offline = {(m.provider, m.model): m.totals for m in after.models}[("offline", "offline-summary-1")]
    assert offline.requests >= 1
    assert after.start_time == before.start_time
    response = rest.get("/v1/usage")
    assert response.status_code == 200, response.text
    assert int(response.json()["totals"]["requests"]) >= after.totals.requests
