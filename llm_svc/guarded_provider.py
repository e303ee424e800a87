"""A provider behind guards: the same limits, cache, deadlines, retries and usage totals for every provider.

A guarded provider checks a request against the limits, answers from the response
cache when it can, bounds the call by the caller's deadline (or
``LLM_TIMEOUT_SECONDS``), runs attempts of at most
``LLM_ATTEMPT_TIMEOUT_SECONDS`` each, retries rate limits, 5xx and timeouts
with exponential backoff and jitter but never past the deadline, maps what
finally went wrong to a domain error (and so a gRPC status), and keeps the
usage totals. Prompts and answers are logged at debug level only.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from google.rpc import error_details_pb2

from llm_svc.config import LlmSettings
from llm_svc.providers import (
    BadCredentials,
    Completion,
    MalformedResponse,
    Message,
    Provider,
    ProviderFailure,
    ProviderRefused,
    ProviderTimeout,
    RateLimited,
    RequestRejected,
    StreamEvent,
    attempt_deadline,
    estimate_tokens,
)
from llm_svc.response_cache import ResponseCache, cache_key
from llm_svc.usage import UsageLedger
from mesh_runtime.backoff import backoff_seconds
from mesh_runtime.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    MeshError,
    ResourceExhausted,
    Unavailable,
)

logger = logging.getLogger("mesh.llm")

T = TypeVar("T")

# Part of the caller's remaining time kept back, so the caller gets our
# DEADLINE_EXCEEDED (with a message) rather than its own clock's.
_DEADLINE_MARGIN = 0.05
_JITTER = secrets.SystemRandom()


@dataclass(frozen=True)
class Call:
    """What a caller asked for."""

    messages: list[Message]
    model: str = ""  # "" means the default
    max_tokens: int = 0  # 0 means LLM_DEFAULT_MAX_TOKENS
    temperature: float | None = None  # None means the provider's default


@dataclass(frozen=True)
class ModelInfo:
    """A model the guarded provider can answer with."""

    name: str
    provider: str
    default: bool


class GuardedProvider:
    """One provider behind limits, a cache, deadlines, retries and usage totals."""

    def __init__(
        self,
        provider: Provider,
        settings: LlmSettings,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        random: Callable[[], float] = _JITTER.random,
    ) -> None:
        self.provider = provider
        self.settings = settings
        self.cache = ResponseCache(settings.cache_ttl_seconds, settings.cache_max_entries)
        self.usage = UsageLedger()
        self._sleep = sleep
        self._random = random

    # --- what the servicer calls ----------------------------------------------------

    def models(self) -> list[ModelInfo]:
        """The models on offer, the default first."""
        names = self.provider.models()
        return [ModelInfo(name, self.provider.name, i == 0) for i, name in enumerate(names)]

    async def complete(self, call: Call, time_remaining: float | None = None) -> Completion:
        """The answer to ``call``, within ``time_remaining`` seconds (None: the configured timeout)."""
        max_tokens = self._check(call)
        deadline = self._deadline(time_remaining)
        key = self._cache_key(call, max_tokens)
        self._log_prompt(call, max_tokens, streamed=False)
        hit = self._cached(key)
        if hit is not None:
            self._log_answer(hit, attempts=0, streamed=False)
            return hit
        started = time.monotonic()
        options = self._options(call)
        try:
            completion, attempts = await self._attempts(
                lambda: self.provider.complete(call.messages, call.model, max_tokens, **options), deadline
            )
        except Exception:
            self.usage.failed(self.provider.name, call.model or self.settings.default_model or "(default)")
            raise
        completion = replace(self._cut(completion), latency_seconds=time.monotonic() - started)
        self._answered(key, completion, attempts, streamed=False)
        return completion

    async def stream(self, call: Call, time_remaining: float | None = None) -> AsyncIterator[StreamEvent]:
        """The answer to ``call`` in pieces of text, then its Completion."""
        max_tokens = self._check(call)
        deadline = self._deadline(time_remaining)
        key = self._cache_key(call, max_tokens)
        self._log_prompt(call, max_tokens, streamed=True)
        hit = self._cached(key)
        if hit is not None:
            self._log_answer(hit, attempts=0, streamed=True)
            if hit.text:
                yield hit.text
            yield hit
            return
        started = time.monotonic()
        try:
            async for event in self._stream(call, max_tokens, deadline, started, key):
                yield event
        except Exception:
            self.usage.failed(self.provider.name, call.model or self.settings.default_model or "(default)")
            raise

    async def aclose(self) -> None:
        """Release the provider's connections."""
        await self.provider.aclose()

    # --- limits and deadlines ---------------------------------------------------------

    def _check(self, call: Call) -> int:
        """Refuse a request over the limits; return the max tokens to ask for."""
        s = self.settings
        violations: list[FieldViolation] = []
        chars = sum(len(m.content) for m in call.messages)
        if chars > s.max_prompt_chars:
            violations.append(
                FieldViolation(
                    "messages",
                    f"the conversation has {chars} characters; at most {s.max_prompt_chars} "
                    "are allowed (LLM_MAX_PROMPT_CHARS)",
                )
            )
        if call.max_tokens > s.max_response_tokens:
            violations.append(
                FieldViolation(
                    "max_tokens",
                    f"at most {s.max_response_tokens} tokens may be asked for (LLM_MAX_RESPONSE_TOKENS)",
                )
            )
        if s.models and call.model and call.model not in {*self.provider.models(), *s.models}:
            violations.append(
                FieldViolation("model", f"model {call.model!r} is not offered; ListModels shows those that are")
            )
        if violations:
            summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
            raise InvalidArgument(f"invalid request: {summary}", violations=violations)
        return min(call.max_tokens or s.default_max_tokens, s.max_response_tokens)

    def _deadline(self, time_remaining: float | None) -> float:
        """When the call must be over, on the ``time.monotonic()`` clock."""
        if time_remaining is None:
            return time.monotonic() + self.settings.timeout_seconds
        margin = min(_DEADLINE_MARGIN, time_remaining * 0.1)
        return time.monotonic() + max(time_remaining - margin, 0.0)

    @staticmethod
    def _options(call: Call) -> dict[str, float]:
        # Only options the caller set, so the simplest provider needs none.
        return {} if call.temperature is None else {"temperature": call.temperature}

    def _cut(self, completion: Completion) -> Completion:
        """The completion within LLM_MAX_RESPONSE_CHARS."""
        limit = self.settings.max_response_chars
        if len(completion.text) <= limit:
            return completion
        text = completion.text[:limit]
        return replace(completion, text=text, finish_reason="length", completion_tokens=estimate_tokens(text))

    # --- attempts and retries ---------------------------------------------------------

    def _backoff(self, retry: int, failure: ProviderFailure) -> float:
        """Delay before retry number ``retry`` (0 first): exponential, half of it random,
        and at least what the provider asked for."""
        s = self.settings
        delay = backoff_seconds(
            retry, s.retry_base_seconds, s.retry_max_seconds, spread=(0.5, 1.0), random_fraction=self._random
        )
        asked = getattr(failure, "retry_after", None)
        return max(delay, asked) if asked is not None else delay

    async def _attempts(self, attempt: Callable[[], Awaitable[T]], deadline: float) -> tuple[T, int]:
        """Run ``attempt`` until it succeeds, retrying what may be retried while the
        deadline allows; return its result and the number of attempts made."""
        name = self.provider.name
        retry = 0
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise DeadlineExceeded(f"the deadline passed before {name} could answer")
            attempt_end = min(deadline, now + self.settings.attempt_timeout_seconds)
            try:
                with attempt_deadline(attempt_end):
                    async with asyncio.timeout(attempt_end - now) as limit:
                        return await attempt(), retry + 1
            except TimeoutError:
                if not limit.expired():
                    raise
                failure: ProviderFailure = ProviderTimeout(
                    name, f"{name} did not answer within {attempt_end - now:.1f} s"
                )
            except ProviderFailure as caught:
                failure = caught
            if isinstance(failure, ProviderTimeout) and attempt_end >= deadline:
                raise DeadlineExceeded(f"{name} did not answer before the deadline")
            delay = self._backoff(retry, failure)
            if not failure.retryable or retry >= self.settings.max_retries or time.monotonic() + delay >= deadline:
                raise self._error(failure, delay)
            logger.warning(
                "provider attempt failed; retrying",
                extra={
                    "provider": name,
                    "failure": type(failure).__name__,
                    "attempt": retry + 1,
                    "delay_s": round(delay, 3),
                },
            )
            await self._sleep(delay)
            retry += 1

    def _error(self, failure: ProviderFailure, retry_after: float) -> MeshError:
        """The domain error (and so the status) a caller gets for ``failure``."""
        logger.warning(
            "provider call failed",
            extra={"provider": failure.provider, "failure": type(failure).__name__, "detail": failure.message},
        )
        if isinstance(failure, BadCredentials):
            violation = error_details_pb2.PreconditionFailure.Violation(
                type="CONFIGURATION", subject=failure.variable, description=failure.message
            )
            return FailedPrecondition(
                failure.message, details=[error_details_pb2.PreconditionFailure(violations=[violation])]
            )
        if isinstance(failure, ProviderRefused):
            return FailedPrecondition(failure.message)
        if isinstance(failure, RequestRejected):
            return InvalidArgument(failure.message)
        if isinstance(failure, RateLimited):
            return ResourceExhausted(failure.message, retry_after=retry_after)
        if isinstance(failure, MalformedResponse):
            return Unavailable(failure.message)  # retrying will not fix a misbehaving endpoint
        return Unavailable(failure.message, retry_after=retry_after)  # 5xx, timeouts, unreachable

    # --- streaming ----------------------------------------------------------------------

    async def _open(self, call: Call, max_tokens: int) -> tuple[AsyncIterator[StreamEvent], StreamEvent]:
        """Start the provider's stream and wait for its first event (one attempt)."""
        events = self.provider.stream(call.messages, call.model, max_tokens, **self._options(call))
        try:
            first = await anext(events)
        except StopAsyncIteration:
            raise MalformedResponse(self.provider.name, f"{self.provider.name} sent an empty stream") from None
        except BaseException:
            await _close(events)
            raise
        return events, first

    async def _next(self, events: AsyncIterator[StreamEvent], deadline: float) -> StreamEvent:
        """The stream's next event, within the deadline and the attempt timeout."""
        name = self.provider.name
        now = time.monotonic()
        until = min(deadline, now + self.settings.attempt_timeout_seconds)
        try:
            with attempt_deadline(until):
                async with asyncio.timeout(max(until - now, 0.0)) as limit:
                    return await anext(events)
        except TimeoutError:
            if not limit.expired():
                raise
            if until >= deadline:
                raise DeadlineExceeded(f"{name} did not finish its answer before the deadline") from None
            failure: ProviderFailure = ProviderTimeout(name, f"{name} stopped sending its answer")
        except StopAsyncIteration:
            failure = MalformedResponse(name, f"{name} ended its stream without finishing")
        except ProviderFailure as caught:
            failure = caught
        # Part of the answer is out already: too late to retry.
        raise self._error(failure, self._backoff(0, failure))

    async def _stream(
        self, call: Call, max_tokens: int, deadline: float, started: float, key: str
    ) -> AsyncIterator[StreamEvent]:
        (events, event), attempts = await self._attempts(lambda: self._open(call, max_tokens), deadline)
        limit = self.settings.max_response_chars
        sent: list[str] = []
        try:
            while True:
                if isinstance(event, Completion):
                    completion = replace(event, text="".join(sent), latency_seconds=time.monotonic() - started)
                    break
                room = limit - sum(len(piece) for piece in sent)
                if len(event) > room:
                    if room > 0:
                        sent.append(event[:room])
                        yield event[:room]
                    text = "".join(sent)
                    completion = Completion(
                        text=text,
                        finish_reason="length",
                        prompt_tokens=sum(estimate_tokens(m.content) for m in call.messages),
                        completion_tokens=estimate_tokens(text),
                        provider=self.provider.name,
                        model=call.model or self.settings.default_model,
                        latency_seconds=time.monotonic() - started,
                    )
                    break
                sent.append(event)
                yield event
                event = await self._next(events, deadline)
        finally:
            await _close(events)
        self._answered(key, completion, attempts, streamed=True)
        yield completion

    def _cache_key(self, call: Call, max_tokens: int) -> str:
        if not self.cache.enabled:
            return ""
        return cache_key(self.provider.name, call.model, call.messages, call.temperature, max_tokens)

    def _cached(self, key: str) -> Completion | None:
        started = time.monotonic()
        hit = self.cache.get(key)
        if hit is None:
            return None
        self.usage.cache_hit(hit.provider, hit.model)
        return replace(hit, latency_seconds=time.monotonic() - started)

    def _answered(self, key: str, completion: Completion, attempts: int, *, streamed: bool) -> None:
        self.usage.answered(
            completion.provider, completion.model, completion.prompt_tokens, completion.completion_tokens
        )
        self.cache.put(key, completion)
        self._log_answer(completion, attempts=attempts, streamed=streamed)

    # --- logs -------------------------------------------------------------------------

    def _log_prompt(self, call: Call, max_tokens: int, *, streamed: bool) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "prompt",
                extra={
                    "provider": self.provider.name,
                    "model": call.model,
                    "max_tokens": max_tokens,
                    "temperature": call.temperature,
                    "streamed": streamed,
                    "messages": [{"role": m.role, "content": m.content} for m in call.messages],
                },
            )

    def _log_answer(self, completion: Completion, *, attempts: int, streamed: bool) -> None:
        logger.info(
            "completion",
            extra={
                "provider": completion.provider,
                "model": completion.model,
                "finish_reason": completion.finish_reason,
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
                "latency_ms": round(completion.latency_seconds * 1000, 2),
                "attempts": attempts,
                "cached": completion.cached,
                "streamed": streamed,
            },
        )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("answer", extra={"provider": completion.provider, "text": completion.text})


async def _close(events: AsyncIterator[StreamEvent]) -> None:
    closer = getattr(events, "aclose", None)
    if closer is not None:
        await closer()
