"""A small in-memory cache of answers, so identical requests don't spend tokens twice.

Keyed by everything that shapes an answer (provider, model, messages,
temperature, max tokens); entries live ``ttl`` seconds, and the least
recently used go first when ``max_entries`` is reached. Per process: each
replica keeps its own.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace

from llm_svc.providers import Completion, Message


def cache_key(
    provider: str, model: str, messages: Sequence[Message], temperature: float | None, max_tokens: int
) -> str:
    """A digest of everything that shapes an answer."""
    shape = {
        "provider": provider,
        "model": model,
        "messages": [[m.role, m.content] for m in messages],
        "temperature": temperature,
        "max_tokens": max_tokens,
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()


class ResponseCache:
    """Answers by key for ``ttl`` seconds; ``ttl`` 0 turns the cache off."""

    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Completion]] = OrderedDict()
        self.hits = 0  # lookups answered from the cache
        self.misses = 0  # lookups that found nothing (or an expired answer)

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def get(self, key: str) -> Completion | None:
        """The cached answer (marked ``cached``), or None if absent or expired."""
        if not self.enabled:
            return None
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        expires, completion = entry
        if self._clock() >= expires:
            del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return replace(completion, cached=True)

    def put(self, key: str, completion: Completion) -> None:
        """Keep ``completion`` for ``ttl`` seconds."""
        if not self.enabled:
            return
        self._entries[key] = (self._clock() + self.ttl, completion)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
