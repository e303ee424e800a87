"""Analytics' own Prometheus metrics: points ingested, analyses run, the outbox.

The API process counts points; workers count and time the analyses they
run; schedulers (which run the outbox relay) keep the outbox gauges, from
one indexed query every few seconds, only while they serve metrics.
``mesh_runtime.metrics`` has the RPC and JetStream metrics every process shares.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

from analytics_svc.jobs import outbox

POINTS_INGESTED = Counter(
    "mesh_points_ingested",
    "Points stored by AppendPoints, IngestPoints, ImportCsv and UploadCsv (after screening).",
    ["source"],
)
POINTS_REJECTED = Counter(
    "mesh_points_rejected",
    "Points (or CSV lines) refused by screening: not finite, out of range, unreadable.",
    ["source"],
)

ANALYSES_RUNNING = Gauge("mesh_analyses_running", "Analyses this worker is running now.", ["kind"])
ANALYSES_FINISHED = Counter(
    "mesh_analyses_finished",
    "Analyses this worker finished, by kind and outcome (succeeded, failed).",
    ["kind", "status"],
)
ANALYSIS_DURATION = Histogram(
    "mesh_analysis_duration_seconds",
    "Time an analysis took in this worker, from claiming it to storing its outcome.",
    ["kind", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0),
)

OUTBOX_BACKLOG = Gauge(
    "mesh_outbox_backlog_rows",
    "Outbox rows not yet published to JetStream: due (waiting for the relay) or held (a result's "
    "events waiting for its insight).",
    ["state"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "mesh_outbox_oldest_due_age_seconds",
    "How long the oldest due, unpublished outbox row has waited for the relay (0: none waits).",
)


class MeasuredAnalysis:
    """One analysis a worker runs: its kind and when it started."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.started = time.perf_counter()

    def finished(self, succeeded: bool) -> None:
        """Count and time the analysis; call once its outcome is stored."""
        status = "succeeded" if succeeded else "failed"
        ANALYSES_FINISHED.labels(self.kind, status).inc()
        ANALYSIS_DURATION.labels(self.kind, status).observe(time.perf_counter() - self.started)


@contextmanager
def running(kind: str) -> Iterator[MeasuredAnalysis]:
    """Count an analysis of ``kind`` as running while the block runs."""
    gauge = ANALYSES_RUNNING.labels(kind)
    gauge.inc()
    try:
        yield MeasuredAnalysis(kind)
    finally:
        gauge.dec()


def count_points(source: str, stored: int, rejected: int) -> None:
    """Count a committed write of ``stored`` points from ``source`` (append, stream, csv)."""
    POINTS_INGESTED.labels(source).inc(stored)
    if rejected:
        POINTS_REJECTED.labels(source).inc(rejected)


def refresh_outbox_gauges() -> None:
    """Set the outbox gauges from the database (blocking: a database thread)."""
    due, held, age = outbox.outbox_backlog()
    OUTBOX_BACKLOG.labels("due").set(due)
    OUTBOX_BACKLOG.labels("held").set(held)
    OUTBOX_OLDEST_AGE.set(age)
