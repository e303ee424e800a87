"""The LLM service's own Prometheus metrics: tokens, answers and cache lookups.

Read at scrape time from what the guarded provider counts anyway (its usage
ledger and its response cache), so completions pay nothing more for them.
The RPC metrics are ``mesh_runtime.metrics``'s, which every process shares.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prometheus_client.core import REGISTRY, CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from llm_svc.guarded_provider import GuardedProvider


class LlmUsageCollector(Collector):
    """Exposes a guarded provider's usage totals and cache counts."""

    def __init__(self, guarded: GuardedProvider) -> None:
        self.guarded = guarded

    def collect(self) -> Iterator[Metric]:
        tokens = CounterMetricFamily(
            "mesh_llm_tokens",
            "Tokens spent by provider answers (not cache hits), by provider, model and type (prompt, completion).",
            labels=["provider", "model", "type"],
        )
        requests = CounterMetricFamily(
            "mesh_llm_requests",
            "Completions by provider, model and outcome: answered (by the provider), "
            "cache_hit (from the response cache), failed (an error from or about the provider).",
            labels=["provider", "model", "outcome"],
        )
        # A snapshot: the event loop may add a model while the scrape thread reads.
        for (provider, model), totals in list(self.guarded.usage.by_model.items()):
            tokens.add_metric([provider, model, "prompt"], totals.prompt_tokens)
            tokens.add_metric([provider, model, "completion"], totals.completion_tokens)
            requests.add_metric([provider, model, "answered"], totals.requests)
            requests.add_metric([provider, model, "cache_hit"], totals.cache_hits)
            requests.add_metric([provider, model, "failed"], totals.failures)
        cache = CounterMetricFamily(
            "mesh_llm_cache_lookups",
            "Response cache lookups by result (hit, miss); none while the cache is off (LLM_CACHE_TTL_SECONDS=0).",
            labels=["result"],
        )
        cache.add_metric(["hit"], self.guarded.cache.hits)
        cache.add_metric(["miss"], self.guarded.cache.misses)
        yield from (tokens, requests, cache)


_exposed: list[LlmUsageCollector] = []


def expose_usage(guarded: GuardedProvider) -> LlmUsageCollector:
    """Make ``guarded``'s usage the process's LLM metrics (replacing those of
    a provider exposed before: a server built again in the same process)."""
    while _exposed:
        with contextlib.suppress(KeyError):  # unregistered already
            REGISTRY.unregister(_exposed.pop())
    collector = LlmUsageCollector(guarded)
    REGISTRY.register(collector)
    _exposed.append(collector)
    return collector
