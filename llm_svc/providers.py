"""Language-model providers behind one interface.

A provider makes one attempt at answering a conversation, whole
(``complete``) or in pieces (``stream``), and reports a failed attempt as a
``ProviderFailure`` saying what went wrong. Everything around an attempt
(limits, retries and backoff, deadlines, the cache, usage totals, status
codes) is the guarded provider's (``llm_svc.guarded_provider``), the same for every provider.

Two kinds exist: ``OfflineProvider`` here (deterministic, labelled, no key,
no network, so the mesh always works) and the OpenAI-compatible one in
``llm_svc.openai_provider`` (OpenRouter, OpenAI, Ollama, vLLM, ...).

The time an attempt may take travels with the call, as gRPC deadlines do:
the guarded provider sets it around each attempt (``attempt_deadline``) and a
provider that can pass a timeout on reads ``time_left()``.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from llm_svc.offline_writer import OFFLINE_LABEL, OFFLINE_MODEL, offline_answer

__all__ = [
    "OFFLINE_LABEL",
    "OFFLINE_MODEL",
    "Completion",
    "Message",
    "OfflineProvider",
    "Provider",
    "ProviderFailure",
    "StreamEvent",
]


@dataclass(frozen=True)
class Message:
    """One chat message: role is "system", "user" or "assistant"."""

    role: str
    content: str


@dataclass(frozen=True)
class Completion:
    """A provider's answer and what it cost."""

    text: str
    finish_reason: str  # "stop", "length" or "content_filter"; "" if not reported
    prompt_tokens: int
    completion_tokens: int
    provider: str
    model: str  # as the provider names the model that answered
    latency_seconds: float
    cached: bool = False  # served from the response cache: no tokens were spent


# What ``Provider.stream`` yields: pieces of text, then one Completion (whose
# text is the whole answer).
StreamEvent = str | Completion


class Provider(Protocol):
    """Something that completes a conversation."""

    name: str

    async def complete(
        self, messages: list[Message], model: str, max_tokens: int, *, temperature: float | None = None
    ) -> Completion:
        """Answer ``messages`` with at most ``max_tokens`` tokens; ``model`` "" is the default."""
        ...

    def stream(
        self, messages: list[Message], model: str, max_tokens: int, *, temperature: float | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Answer like ``complete``, yielding the text in pieces, then the Completion."""
        ...

    def models(self) -> list[str]:
        """The models this provider offers, its default first."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


# --- Failed attempts -----------------------------------------------------------


class ProviderFailure(Exception):
    """One attempt failed. ``message`` is safe to show a caller: no key, no prompt."""

    retryable = False

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(message)
        self.provider = provider
        self.message = message


class RateLimited(ProviderFailure):
    """The provider said 429: too many requests, or a quota; retry after a while."""

    retryable = True

    def __init__(self, provider: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(provider, message)
        self.retry_after = retry_after


class ServerError(ProviderFailure):
    """The provider failed on its side (5xx)."""

    retryable = True

    def __init__(self, provider: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(provider, message)
        self.retry_after = retry_after


class ProviderTimeout(ProviderFailure):
    """The provider did not answer in the time the attempt had."""

    retryable = True


class ProviderUnreachable(ProviderFailure):
    """No connection to the provider (refused, DNS, TLS)."""


class BadCredentials(ProviderFailure):
    """The provider rejected the API key; ``variable`` is the setting to fix."""

    def __init__(self, provider: str, message: str, variable: str) -> None:
        super().__init__(provider, message)
        self.variable = variable


class ProviderRefused(ProviderFailure):
    """The provider will not serve this account now (no credits, forbidden)."""


class RequestRejected(ProviderFailure):
    """The provider rejected the request itself (unknown model, too long, ...)."""


class MalformedResponse(ProviderFailure):
    """The provider answered with something that is not a chat completion."""


# --- The time an attempt may take --------------------------------------------------

_attempt_deadline: ContextVar[float | None] = ContextVar("llm_attempt_deadline", default=None)


@contextmanager
def attempt_deadline(at: float) -> Iterator[None]:
    """Within this block, attempts must end by ``at`` (``time.monotonic()`` clock)."""
    token = _attempt_deadline.set(at)
    try:
        yield
    finally:
        _attempt_deadline.reset(token)


def time_left() -> float | None:
    """Seconds the current attempt has left (at least 1 ms), or None if unbounded."""
    at = _attempt_deadline.get()
    if at is None:
        return None
    return max(at - time.monotonic(), 0.001)


# --- The offline provider -----------------------------------------------------------


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters a token), at least 1 for non-empty text."""
    return (len(text) + 3) // 4


_PIECE = re.compile(r"\S+\s*|\s+")


class OfflineProvider:
    """Answers without any model: a deterministic, labelled summary grounded in
    the figures of the conversation (see ``llm_svc.offline_writer``)."""

    name = "offline"

    def _answer(self, messages: list[Message], max_tokens: int) -> tuple[str, str]:
        text = offline_answer([(m.role, m.content) for m in messages])
        if estimate_tokens(text) > max_tokens:
            return text[: max_tokens * 4], "length"
        return text, "stop"

    async def complete(
        self, messages: list[Message], model: str, max_tokens: int, *, temperature: float | None = None
    ) -> Completion:
        started = time.perf_counter()
        text, finish = self._answer(messages, max_tokens)
        return Completion(
            text=text,
            finish_reason=finish,
            prompt_tokens=sum(estimate_tokens(m.content) for m in messages),
            completion_tokens=estimate_tokens(text),
            provider=self.name,
            model=OFFLINE_MODEL,  # whatever was asked for: this is what answered
            latency_seconds=time.perf_counter() - started,
        )

    async def stream(
        self, messages: list[Message], model: str, max_tokens: int, *, temperature: float | None = None
    ) -> AsyncIterator[StreamEvent]:
        completion = await self.complete(messages, model, max_tokens, temperature=temperature)
        for piece in _PIECE.findall(completion.text):
            yield piece
        yield completion

    def models(self) -> list[str]:
        return [OFFLINE_MODEL]

    async def aclose(self) -> None:
        return None
