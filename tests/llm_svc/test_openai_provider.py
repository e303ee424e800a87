"""The OpenAI-compatible provider and the guarded provider around it, against a real HTTP
server speaking the chat-completions API: the real ``openai`` client runs.

Each test scripts the fake server (429 then success, 5xx until retries run
out, slow answers, a bad key, malformed bodies) and checks what a caller of
the service would notice: the answer, the error and its details, how many
requests reached the provider, and that nothing ran past the deadline.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from google.rpc import error_details_pb2

from llm_svc.config import LlmSettings
from llm_svc.guarded_provider import Call, GuardedProvider
from llm_svc.providers import Completion, Message
from llm_svc.server import provider_from_settings
from mesh_runtime.config import Secret
from mesh_runtime.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    MeshError,
    ResourceExhausted,
    Unavailable,
)
from mesh_runtime.structured_logging import JsonFormatter
from tests.llm_svc.fake_openai import GOOD_KEY, FakeOpenAI, Reply, error, malformed, ok, slow

QUESTION = Call([Message("system", "You explain analysis results."), Message("user", "mean 12.5, max 40")])


def settings_for(fake: FakeOpenAI, **overrides: Any) -> LlmSettings:
    values: dict[str, Any] = {
        "base_url": fake.base_url,
        "api_key": Secret(GOOD_KEY),
        "default_model": "fake-model",
        "max_retries": 2,
        "retry_base_seconds": 0.01,
        "retry_max_seconds": 0.05,
        "attempt_timeout_seconds": 5.0,
        "timeout_seconds": 10.0,
    }
    return LlmSettings(**{**values, **overrides})


class Sleeps:
    """Records the backoff delays the guarded provider waits (and waits them)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        import asyncio

        self.delays.append(seconds)
        await asyncio.sleep(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


GuardedFor = Callable[..., GuardedProvider]


@pytest.fixture
async def guarded_for(sleeps: Sleeps) -> AsyncIterator[GuardedFor]:
    made: list[GuardedProvider] = []

    def make(settings: LlmSettings, random: float = 0.5) -> GuardedProvider:
        guarded = GuardedProvider(provider_from_settings(settings), settings, sleep=sleeps, random=lambda: random)
        made.append(guarded)
        return guarded

    yield make
    for guarded in made:
        await guarded.aclose()


async def collect(
    guarded: GuardedProvider, call: Call, time_remaining: float | None = None
) -> tuple[list[str], Completion]:
    pieces: list[str] = []
    async for event in guarded.stream(call, time_remaining):
        if isinstance(event, str):
            pieces.append(event)
        else:
            return pieces, event
    raise AssertionError("the stream ended without a Completion")


def retry_delay(error: MeshError) -> float:
    info = error.detail(error_details_pb2.RetryInfo)
    assert info is not None, f"no RetryInfo on {error!r}"
    return float(info.retry_delay.ToNanoseconds()) / 1e9  # type: ignore[attr-defined]


# --- answers ---------------------------------------------------------------------------


async def test_success_reports_text_usage_provider_and_served_model(
    fake_openai: FakeOpenAI, guarded_for: GuardedFor
) -> None:
    fake_openai.push(ok("Values averaged 12.5 and peaked at 40."))
    guarded = guarded_for(settings_for(fake_openai))
    answer = await guarded.complete(dataclasses.replace(QUESTION, temperature=0.2, max_tokens=64))
    assert answer.text == "Values averaged 12.5 and peaked at 40."
    assert answer.finish_reason == "stop"
    assert answer.provider == "openai-compatible"
    assert answer.model == "fake-model-snapshot"  # what the provider says answered
    assert answer.completion_tokens == 7 and answer.prompt_tokens > 0
    assert not answer.cached
    (seen,) = fake_openai.requests
    assert seen.authorization == f"Bearer {GOOD_KEY}"
    assert seen.body["model"] == "fake-model"
    assert seen.body["temperature"] == 0.2 and seen.body["max_tokens"] == 64
    assert [m["role"] for m in seen.body["messages"]] == ["system", "user"]


async def test_streaming_yields_the_pieces_then_the_completion(
    fake_openai: FakeOpenAI, guarded_for: GuardedFor
) -> None:
    fake_openai.push(ok("The trend is rising by 0.8 per day.", finish_reason="length"))
    guarded = guarded_for(settings_for(fake_openai))
    pieces, completion = await collect(guarded, dataclasses.replace(QUESTION, model="fake-model"))
    assert len(pieces) > 3
    assert "".join(pieces) == completion.text == "The trend is rising by 0.8 per day."
    assert completion.finish_reason == "length"
    assert completion.completion_tokens == 8  # the usage chunk the provider sent
    assert completion.model == "fake-model-snapshot"
    assert fake_openai.requests[0].body["stream"] is True


async def test_rate_limit_then_success_is_retried_after_the_providers_delay(
    fake_openai: FakeOpenAI, guarded_for: GuardedFor, sleeps: Sleeps
) -> None:
    fake_openai.push(error(429, "slow down", retry_after="0.2"), ok("fine"))
    guarded = guarded_for(settings_for(fake_openai))
    answer = await guarded.complete(QUESTION)
    assert answer.text == "fine"
    assert len(fake_openai.requests) == 2
    assert sleeps.delays == [pytest.approx(0.2)]  # Retry-After beats the shorter backoff


async def test_streaming_retries_a_rate_limit_before_the_first_piece(
    fake_openai: FakeOpenAI, guarded_for: GuardedFor
) -> None:
    fake_openai.push(error(429, retry_after="0"), ok("streamed after a retry"))
    guarded = guarded_for(settings_for(fake_openai))
    pieces, completion = await collect(guarded, QUESTION)
    assert "".join(pieces) == "streamed after a retry"
    assert len(fake_openai.requests) == 2


async def test_backoff_doubles_with_jitter_up_to_the_ceiling(
    fake_openai: FakeOpenAI, guarded_for: GuardedFor, sleeps: Sleeps
) -> None:
    fake_openai.default = error(502, "bad guarded")
    settings = settings_for(fake_openai, max_retries=4, retry_base_seconds=0.01, retry_max_seconds=0.03)
    with pytest.raises(Unavailable):
        await guarded_for(settings, random=1.0).complete(QUESTION)
    assert sleeps.delays == pytest.approx([0.01, 0.02, 0.03, 0.03])
    sleeps.delays.clear()
    with pytest.raises(Unavailable):
        await guarded_for(settings, random=0.0).complete(QUESTION)
    assert sleeps.delays == pytest.approx([0.005, 0.01, 0.015, 0.015])  # jitter takes up to half off


# --- failures ------------------------------------------------------------------------


async def test_server_errors_until_retries_run_out_are_unavailable_with_retry_info(
    fake_openai: FakeOpenAI, guarded_for
) -> None:
    fake_openai.default = error(503, "overloaded")
    guarded = guarded_for(settings_for(fake_openai, max_retries=2))
    with pytest.raises(Unavailable) as caught:
        await guarded.complete(QUESTION)
    assert len(fake_openai.requests) == 3  # the first attempt and two retries
    assert "503" in caught.value.message and "overloaded" in caught.value.message
    assert retry_delay(caught.value) > 0
    assert guarded.usage.overall().failures == 1


async def test_rate_limit_longer_than_the_deadline_fails_at_once_with_retry_info(
    fake_openai: FakeOpenAI, guarded_for
) -> None:
    fake_openai.default = error(429, "quota", retry_after="30")
    guarded = guarded_for(settings_for(fake_openai))
    with pytest.raises(ResourceExhausted) as caught:
        await guarded.complete(QUESTION, time_remaining=2.0)
    assert len(fake_openai.requests) == 1  # waiting 30 s would pass the caller's deadline
    assert retry_delay(caught.value) == pytest.approx(30)


async def test_provider_slower_than_the_callers_deadline_is_abandoned(
    fake_openai: FakeOpenAI, guarded_for: GuardedFor
) -> None:
    fake_openai.push(slow(30))
    guarded = guarded_for(settings_for(fake_openai, attempt_timeout_seconds=20))
    with pytest.raises(DeadlineExceeded):
        await guarded.complete(QUESTION, time_remaining=0.5)
    assert fake_openai.wait_until_abandoned().body["model"] == "fake-model"
    assert len(fake_openai.requests) == 1, "nothing may be retried past the caller's deadline"


async def test_a_slow_attempt_is_retried_while_the_deadline_allows(
    fake_openai: FakeOpenAI, guarded_for: GuardedFor
) -> None:
    fake_openai.push(slow(30), ok("second attempt"))
    guarded = guarded_for(settings_for(fake_openai, attempt_timeout_seconds=0.3))
    answer = await guarded.complete(QUESTION, time_remaining=10)
    assert answer.text == "second attempt"
    assert len(fake_openai.requests) == 2
    assert fake_openai.requests[0].abandoned or fake_openai.wait_until_abandoned()


async def test_timeouts_until_retries_run_out_are_unavailable(fake_openai: FakeOpenAI, guarded_for: GuardedFor) -> None:
    fake_openai.default = slow(30)
    guarded = guarded_for(settings_for(fake_openai, attempt_timeout_seconds=0.2, max_retries=1))
    with pytest.raises(Unavailable) as caught:
        await guarded.complete(QUESTION, time_remaining=20)
    assert "did not answer" in caught.value.message
    assert len(fake_openai.requests) == 2


async def test_a_stalled_stream_ends_with_unavailable_after_its_pieces(
    fake_openai: FakeOpenAI, guarded_for: GuardedFor
) -> None:
    fake_openai.push(Reply(text="one two three four", stall_after=2))
    # The stall lasts until the client gives up, so the attempt timeout only
    # needs to be long enough for the first pieces to arrive on a busy machine
    # (at 0.3 s a slow start read as "did not answer" instead).
    guarded = guarded_for(settings_for(fake_openai, attempt_timeout_seconds=2.0))
    pieces: list[str] = []
    with pytest.raises(Unavailable) as caught:
        async for event in guarded.stream(QUESTION):
            assert isinstance(event, str)
            pieces.append(event)
    assert pieces == ["one ", "two "]
    assert "stopped sending" in caught.value.message
    assert len(fake_openai.requests) == 1, "pieces were out: no retry"
    fake_openai.wait_until_abandoned()


@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        ({"api_key": Secret("sk-wrong-0000000000")}, "LLM_API_KEY"),
        ({"base_url": "", "openrouter_api_key": Secret("sk-or-wrong-000000")}, "OPENROUTER_API_KEY"),
    ],
)
async def test_bad_key_is_failed_precondition_naming_the_variable_and_never_the_key(
    fake_openai: FakeOpenAI,
    guarded_for: GuardedFor,
    settings: dict[str, Any],
    variable: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    config = settings_for(fake_openai, openrouter_base_url=fake_openai.base_url, **settings)
    guarded = guarded_for(config)
    key = next(v for v in settings.values() if isinstance(v, Secret)).reveal()
    with pytest.raises(FailedPrecondition) as caught:
        await guarded.complete(QUESTION)
    assert variable in caught.value.message
    assert key not in caught.value.message
    precondition = caught.value.detail(error_details_pb2.PreconditionFailure)
    assert precondition is not None
    assert [v.subject for v in precondition.violations] == [variable]  # type: ignore[attr-defined]
    assert len(fake_openai.requests) == 1, "a bad key is not retried"
    assert fake_openai.requests[0].authorization == f"Bearer {key}"  # the fake saw it, and echoed it back
    formatter = JsonFormatter("llm")
    logged = "\n".join(formatter.format(r) for r in caplog.records)
    assert key not in logged


@pytest.mark.parametrize(
    "body", ["this is not JSON {", '{"id": "x", "object": "chat.completion"}', "[1, 2, 3]", '{"choices": []}']
)
async def test_malformed_response_is_unavailable_without_retries(
    fake_openai: FakeOpenAI, guarded_for: GuardedFor, body: str
) -> None:
    fake_openai.push(malformed(body))
    guarded = guarded_for(settings_for(fake_openai))
    with pytest.raises(Unavailable) as caught:
        await guarded.complete(QUESTION)
    assert "not a chat completion" in caught.value.message
    assert caught.value.detail(error_details_pb2.RetryInfo) is None
    assert len(fake_openai.requests) == 1


async def test_malformed_stream_is_unavailable(fake_openai: FakeOpenAI, guarded_for: GuardedFor) -> None:
    fake_openai.push(malformed("this is not an event stream"))
    guarded = guarded_for(settings_for(fake_openai))
    with pytest.raises(Unavailable):
        await collect(guarded, QUESTION)


async def test_unreachable_provider_is_unavailable(guarded_for: GuardedFor) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = LlmSettings(base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    with pytest.raises(Unavailable) as caught:
        await guarded_for(settings).complete(QUESTION)
    assert f"127.0.0.1:{port}" in caught.value.message


async def test_provider_rejecting_the_request_is_invalid_argument(
    fake_openai: FakeOpenAI, guarded_for: GuardedFor
) -> None:
    fake_openai.push(error(400, "model 'nope' does not exist"))
    with pytest.raises(InvalidArgument) as caught:
        await guarded_for(settings_for(fake_openai)).complete(dataclasses.replace(QUESTION, model="nope"))
    assert "does not exist" in caught.value.message
    assert len(fake_openai.requests) == 1


# --- limits, cache, usage --------------------------------------------------------------


async def test_limits_refuse_before_spending_tokens(fake_openai: FakeOpenAI, guarded_for: GuardedFor) -> None:
    guarded = guarded_for(
        settings_for(fake_openai, max_prompt_chars=50, max_response_tokens=100, models=("fake-model-large",))
    )
    with pytest.raises(InvalidArgument) as caught:
        await guarded.complete(Call([Message("user", "x" * 51)]))
    assert [v.field for v in caught.value.violations] == ["messages"]
    assert "LLM_MAX_PROMPT_CHARS" in caught.value.violations[0].description
    with pytest.raises(InvalidArgument) as caught:
        await guarded.complete(dataclasses.replace(QUESTION, max_tokens=101, model="gpt-unknown"))
    assert sorted(v.field for v in caught.value.violations) == ["max_tokens", "model"]
    assert fake_openai.requests == []
    for allowed in ("fake-model", "fake-model-large", ""):
        await guarded.complete(dataclasses.replace(QUESTION, model=allowed))
    assert [r.body["model"] for r in fake_openai.requests] == ["fake-model", "fake-model-large", "fake-model"]
    assert [m.name for m in guarded.models()] == ["fake-model", "fake-model-large"]
    assert [m.default for m in guarded.models()] == [True, False]


async def test_answers_are_cut_at_the_response_limit(fake_openai: FakeOpenAI, guarded_for: GuardedFor) -> None:
    fake_openai.default = ok("a provider that ignores max_tokens writes on and on")
    guarded = guarded_for(settings_for(fake_openai, max_response_chars=12))
    answer = await guarded.complete(QUESTION)
    assert answer.text == "a provider t" and answer.finish_reason == "length"
    pieces, completion = await collect(guarded, dataclasses.replace(QUESTION, temperature=1.0))
    assert "".join(pieces) == completion.text == "a provider t"
    assert completion.finish_reason == "length"


async def test_identical_requests_are_answered_from_the_cache(fake_openai: FakeOpenAI, guarded_for: GuardedFor) -> None:
    guarded = guarded_for(settings_for(fake_openai, cache_ttl_seconds=60))
    first = await guarded.complete(QUESTION)
    second = await guarded.complete(QUESTION)
    pieces, streamed = await collect(guarded, QUESTION)
    assert not first.cached and second.cached and streamed.cached
    assert second.text == first.text == "".join(pieces)
    assert len(fake_openai.requests) == 1, "identical requests must not spend tokens twice"
    await guarded.complete(dataclasses.replace(QUESTION, temperature=0.9))
    assert len(fake_openai.requests) == 2, "a different request is not a cache hit"
    totals = guarded.usage.overall()
    assert (totals.requests, totals.cache_hits) == (2, 2)
    assert totals.prompt_tokens == 2 * first.prompt_tokens  # cached answers spent nothing


async def test_usage_totals_count_tokens_per_model(fake_openai: FakeOpenAI, guarded_for: GuardedFor) -> None:
    guarded = guarded_for(settings_for(fake_openai, max_retries=0))
    one = await guarded.complete(QUESTION)
    _, two = await collect(guarded, dataclasses.replace(QUESTION, model="other"))
    fake_openai.push(error(500))
    with pytest.raises(Unavailable):
        await guarded.complete(QUESTION)
    by_model = guarded.usage.by_model
    spent = one.prompt_tokens + one.completion_tokens
    assert by_model[("openai-compatible", "fake-model-snapshot")].total_tokens == spent
    assert by_model[("openai-compatible", "other-snapshot")].requests == 1
    assert by_model[("openai-compatible", "fake-model")].failures == 1
    overall = guarded.usage.overall()
    assert overall.requests == 2 and overall.failures == 1
    assert overall.completion_tokens == one.completion_tokens + two.completion_tokens


async def test_prompts_are_logged_at_debug_level_only(
    fake_openai: FakeOpenAI, guarded_for: GuardedFor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_question = Call([Message("user", "the confidential figure is 4242")])
    await guarded_for(settings_for(fake_openai)).complete(secret_question)
    formatter = JsonFormatter("llm")
    mentions = [r for r in caplog.records if "confidential figure" in formatter.format(r)]
    assert mentions, "the prompt is logged at debug level"
    assert {r.levelno for r in mentions} == {logging.DEBUG}
    assert any(r.getMessage() == "completion" and r.levelno == logging.INFO for r in caplog.records)
    assert not any(GOOD_KEY in formatter.format(r) for r in caplog.records)
