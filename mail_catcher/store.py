"""The message store: received messages in memory, optionally also on disk.

With a data directory each message is two files, written atomically (a
temporary file, then a rename): ``<id>.eml``, the raw source exactly as
received, and ``<id>.json``, the metadata (arrival order and time, SMTP
envelope, read flag). The ``.json`` is written last and removed first, so it
marks a complete message; on start, leftovers of an interrupted write are
cleaned up and every complete message is loaded again.

With ``ignore_duplicate_ids`` (mailpit's ``--ignore-duplicate-ids``), a
message whose Message-ID one of the kept messages already has is not kept:
the sender still hears 250, and the store counts it as ignored. That makes a
sender that re-sends after a crash (same Message-ID) leave one copy.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mail_catcher import mime

logger = logging.getLogger("mail_catcher.store")

DEFAULT_MAX_MESSAGES = 5000


@dataclass
class StoredMessage:
    """One received message: raw source, SMTP envelope and what was parsed from it."""

    id: str
    seq: int
    raw: bytes
    created: dt.datetime
    envelope_from: str
    envelope_to: list[str]
    read: bool = False
    # The Message-ID header (without brackets), read on arrival; "" when it has none.
    header_message_id: str = ""
    _parsed: mime.Parsed | None = field(default=None, repr=False, compare=False)

    @property
    def parsed(self) -> mime.Parsed:
        """What was parsed from the raw source, parsed on first use (and then kept).

        Parsing is the costly part of receiving a message, so the SMTP side
        answers 250 once the raw source is kept and parsing happens after.
        Two threads parsing at once get equal results; either is kept.
        """
        parsed = self._parsed
        if parsed is None:
            parsed = self._parsed = mime.parse(self.raw, self.envelope_from, self.envelope_to)
        return parsed

    @property
    def message_id(self) -> str:
        """The Message-ID header without brackets, or one made up from the id if it had none."""
        return self.header_message_id or f"{self.id}@mail_catcher"

    def metadata(self) -> dict[str, Any]:
        """What the ``.json`` file beside the ``.eml`` holds."""
        return {
            "id": self.id,
            "seq": self.seq,
            "created": self.created.isoformat(),
            "envelope_from": self.envelope_from,
            "envelope_to": self.envelope_to,
            "read": self.read,
        }


# Background parsing waits until no message arrived for this long, so a burst
# of mail is taken in at full speed and parsed after (or on first API use).
_QUIET_SECONDS = 0.25


def _write_atomically(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(content)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass
class RuntimeStats:
    """What happened since the start, as mailpit's /api/v1/info counts it."""

    smtp_accepted: int = 0
    smtp_accepted_size: int = 0
    smtp_rejected: int = 0
    smtp_ignored: int = 0
    messages_deleted: int = 0


class MessageStore:
    """Thread-safe, bounded collection of messages in arrival order."""

    def __init__(
        self,
        data_dir: Path | None = None,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        *,
        ignore_duplicate_ids: bool = False,
    ) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self._lock = threading.Lock()
        self._messages: dict[str, StoredMessage] = {}  # oldest first
        # Message-ID header -> ids of the kept messages that carry it.
        self._by_message_id: dict[str, set[str]] = {}
        self.ignore_duplicate_ids = ignore_duplicate_ids
        self.stats = RuntimeStats()
        self.size = 0  # bytes of raw source kept
        self._parser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mail-parse")
        self._last_add = 0.0
        self._next_seq = 1
        self.data_dir = data_dir
        self.max_messages = max_messages
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._load(data_dir)

    # -- disk ----------------------------------------------------------------

    def _load(self, data_dir: Path) -> None:
        for leftover in data_dir.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        loaded: list[StoredMessage] = []
        complete: set[str] = set()
        for meta_path in data_dir.glob("*.json"):
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                if meta["id"] != meta_path.stem:
                    raise ValueError(f"id {meta['id']!r} does not match the file name")
                raw = meta_path.with_suffix(".eml").read_bytes()
                envelope_to = [str(r) for r in meta["envelope_to"]]
                loaded.append(
                    StoredMessage(
                        id=meta["id"],
                        seq=int(meta["seq"]),
                        raw=raw,
                        created=dt.datetime.fromisoformat(meta["created"]),
                        envelope_from=str(meta["envelope_from"]),
                        envelope_to=envelope_to,
                        read=bool(meta.get("read", False)),
                        header_message_id=mime.header_message_id(raw),
                    )
                )
                complete.add(meta_path.stem)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.warning("skipping unreadable stored message", extra={"file": str(meta_path), "error": str(exc)})
                complete.add(meta_path.stem)  # leave its files alone for a person to look at
        for eml in data_dir.glob("*.eml"):
            if eml.stem not in complete:  # the .json never got written: the client was never told 250
                eml.unlink(missing_ok=True)
        loaded.sort(key=lambda m: m.seq)
        for message in loaded:
            self._keep(message)
        self._next_seq = max((m.seq for m in loaded), default=0) + 1
        self._drop_oldest()

    def _save(self, message: StoredMessage, *, raw_too: bool = True) -> None:
        if self.data_dir is None:
            return
        if raw_too:
            _write_atomically(self.data_dir / f"{message.id}.eml", message.raw)
        _write_atomically(self.data_dir / f"{message.id}.json", json.dumps(message.metadata()).encode())

    def _forget(self, message: StoredMessage) -> None:
        if self.data_dir is None:
            return
        for suffix in (".json", ".eml"):
            (self.data_dir / f"{message.id}{suffix}").unlink(missing_ok=True)

    # -- the index (callers hold the lock) --------------------------------------

    def _keep(self, message: StoredMessage) -> None:
        self._messages[message.id] = message
        self.size += len(message.raw)
        if message.header_message_id:
            self._by_message_id.setdefault(message.header_message_id, set()).add(message.id)

    def _remove(self, message_id: str) -> StoredMessage:
        message = self._messages.pop(message_id)
        self.size -= len(message.raw)
        holders = self._by_message_id.get(message.header_message_id)
        if holders is not None:
            holders.discard(message.id)
            if not holders:
                del self._by_message_id[message.header_message_id]
        self._forget(message)
        return message

    def _drop_oldest(self) -> None:
        while len(self._messages) > self.max_messages:
            self._remove(next(iter(self._messages)))

    # -- API -----------------------------------------------------------------

    def add(self, raw: bytes, envelope_from: str = "", envelope_to: Iterable[str] = ()) -> StoredMessage | None:
        """Keep a new message (on disk first, if persisting), to be parsed in the
        background; drop the oldest beyond the cap. Returns None, keeping nothing,
        when duplicates are ignored and a kept message has the same Message-ID.

        Raises OSError when the message could not be written; it is then not kept at all.
        """
        recipients = list(envelope_to)
        header_message_id = mime.header_message_id(raw)
        with self._lock:
            if self.ignore_duplicate_ids and header_message_id in self._by_message_id:
                self.stats.smtp_ignored += 1
                return None
            message = StoredMessage(
                id=uuid.uuid4().hex,
                seq=self._next_seq,
                raw=raw,
                created=dt.datetime.now(dt.UTC),
                envelope_from=envelope_from,
                envelope_to=recipients,
                header_message_id=header_message_id,
            )
            try:
                self._save(message)
            except OSError:
                self.stats.smtp_rejected += 1
                raise
            self._next_seq += 1
            self._keep(message)
            self.stats.smtp_accepted += 1
            self.stats.smtp_accepted_size += len(raw)
            self._drop_oldest()
        self._last_add = time.monotonic()
        # Parse in the background, so the API rarely has to wait for it.
        self._parser.submit(self._parse_when_quiet, message)
        return message

    @property
    def persistent(self) -> bool:
        """Whether messages are written to disk (so adding one does file I/O)."""
        return self.data_dir is not None

    def _parse_when_quiet(self, message: StoredMessage) -> None:
        while time.monotonic() - self._last_add < _QUIET_SECONDS:
            time.sleep(_QUIET_SECONDS / 5)
        try:
            message.parsed  # noqa: B018 - computes and keeps it
        except Exception:  # noqa: BLE001 - parse() never raises; a bug must not stop the worker
            logger.exception("could not parse a message", extra={"id": message.id})

    def newest_first(self, keep: Callable[[StoredMessage], bool] | None = None) -> list[StoredMessage]:
        """All messages (or those ``keep`` accepts), newest first."""
        with self._lock:
            messages = list(self._messages.values())
        messages.reverse()
        return messages if keep is None else [m for m in messages if keep(m)]

    def counts(self) -> tuple[int, int]:
        """How many messages there are, and how many of them are unread."""
        with self._lock:
            return len(self._messages), sum(1 for m in self._messages.values() if not m.read)

    def get(self, message_id: str) -> StoredMessage | None:
        """One message by id; ``latest`` means the newest, as in mailpit."""
        with self._lock:
            if message_id == "latest":
                return next(reversed(self._messages.values()), None)
            return self._messages.get(message_id)

    def set_read(self, ids: Iterable[str] | None, read: bool = True) -> int:
        """Mark the given messages (or all) read or unread; return how many changed."""
        with self._lock:
            wanted = self._messages.values() if ids is None else [self._messages[i] for i in ids if i in self._messages]
            changed = [m for m in wanted if m.read != read]
            for message in changed:
                message.read = read
                try:
                    self._save(message, raw_too=False)
                except OSError as exc:  # the flag is a convenience: keep serving from memory
                    logger.warning("could not save read flag", extra={"id": message.id, "error": str(exc)})
            return len(changed)

    def delete(self, ids: Iterable[str] | None = None) -> int:
        """Delete the given messages (unknown ids are ignored), or all; return how many went."""
        with self._lock:
            doomed = list(self._messages) if ids is None else [i for i in dict.fromkeys(ids) if i in self._messages]
            for message_id in doomed:
                self._remove(message_id)
            self.stats.messages_deleted += len(doomed)
            return len(doomed)
