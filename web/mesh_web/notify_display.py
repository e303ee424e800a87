"""How subscriptions, deliveries and captured e-mail are shown, and how the
subscription form becomes a Subscription. Pure functions; no Reflex, no
network (tests/web/test_web_state.py)."""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from mesh.notify.v1 import subscription_pb2
from mesh_web.display import MISSING, format_timestamp

EVENT_LABELS: dict[int, str] = {
    subscription_pb2.EVENT_TYPE_RESULT_SUCCEEDED: "result succeeded",
    subscription_pb2.EVENT_TYPE_RESULT_FAILED: "result failed",
    subscription_pb2.EVENT_TYPE_ANOMALY_DETECTED: "anomaly detected",
}
"""The name shown for each event type, also the form's checkbox names (spaces as underscores)."""

DELIVERY_LABELS: dict[int, str] = {
    subscription_pb2.DELIVERY_STATUS_QUEUED: "queued",
    subscription_pb2.DELIVERY_STATUS_SENT: "sent",
    subscription_pb2.DELIVERY_STATUS_FAILED: "failed, will retry",
    subscription_pb2.DELIVERY_STATUS_DEAD: "gave up",
}

SUBSCRIPTION_FIELDS = ["email", "display_name", "dataset_ids", "event_types", "min_anomaly_count"]
"""The update mask of an edited subscription: the form holds every field."""


def event_field(event_type: int) -> str:
    """The form field of an event type's checkbox: 'event_result_succeeded'."""
    return "event_" + EVENT_LABELS[event_type].replace(" ", "_")


@dataclasses.dataclass(frozen=True)
class SubscriptionRow:
    """One subscription as the table and the edit form show it."""

    id: str
    email: str
    display_name: str
    datasets: str
    """The dataset names, or 'every dataset'."""
    dataset_id: str
    """The one dataset it is limited to, as the form's select holds it; '' for all (or several)."""
    events: str
    event_succeeded: bool
    event_failed: bool
    event_anomaly: bool
    min_anomaly_count: str
    created: str
    enabled: bool
    """False once the recipient unsubscribed (or someone disabled it): no e-mail goes out."""
    state: str
    """'mailing', or 'unsubscribed' when disabled."""


def subscription_row(subscription: subscription_pb2.Subscription, dataset_names: Mapping[str, str]) -> SubscriptionRow:
    """The row of one subscription; ``dataset_names`` maps ids to names."""
    ids = list(subscription.dataset_ids)
    types = set(subscription.event_types)
    return SubscriptionRow(
        id=subscription.id,
        email=subscription.email,
        display_name=subscription.display_name or MISSING,
        datasets=", ".join(dataset_names.get(i, i) for i in ids) if ids else "every dataset",
        dataset_id=ids[0] if len(ids) == 1 else "",
        events=", ".join(EVENT_LABELS[t] for t in sorted(types) if t in EVENT_LABELS) if types else "every event",
        event_succeeded=not types or subscription_pb2.EVENT_TYPE_RESULT_SUCCEEDED in types,
        event_failed=not types or subscription_pb2.EVENT_TYPE_RESULT_FAILED in types,
        event_anomaly=not types or subscription_pb2.EVENT_TYPE_ANOMALY_DETECTED in types,
        min_anomaly_count=str(subscription.min_anomaly_count),
        created=format_timestamp(subscription.create_time if subscription.HasField("create_time") else None),
        enabled=not subscription.disabled,
        state="unsubscribed" if subscription.disabled else "mailing",
    )


def _checked(form: Mapping[str, Any], name: str) -> bool:
    return str(form.get(name, "")).lower() in ("on", "true", "1", "yes")


def subscription_from_form(form: Mapping[str, Any], subscription_id: str = "") -> subscription_pb2.Subscription:
    """The subscription the form describes. Every event checked (or none)
    means every event type; a dataset of '' or 'all' means every dataset.
    ValueError with a line for the user when the anomaly count is not a number."""
    types = [t for t in EVENT_LABELS if _checked(form, event_field(t))]
    if len(types) == len(EVENT_LABELS):
        types = []
    dataset = str(form.get("dataset_id", "")).strip()
    raw_min = str(form.get("min_anomaly_count", "")).strip() or "0"
    try:
        min_anomalies = int(raw_min)
    except ValueError:
        raise ValueError("minimum anomalies: enter a whole number, e.g. 0") from None
    return subscription_pb2.Subscription(
        id=subscription_id,
        email=str(form.get("email", "")).strip(),
        display_name=str(form.get("display_name", "")).strip(),
        dataset_ids=[dataset] if dataset and dataset != "all" else [],
        event_types=types,  # type: ignore[arg-type]
        min_anomaly_count=min_anomalies,
    )


@dataclasses.dataclass(frozen=True)
class DeliveryRow:
    """One line of the delivery log."""

    id: str
    email: str
    subject: str
    event: str
    status: str
    attempts: str
    error: str
    created: str
    sent: str
    result_id: str


def delivery_row(delivery: subscription_pb2.Delivery) -> DeliveryRow:
    """The log line of one delivery."""
    event = EVENT_LABELS.get(delivery.event_type, "")
    if not event:
        event = "test e-mail" if delivery.event_id.startswith("test-") else MISSING
    return DeliveryRow(
        id=delivery.id,
        email=delivery.email or MISSING,
        subject=delivery.subject or MISSING,
        event=event,
        status=DELIVERY_LABELS.get(delivery.status, "unknown"),
        attempts=str(delivery.attempts),
        error=delivery.last_error,
        created=format_timestamp(delivery.create_time if delivery.HasField("create_time") else None),
        sent=format_timestamp(delivery.sent_time if delivery.HasField("sent_time") else None),
        result_id=delivery.result_id,
    )


# --- the mailbox ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MailRow:
    """One captured e-mail in the mailbox list."""

    id: str
    sender: str
    recipients: str
    subject: str
    received: str
    snippet: str


def _addresses(value: Any) -> str:
    """'Ada <ada@example.com>, bob@example.com' from mailpit's address objects."""
    items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    parts = []
    for item in items:
        if not isinstance(item, dict):
            continue
        name, address = str(item.get("Name", "")).strip(), str(item.get("Address", "")).strip()
        parts.append(f"{name} <{address}>" if name else address)
    return ", ".join(p for p in parts if p) or MISSING


def _received(value: Any) -> str:
    """mailpit's RFC 3339 time as 'YYYY-MM-DD HH:MM UTC' (kept as it is when unreadable)."""
    text = str(value or "")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text or MISSING
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def mail_rows(listing: Mapping[str, Any]) -> list[MailRow]:
    """The mailbox list from GET /api/v1/messages."""
    messages = listing.get("messages") or []
    return [
        MailRow(
            id=str(m.get("ID", "")),
            sender=_addresses(m.get("From")),
            recipients=_addresses(m.get("To")),
            subject=str(m.get("Subject", "")) or "(no subject)",
            received=_received(m.get("Created")),
            snippet=str(m.get("Snippet", "")),
        )
        for m in messages
        if isinstance(m, dict)
    ]


def mail_body(message: Mapping[str, Any]) -> str:
    """The text to show of one message: its plain-text body, else its HTML's text."""
    text = str(message.get("Text", "") or "").strip()
    if text:
        return text
    markup = str(message.get("HTML", "") or "")
    return html.unescape(re.sub(r"<[^>]+>", " ", markup)).strip() or "(empty message)"


def mailbox_summary(total: int, shown: Sequence[MailRow]) -> str:
    """'3 messages' or 'Showing the newest 100 of 250 messages'."""
    noun = "message" if total == 1 else "messages"
    if len(shown) >= total:
        return f"{total} {noun}"
    return f"Showing the newest {len(shown)} of {total} {noun}"
