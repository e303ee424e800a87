"""E-mails from events: subject, text and HTML bodies (Jinja2), safe headers.

Everything that reaches a header (addresses, display names, the subject,
ids) is validated or stripped of control characters first: addresses go
through ``email.headerregistry.Address`` (which refuses what is not an
address), every other value is flattened to one line by ``one_line``, and
the header writer below refuses a value with a line break or a control
character, so no value can add a header of its own. The message itself is
written straight to bytes (multipart/alternative, text and HTML, 7bit or
quoted-printable UTF-8, RFC 2047 encoded words for non-ASCII header values):
the ``email`` package's EmailMessage did the same in about ten times the CPU.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import secrets
import uuid
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any

import jinja2

from mesh.events.v1 import events_pb2
from mesh_runtime.wire import TimestampOutOfRange, us_to_datetime

TEMPLATES = Path(__file__).resolve().parent / "templates"
SUBJECT_PREFIX = "[Analytics Mesh]"
MAX_SUBJECT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Namespace of the Message-ID of each (event, subscription): a re-send after a
# crash carries the same Message-ID, so a duplicate is recognisable.
_MESSAGE_ID_NAMESPACE = uuid.UUID("6f1d7a52-8f0e-4a59-9a43-3c1b0d2e9b11")
# RFC 5322's line limit: longer lines are refused by SMTP servers.
MAX_LINE = 998
# A display name that needs no quotes: atext and spaces (RFC 5322 3.2.3).
_PLAIN_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_PRINTABLE_ASCII = re.compile(r"[ -~]*")
# UTF-8 bytes per RFC 2047 encoded word: 45 bytes are 60 base64 characters,
# so "=?utf-8?b?...?=" stays within the 75 characters allowed.
_WORD_BYTES = 45
# A display name up to this long (UTF-8 bytes) is one longer encoded word, as
# the email package writes it: the line stays far below MAX_LINE.
_ONE_WORD_NAME_BYTES = 600


class UnsendableAddress(ValueError):
    """An address or name that cannot go into a header; retrying will not help."""


def one_line(text: str, limit: int = MAX_SUBJECT) -> str:
    """``text`` with control characters (line breaks included) turned into spaces, trimmed."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def address(email: str, display_name: str = "") -> Address:
    """A header-safe address; UnsendableAddress when it is not one."""
    if _CONTROL.search(email) or email.count("@") != 1 or not email.isascii():
        # Non-ASCII addresses would need SMTPUTF8, which not every server offers.
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
    # Exact from epoch µs (a float conversion of 9999-12-31 lands in year 10000 and raises).
    try:
        return us_to_datetime(us).strftime("%Y-%m-%d %H:%M:%S UTC")
    except TimestampOutOfRange:
        return f"{us} µs since 1970-01-01 UTC"


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
    """The RFC 8058 one-click URL (a POST unsubscribes): the List-Unsubscribe header's."""
    unsubscribe_page_url: str = ""
    """The page a person confirms on (a GET changes nothing): the body's link;
    the one-click URL when empty."""


def _anomalies(points: Any) -> list[tuple[str, str, str, str, str]]:
    """(peak time, span, value, expected, score) of each anomaly event, in the order given (largest first)."""
    rows = []
    for a in points:
        span = ""
        if a.start_us and a.end_us and a.end_us > a.start_us:
            span = f"{_time(a.start_us)} to {_time(a.end_us)}"
        expected = number(a.expected) if (a.expected or a.start_us) else ""
        rows.append((_time(a.timestamp_us), span, number(a.value), expected, f"{a.score:+.2f}"))
    return rows


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


@dataclass(frozen=True)
class OutgoingEmail:
    """An e-mail ready for SMTP: its envelope and the message's bytes (CRLF lines)."""

    envelope_from: str
    envelope_to: str
    subject: str
    message_id: str
    data: bytes


def _encoded_words(text: str, word_bytes: int = _WORD_BYTES) -> str:
    """``text`` as RFC 2047 encoded words (UTF-8, base64) of at most
    ``word_bytes`` bytes each, one per folded line."""
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in text:
        width = len(char.encode())
        if size + width > word_bytes and chunk:
            words.append(base64.b64encode("".join(chunk).encode()).decode())
            chunk, size = [], 0
        chunk.append(char)
        size += width
    if chunk:
        words.append(base64.b64encode("".join(chunk).encode()).decode())
    return "\r\n ".join(f"=?utf-8?b?{word}?=" for word in words)


def _unstructured(value: str) -> str:
    """A header value for free text (one line already): as is when it is
    printable ASCII, encoded words otherwise."""
    if _CONTROL.search(value):
        raise ValueError(f"a header value must be one line without control characters: {value!r}")
    return value if _PRINTABLE_ASCII.fullmatch(value) else _encoded_words(value)


def _phrase(name: str) -> str:
    """A display name for an address header: bare, quoted, or encoded words."""
    if _CONTROL.search(name):
        raise ValueError(f"a display name must be one line without control characters: {name!r}")
    if _PLAIN_PHRASE.fullmatch(name) and "=?" not in name:
        return name
    if _PRINTABLE_ASCII.fullmatch(name):
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    # One encoded word while it fits on a line: Python's address parser (the
    # catcher's) puts a space between adjacent encoded words of a name.
    encoded = len(name.encode())
    return _encoded_words(name, encoded if encoded <= _ONE_WORD_NAME_BYTES else _WORD_BYTES)


def mailbox(address_: Address) -> str:
    """``Name <user@host>`` (or ``user@host``) for a From or To header."""
    spec = address_.addr_spec
    if not spec.isascii() or not _PRINTABLE_ASCII.fullmatch(spec) or "<" in spec or ">" in spec:
        raise UnsendableAddress(f"not a usable e-mail address: {spec!r}")
    name = address_.display_name
    return f"{_phrase(name)} <{spec}>" if name else spec


def _part(content_type: str, text: str) -> tuple[bytes, bytes]:
    """Headers and body of a UTF-8 text part: 7bit when it is short-lined ASCII,
    quoted-printable otherwise."""
    body = text.replace("\r\n", "\n").replace("\r", "\n").encode()
    if not body.endswith(b"\n"):
        body += b"\n"
    if body.isascii() and max(map(len, body.split(b"\n"))) <= MAX_LINE:
        encoding = b"7bit"
    else:
        encoding, body = b"quoted-printable", binascii.b2a_qp(body, istext=True)
    head = b"Content-Type: " + content_type.encode() + b'; charset="utf-8"\r\nContent-Transfer-Encoding: ' + encoding
    return head, body.replace(b"\n", b"\r\n")


def build_message(
    *,
    context: dict[str, Any],
    sender: Address,
    recipient: Address,
    links: Links,
    event_id: str,
    subscription_id: uuid.UUID,
) -> OutgoingEmail:
    """A multipart (text + HTML) e-mail rendered from ``context``."""
    variables = {
        **context,
        "name": recipient.display_name,
        "email": recipient.addr_spec,
        "result_url": links.result_url,
        "unsubscribe_url": links.unsubscribe_page_url or links.unsubscribe_url,
    }
    subject = one_line(context["subject"])
    msg_id = message_id(event_id, subscription_id, sender.domain)
    headers = [
        ("From", mailbox(sender)),
        ("To", mailbox(recipient)),
        ("Subject", _unstructured(subject)),
        ("Date", formatdate(usegmt=True)),
        ("Message-ID", msg_id),
        ("List-Unsubscribe", f"<{_unstructured(links.unsubscribe_url)}>"),
        # RFC 8058: mail clients unsubscribe with a POST, never by following the link.
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("Auto-Submitted", "auto-generated"),
        ("X-Mesh-Event-Id", _unstructured(one_line(event_id, 200))),
        ("X-Mesh-Subscription-Id", str(subscription_id)),
        ("MIME-Version", "1.0"),
    ]
    parts = [
        _part("text/plain", _ENV.get_template("event.txt.j2").render(variables)),
        _part("text/html", _ENV.get_template("event.html.j2").render(variables)),
    ]
    # "=_" cannot occur in quoted-printable text; a 7bit body is checked.
    boundary = f"=_{secrets.token_hex(16)}".encode()
    while any(boundary in body for _, body in parts):
        boundary = f"=_{secrets.token_hex(16)}".encode()
    head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("ascii")
    out = [head, b'Content-Type: multipart/alternative; boundary="', boundary, b'"\r\n\r\n']
    for part_head, body in parts:
        out += [b"--", boundary, b"\r\n", part_head, b"\r\n\r\n", body, b"\r\n"]
    out += [b"--", boundary, b"--\r\n"]
    return OutgoingEmail(
        envelope_from=sender.addr_spec,
        envelope_to=recipient.addr_spec,
        subject=subject,
        message_id=msg_id,
        data=b"".join(out),
    )


def context_of_test_email() -> dict[str, Any]:
    """Template variables of a test e-mail."""
    return {
        "kind": "test", "dataset": "", "analysis": "", "key_numbers": [], "anomalies": [], "anomaly_count": 0,
        "insight": "", "error": "", "window": "", "unit": "", "threshold": "",
        "subject": f"{SUBJECT_PREFIX} Test e-mail",
    }
