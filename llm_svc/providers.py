"""Language-model providers behind one interface.

Only the offline provider exists so far: deterministic, clearly labelled, and
available with no key and no network, so the mesh always works. Providers
for OpenAI-compatible endpoints plug in behind the same ``Provider`` protocol.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Protocol

OFFLINE_LABEL = "[offline model]"


@dataclass(frozen=True)
class Message:
    """One chat message: role is "system", "user" or "assistant"."""

    role: str
    content: str


@dataclass(frozen=True)
class Completion:
    """A provider's answer and what it cost."""

    text: str
    finish_reason: str  # "stop" or "length"
    prompt_tokens: int
    completion_tokens: int
    provider: str
    model: str
    latency_seconds: float


class Provider(Protocol):
    """Something that completes a conversation."""

    name: str

    async def complete(self, messages: list[Message], model: str, max_tokens: int) -> Completion:
        """Answer ``messages`` with at most ``max_tokens`` tokens."""
        ...


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters a token), at least 1 for non-empty text."""
    return (len(text) + 3) // 4


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _offline_answer(messages: list[Message]) -> str:
    question = next((m.content for m in reversed(messages) if m.role == "user"), "")
    numbers = _NUMBER.findall(question)
    words = len(question.split())
    summary = f"{OFFLINE_LABEL} No language model is configured, so this answer is generated locally. "
    summary += f"Your message has {words} word{'s' if words != 1 else ''}"
    if numbers:
        shown = ", ".join(numbers[:8])
        summary += f" and mentions {len(numbers)} number{'s' if len(numbers) != 1 else ''}: {shown}"
        values = [float(n) for n in numbers]
        summary += f" (smallest {min(values):g}, largest {max(values):g})"
    summary += ". Set OPENROUTER_API_KEY or LLM_BASE_URL to use a real model."
    return summary


class OfflineProvider:
    """Answers without any model: a deterministic, labelled summary of the question."""

    name = "offline"

    async def complete(self, messages: list[Message], model: str, max_tokens: int) -> Completion:
        started = time.perf_counter()
        text = _offline_answer(messages)
        finish = "stop"
        if estimate_tokens(text) > max_tokens:
            text = text[: max_tokens * 4]
            finish = "length"
        prompt = sum(estimate_tokens(m.content) for m in messages)
        return Completion(
            text=text,
            finish_reason=finish,
            prompt_tokens=prompt,
            completion_tokens=estimate_tokens(text),
            provider=self.name,
            model=model,
            latency_seconds=time.perf_counter() - started,
        )
