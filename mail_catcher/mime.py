"""Reading a received message: the fields mailpit's API shows, from the raw source.

Parsing uses the stdlib ``email`` package with ``policy.default``, which
decodes RFC 2047 headers and charsets. A malformed message is never refused
or lost: whatever part fails to parse is logged and left empty.
"""

from __future__ import annotations

import datetime as dt
import email
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from typing import Any, TypeVar

logger = logging.getLogger("mail_catcher.mime")

T = TypeVar("T")

SNIPPET_LENGTH = 250


@dataclass(frozen=True)
class Parsed:
    """What the API shows of one message (mailpit's field names live in http_api)."""

    message_id: str = ""
    from_: dict[str, str] = field(default_factory=lambda: {"Name": "", "Address": ""})
    to: list[dict[str, str]] = field(default_factory=list)
    cc: list[dict[str, str]] = field(default_factory=list)
    bcc: list[dict[str, str]] = field(default_factory=list)
    reply_to: list[dict[str, str]] = field(default_factory=list)
    return_path: str = ""
    subject: str = ""
    date: dt.datetime | None = None
    text: str = ""
    html: str = ""
    attachments: list[dict[str, Any]] = field(default_factory=list)
    inline: list[dict[str, Any]] = field(default_factory=list)
    list_unsubscribe: str = ""
    list_unsubscribe_post: str = ""
    headers: dict[str, list[str]] = field(default_factory=dict)

    @property
    def snippet(self) -> str:
        """Up to 250 characters of the text (or the HTML's text), whitespace collapsed."""
        source = self.text if self.text.strip() else html_to_text(self.html)
        return " ".join(source.split())[:SNIPPET_LENGTH]


def _safe(what: str, compute: Callable[[], T], default: T) -> T:
    try:
        return compute()
    except Exception:
        logger.exception("could not read %s of a message; leaving it empty", what)
        return default


def _address_list(message: Message, name: str) -> list[dict[str, str]]:
    result: list[dict[str, str]] = []
    for header in message.get_all(name) or []:
        for address in getattr(header, "addresses", ()):
            if address.addr_spec and address.addr_spec != "<>":
                result.append({"Name": address.display_name, "Address": address.addr_spec})
    return result


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    return "" if value is None else " ".join(str(value).split())


def _date(message: Message) -> dt.datetime | None:
    header = message.get("Date")
    value = getattr(header, "datetime", None)
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _text_of(part: Message | None) -> str:
    if part is None:
        return ""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, ValueError):  # an unknown or lying charset
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    return str(content).replace("\r\n", "\n")


def _bodies(message: EmailMessage) -> tuple[str, str, set[int]]:
    """The text and HTML bodies, and the ids of the parts they came from."""
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    used = {id(p) for p in (text_part, html_part) if p is not None}
    return _text_of(text_part), _text_of(html_part), used


def _walk(part: Message, part_id: str) -> Iterator[tuple[str, Message]]:
    if part.is_multipart() and part.get_content_type() != "message/rfc822":  # a forwarded message is one file
        for number, child in enumerate(part.get_payload(), start=1):  # type: ignore[arg-type]
            if isinstance(child, Message):
                yield from _walk(child, f"{part_id}.{number}" if part_id else str(number))
    else:
        yield part_id or "1", part


def _files(message: EmailMessage, body_parts: set[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Attachments and inline parts (such as images an HTML body refers to by cid)."""
    attachments: list[dict[str, Any]] = []
    inline: list[dict[str, Any]] = []
    for part_id, part in _walk(message, ""):
        if id(part) in body_parts:
            continue
        disposition = part.get_content_disposition()
        filename = part.get_filename() or ""
        content_id = str(part.get("Content-ID", "")).strip().strip("<>")
        payload = part.get_payload(decode=True)
        if payload is None and part.is_multipart():
            payload = b"".join(p.as_bytes() for p in part.get_payload())  # type: ignore[union-attr]
        entry = {
            "PartID": part_id,
            "FileName": filename or content_id,
            "ContentType": part.get_content_type(),
            "ContentID": content_id,
            "Size": len(payload) if isinstance(payload, bytes) else 0,
        }
        if disposition == "attachment" or (disposition is None and filename and not content_id):
            attachments.append(entry)
        elif filename or content_id:
            inline.append(entry)
    return attachments, inline


def _all_headers(message: Message) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in message.items():
        headers.setdefault(name, []).append(" ".join(str(value).split()))
    return headers


def _from(message: Message) -> dict[str, str]:
    addresses = _address_list(message, "From")
    if addresses:
        return addresses[0]
    return {"Name": _header(message, "From"), "Address": ""}


def _bcc(
    message: Message, to: list[dict[str, str]], cc: list[dict[str, str]], envelope_to: list[str]
) -> list[dict[str, str]]:
    """Bcc header addresses, plus envelope recipients no header names (as mailpit shows them)."""
    bcc = _address_list(message, "Bcc")
    named = {a["Address"].lower() for a in (*to, *cc, *bcc)}
    for recipient in envelope_to:
        if recipient and recipient.lower() not in named:
            named.add(recipient.lower())
            bcc.append({"Name": "", "Address": recipient})
    return bcc


def parse(raw: bytes, envelope_from: str = "", envelope_to: list[str] | None = None) -> Parsed:
    """Read the fields mailpit shows from a raw RFC 5322 message; never raises."""
    envelope_to = envelope_to or []
    try:
        parsed_message = email.message_from_bytes(raw, policy=policy.default)
    except Exception:
        logger.exception("could not parse a message; keeping only its raw source")
        return Parsed(return_path=envelope_from)
    assert isinstance(parsed_message, EmailMessage)
    message: EmailMessage = parsed_message

    no_files: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
    no_body: tuple[str, str, set[int]] = ("", "", set())
    no_addresses: list[dict[str, str]] = []
    text, html, body_parts = _safe("the body", lambda: _bodies(message), no_body)
    if not text.strip() and html:
        text = html_to_text(html)
    attachments, inline = _safe("the attachments", lambda: _files(message, body_parts), no_files)
    to = _safe("To", lambda: _address_list(message, "To"), no_addresses)
    cc = _safe("Cc", lambda: _address_list(message, "Cc"), no_addresses)
    from_ = _safe("From", lambda: _from(message), {"Name": "", "Address": ""})
    return Parsed(
        message_id=_safe("Message-ID", lambda: _header(message, "Message-ID").strip("<>"), ""),
        from_=from_,
        to=to,
        cc=cc,
        bcc=_safe("Bcc", lambda: _bcc(message, to, cc, envelope_to), no_addresses),
        reply_to=_safe("Reply-To", lambda: _address_list(message, "Reply-To"), no_addresses),
        return_path=envelope_from
        or _safe("Return-Path", lambda: _header(message, "Return-Path").strip("<>"), "")
        or from_["Address"],
        subject=_safe("Subject", lambda: _header(message, "Subject"), ""),
        date=_safe("Date", lambda: _date(message), None),
        text=text,
        html=html,
        attachments=attachments,
        inline=inline,
        list_unsubscribe=_safe("List-Unsubscribe", lambda: _header(message, "List-Unsubscribe"), ""),
        list_unsubscribe_post=_safe("List-Unsubscribe-Post", lambda: _header(message, "List-Unsubscribe-Post"), ""),
        headers=_safe("the headers", lambda: _all_headers(message), {}),
    )


class _TextExtractor(HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "title"})
    _BREAKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BREAKS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self._BREAKS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.chunks.append(data)


def html_to_text(html: str) -> str:
    """The readable text of an HTML body, one line per block."""
    if not html:
        return ""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = (" ".join(line.split()) for line in "".join(extractor.chunks).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


_MESSAGE_ID_LINE = re.compile(rb"^message-id[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


def header_message_id(raw: bytes) -> str:
    """The Message-ID header of a raw message, without brackets ("" when it has none).

    Read straight from the header section, without parsing the message, so
    the SMTP side can look it up before answering.
    """
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw if end < 0 else raw[: end + 2]
    found = _MESSAGE_ID_LINE.search(head)
    if found is None:
        return ""
    value = b" ".join(found.group(1).split()).decode("utf-8", "replace")
    return value.strip("<>").strip()


def rfc3339(moment: dt.datetime) -> str:
    """Format like Go's RFC3339Nano (mailpit's JSON times): UTC as ``Z``, milliseconds when non-zero."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    text = moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text
