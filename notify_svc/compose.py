"""E-mails from events: subject, text and HTML bodies (Jinja2), safe headers.

Everything that reaches a header (addresses, display names, the subject,
ids) is validated or stripped of control characters, and headers are built
with ``email.message.EmailMessage`` and ``email.headerregistry.Address``,
which refuse line breaks: a value cannot add a header of its own.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import re
import uuid
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any

import jinja2

from mesh.events.v1 import events_pb2

TEMPLATES = Path(__file__).resolve().parent / "templates"
SUBJECT_PREFIX = "[Analytics Mesh]"
MAX_SUBJECT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Namespace of the Message-ID of each (event, subscription): a re-send after a
# crash carries the same Message-ID, so a duplicate is recognisable.
_MESSAGE_ID_NAMESPACE = uuid.UUID("6f1d7a52-8f0e-4a59-9a43-3c1b0d2e9b11")
# RFC 5322's line limit instead of 78, so a long List-Unsubscribe URL stays a
# plain URL instead of being folded into encoded words.
_POLICY = email.policy.SMTP.clone(max_line_length=998)


class UnsendableAddress(ValueError):
    """An address or name that cannot go into a header; retrying will not help."""


def one_line(text: str, limit: int = MAX_SUBJECT) -> str:
    """``text`` with control characters (line breaks included) turned into spaces, trimmed."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def address(email: str, display_name: str = "") -> Address:
    """A header-safe address; UnsendableAddress when it is not one."""
    if _CONTROL.search(email) or email.count("@") != 1:
        raise UnsendableAddress(f"not a usable e-mail address: {email!r}")
    user, domain = email.split("@")
    try:
        return Address(display_name=one_line(display_name, 100), username=user, domain=domain)
    except (ValueError, IndexError) as exc:
        raise UnsendableAddress(f"not a usable e-mail address: {email!r}") from exc


def sender_address(sender: str) -> Address:
    """The configured "Name <user@host>" sender as an Address."""
    name, email = parseaddr(sender)
    return address(email, name)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        auto_reload=False,  # templates change with the code, not while it runs
        # HTML templates escape every value; the text ones are plain text.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=True, default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=True,
    )
    return env


_ENV = _environment()


def number(value: float) -> str:
    """A value for people: up to 6 significant digits, thousands separated."""
    if value != value:
        return "NaN"
    if abs(value) >= 1e15 or (value != 0 and abs(value) < 1e-4):
        return f"{value:.4g}"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.{max(0, 6 - len(str(int(abs(value)))))}f}".rstrip("0").rstrip(".")


def _time(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _window(start: Any, end: Any) -> str:
    if not (start.seconds or start.nanos) or not (end.seconds or end.nanos):
        return ""
    fmt = "%Y-%m-%d %H:%M UTC"
    return f"{start.ToDatetime(dt.UTC).strftime(fmt)} to {end.ToDatetime(dt.UTC).strftime(fmt)}"


@dataclass(frozen=True)
class Links:
    """The links an e-mail carries."""

    result_url: str
    unsubscribe_url: str


def _anomalies(points: Any) -> list[tuple[str, str, str]]:
    return [(_time(a.timestamp_us), number(a.value), f"{a.score:+.2f}") for a in points]


def _plural(count: int) -> str:
    return f"{count} anomal{'y' if count == 1 else 'ies'}"


def event_context(event: events_pb2.Event) -> dict[str, Any]:
    """Template variables (and the subject) of an event."""
    which = event.WhichOneof("payload")
    if which is None:
        raise ValueError("event has no payload")
    p: Any = getattr(event, which)
    ctx: dict[str, Any] = {
        "dataset": one_line(p.dataset_name or p.dataset_id, 120),
        "analysis": one_line(p.kind or "analysis", 60),
        "key_numbers": [], "anomalies": [], "anomaly_count": 0, "insight": "", "error": "",
        "window": "", "unit": "", "threshold": "",
    }
    if which == "result_succeeded":
        ctx.update(
            kind="succeeded",
            key_numbers=[(one_line(k.name, 80), number(k.value)) for k in p.key_numbers],
            anomaly_count=int(p.anomaly_count),
            anomalies=_anomalies(p.anomalies),
            insight=p.insight.strip(),
            unit=one_line(p.unit, 40),
            window=_window(p.window_start, p.window_end),
        )
        found = f", {_plural(p.anomaly_count)}" if p.anomaly_count else ""
        subject = f"{ctx['analysis']} of {ctx['dataset']} is ready{found}"
    elif which == "result_failed":
        ctx.update(kind="failed", error=p.error.strip())
        subject = f"{ctx['analysis']} of {ctx['dataset']} failed"
    else:
        ctx.update(
            kind="anomaly",
            anomaly_count=int(p.anomaly_count),
            anomalies=_anomalies(p.anomalies),
            insight=p.insight.strip(),
            unit=one_line(p.unit, 40),
            threshold=number(p.threshold) if p.threshold else "",
        )
        subject = f"{_plural(p.anomaly_count)} in {ctx['dataset']}"
    ctx["subject"] = one_line(f"{SUBJECT_PREFIX} {subject}")
    return ctx


def result_id(event: events_pb2.Event) -> str:
    """Id of the result an event is about ("" when none)."""
    which = event.WhichOneof("payload")
    return str(getattr(event, which).result_id) if which else ""


def message_id(event_id: str, subscription_id: uuid.UUID, domain: str) -> str:
    """The Message-ID of the e-mail about ``event_id`` to ``subscription_id``."""
    return f"<{uuid.uuid5(_MESSAGE_ID_NAMESPACE, f'{event_id}/{subscription_id}')}@{domain}>"


def build_message(
    *,
    context: dict[str, Any],
    sender: Address,
    recipient: Address,
    links: Links,
    event_id: str,
    subscription_id: uuid.UUID,
) -> EmailMessage:
    """A multipart (text + HTML) e-mail rendered from ``context``."""
    variables = {
        **context,
        "name": recipient.display_name,
        "email": recipient.addr_spec,
        "result_url": links.result_url,
        "unsubscribe_url": links.unsubscribe_url,
    }
    message = EmailMessage(policy=_POLICY)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = one_line(context["subject"])
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(event_id, subscription_id, sender.domain)
    message["List-Unsubscribe"] = f"<{links.unsubscribe_url}>"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Mesh-Event-Id"] = one_line(event_id, 200)
    message["X-Mesh-Subscription-Id"] = str(subscription_id)
    message.set_content(_ENV.get_template("event.txt.j2").render(variables))
    message.add_alternative(_ENV.get_template("event.html.j2").render(variables), subtype="html")
    return message


def context_of_test_email() -> dict[str, Any]:
    """Template variables of a test e-mail."""
    return {
        "kind": "test", "dataset": "", "analysis": "", "key_numbers": [], "anomalies": [], "anomaly_count": 0,
        "insight": "", "error": "", "window": "", "unit": "", "threshold": "",
        "subject": f"{SUBJECT_PREFIX} Test e-mail",
    }
