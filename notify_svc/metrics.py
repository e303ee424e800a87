"""Notify's own Prometheus metrics: e-mails by outcome, dead events.

The JetStream gauges of its consumer and the RPC metrics are
``mesh_runtime.metrics``'s, which every process shares.
"""

from __future__ import annotations

from prometheus_client import Counter

EMAILS = Counter(
    "mesh_emails",
    "E-mail attempts by outcome: sent (SMTP accepted it), failed (retried later), "
    "dead (refused, unsendable, or out of attempts: never retried).",
    ["outcome"],
)
DEAD_EVENTS = Counter(
    "mesh_notify_dead_events",
    "Events recorded as dead without an e-mail: unreadable, or failing on every delivery.",
)

SENT, FAILED, DEAD = (EMAILS.labels(outcome) for outcome in ("sent", "failed", "dead"))
