"""Usage totals since the service started: calls, cache hits, failures and
tokens, overall and per provider and model. Per process: each replica keeps
its own, and they start again from zero at a restart."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass
class UsageTotals:
    """Counts for one provider and model, or for everything."""

    requests: int = 0  # answered by a provider (tokens spent)
    cache_hits: int = 0  # answered from the response cache (no tokens spent)
    failures: int = 0  # ended with an error from or about the provider
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: UsageTotals) -> None:
        self.requests += other.requests
        self.cache_hits += other.cache_hits
        self.failures += other.failures
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


@dataclass
class UsageLedger:
    """Usage totals per (provider, model), counted from ``since``."""

    since: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    by_model: dict[tuple[str, str], UsageTotals] = field(default_factory=dict)

    def _totals(self, provider: str, model: str) -> UsageTotals:
        return self.by_model.setdefault((provider, model), UsageTotals())

    def answered(self, provider: str, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        totals = self._totals(provider, model)
        totals.requests += 1
        totals.prompt_tokens += prompt_tokens
        totals.completion_tokens += completion_tokens

    def cache_hit(self, provider: str, model: str) -> None:
        self._totals(provider, model).cache_hits += 1

    def failed(self, provider: str, model: str) -> None:
        self._totals(provider, model).failures += 1

    def overall(self) -> UsageTotals:
        """The sum over every provider and model."""
        total = UsageTotals()
        for totals in self.by_model.values():
            total.add(totals)
        return total
