"""Captured messages: parsed once, kept in memory, optionally on disk."""

from __future__ import annotations

import datetime as dt
import email
import json
import os
import threading
import uuid
from dataclasses import asdict, dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any


def _addresses(value: str | None) -> list[dict[str, str]]:
    return [{"Name": name, "Address": addr} for name, addr in getaddresses([value or ""]) if addr]


def _bodies(message: EmailMessage) -> tuple[str, str]:
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    text = text_part.get_content() if text_part is not None else ""
    html = html_part.get_content() if html_part is not None else ""
    return str(text), str(html)


@dataclass
class Captured:
    """One received message: its raw source and what the API shows of it."""

    id: str
    raw: bytes
    created: str
    envelope_from: str
    envelope_to: list[str]
    read: bool = False
    parsed: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def receive(cls, raw: bytes, envelope_from: str, envelope_to: list[str]) -> Captured:
        """Parse a message as it arrives over SMTP."""
        created = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        captured = cls(uuid.uuid4().hex, raw, created, envelope_from, list(envelope_to))
        captured.parse()
        return captured

    def parse(self) -> None:
        """Fill ``parsed`` from the raw source."""
        message = email.message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        text, html = _bodies(message)
        self.parsed = {
            "MessageID": str(message.get("Message-ID", "")).strip("<>"),
            "From": (_addresses(message.get("From")) or [{"Name": "", "Address": self.envelope_from}])[0],
            "To": _addresses(message.get("To")),
            "Cc": _addresses(message.get("Cc")),
            "Bcc": [],
            "ReplyTo": _addresses(message.get("Reply-To")),
            "Subject": str(message.get("Subject", "")),
            "Date": str(message.get("Date", "")),
            "Text": text,
            "HTML": html,
            "Attachments": sum(1 for _ in message.iter_attachments()),
        }

    def summary(self) -> dict[str, Any]:
        """The message as it appears in mailpit's message list."""
        p = self.parsed
        return {
            "ID": self.id,
            "MessageID": p["MessageID"],
            "Read": self.read,
            "From": p["From"],
            "To": p["To"],
            "Cc": p["Cc"],
            "Bcc": p["Bcc"],
            "ReplyTo": p["ReplyTo"],
            "Subject": p["Subject"],
            "Created": self.created,
            "Tags": [],
            "Size": len(self.raw),
            "Attachments": p["Attachments"],
            "Snippet": " ".join(p["Text"].split())[:250],
        }

    def detail(self) -> dict[str, Any]:
        """The message as mailpit's message endpoint shows it."""
        p = self.parsed
        return {
            "ID": self.id,
            "MessageID": p["MessageID"],
            "From": p["From"],
            "To": p["To"],
            "Cc": p["Cc"],
            "Bcc": p["Bcc"],
            "ReplyTo": p["ReplyTo"],
            "Subject": p["Subject"],
            "Date": p["Date"] or self.created,
            "Text": p["Text"],
            "HTML": p["HTML"],
            "Size": len(self.raw),
            "Tags": [],
            "Attachments": [],
            "Inline": [],
        }


class MessageStore:
    """Thread-safe list of captured messages, newest last, bounded in size."""

    def __init__(self, data_dir: Path | None = None, max_messages: int = 5000) -> None:
        self._lock = threading.Lock()
        self._messages: list[Captured] = []
        self.data_dir = data_dir
        self.max_messages = max_messages
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._load()

    def _load(self) -> None:
        assert self.data_dir is not None
        for meta_path in sorted(self.data_dir.glob("*.json")):
            raw_path = meta_path.with_suffix(".eml")
            try:
                meta = json.loads(meta_path.read_text())
                captured = Captured(
                    meta["id"], raw_path.read_bytes(), meta["created"], meta["envelope_from"], meta["envelope_to"]
                )
                captured.read = bool(meta.get("read", False))
                captured.parse()
            except (OSError, ValueError, KeyError):
                continue  # a half-written message from a crash: skip it
            self._messages.append(captured)
        self._messages.sort(key=lambda m: m.created)

    def _write(self, captured: Captured) -> None:
        if self.data_dir is None:
            return
        stem = self.data_dir / f"{captured.created.replace(':', '')}-{captured.id}"
        for suffix, content in (
            (".eml", captured.raw),
            (".json", json.dumps({k: v for k, v in asdict(captured).items() if k not in ("raw", "parsed")}).encode()),
        ):
            tmp = stem.with_suffix(suffix + ".tmp")
            tmp.write_bytes(content)
            os.replace(tmp, stem.with_suffix(suffix))

    def _forget_files(self, captured: Captured) -> None:
        if self.data_dir is None:
            return
        for path in self.data_dir.glob(f"*-{captured.id}.*"):
            path.unlink(missing_ok=True)

    def add(self, captured: Captured) -> None:
        """Keep a new message, dropping the oldest beyond the limit."""
        with self._lock:
            self._write(captured)
            self._messages.append(captured)
            while len(self._messages) > self.max_messages:
                self._forget_files(self._messages.pop(0))

    def newest_first(self) -> list[Captured]:
        """All messages, newest first."""
        with self._lock:
            return list(reversed(self._messages))

    def get(self, message_id: str) -> Captured | None:
        """One message by id."""
        with self._lock:
            return next((m for m in self._messages if m.id == message_id), None)

    def mark_read(self, message_id: str) -> None:
        """Remember that a message was opened."""
        with self._lock:
            for m in self._messages:
                if m.id == message_id:
                    m.read = True

    def delete(self, ids: list[str] | None = None) -> int:
        """Delete the given messages, or all; return how many went."""
        with self._lock:
            wanted = None if ids is None else set(ids)
            doomed = [m for m in self._messages if wanted is None or m.id in wanted]
            for m in doomed:
                self._forget_files(m)
            gone = {m.id for m in doomed}
            self._messages = [m for m in self._messages if m.id not in gone]
            return len(doomed)
