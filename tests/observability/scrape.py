"""Reading a Prometheus endpoint the way Prometheus does: the text format,
parsed by prometheus_client's own parser, as samples by name and labels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Scrape:
    """One scrape: every sample's value by (sample name, labels)."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    types: dict[str, str]  # metric family name -> counter, gauge, histogram, ...

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named ``name`` whose labels include ``labels`` (0 if none)."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)

    def label_sets(self, name: str) -> list[dict[str, str]]:
        """The label sets of the samples named ``name``."""
        return [dict(ls) for (n, ls) in self.samples if n == name]


def parse(text: str) -> Scrape:
    """The samples of a text-format exposition."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scrape(samples, types)


def scrape(url: str) -> Scrape:
    """Fetch and parse ``url`` (a /metrics or Envoy /stats/prometheus endpoint)."""
    reply = httpx.get(url, timeout=10)
    reply.raise_for_status()
    assert reply.headers["content-type"].startswith("text/plain"), reply.headers
    return parse(reply.text)


def total(scrapes: Mapping[str, Scrape], name: str, **labels: str) -> float:
    """``Scrape.value`` summed over several processes (replicas)."""
    return sum(s.value(name, **labels) for s in scrapes.values())
