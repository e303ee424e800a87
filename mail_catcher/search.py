"""A small part of mailpit's search syntax.

Words are ANDed, case-insensitive substring matches; a leading ``-`` negates
one. Supported: ``to:`` (To, Cc and Bcc), ``from:``, ``subject:``,
``message-id:``, ``is:read``, ``is:unread``, ``has:attachment`` and free text
(subject, addresses and body text). Quotes group words: ``subject:"two words"``.
``tag:`` matches nothing, as the catcher keeps no tags.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

from mail_catcher.store import StoredMessage

Predicate = Callable[[StoredMessage], bool]


def _addresses(entries: list[dict[str, str]]) -> str:
    return " ".join(f"{a['Name']} <{a['Address']}>" for a in entries).lower()


def _everywhere(value: str) -> Predicate:
    def matches(m: StoredMessage) -> bool:
        p = m.parsed
        people = _addresses([p.from_, *p.to, *p.cc, *p.bcc, *p.reply_to])
        return value in p.subject.lower() or value in people or value in p.text.lower()

    return matches


def _term(word: str) -> Predicate:
    field, _, value = word.lower().partition(":")
    if field == "is" and value in ("read", "unread"):
        return lambda m: m.read == (value == "read")
    if field == "has" and value in ("attachment", "attachments"):
        return lambda m: bool(m.parsed.attachments)
    fields: dict[str, Predicate] = {
        "to": lambda m: value in _addresses([*m.parsed.to, *m.parsed.cc, *m.parsed.bcc]),
        "from": lambda m: value in _addresses([m.parsed.from_]),
        "subject": lambda m: value in m.parsed.subject.lower(),
        "message-id": lambda m: value in m.message_id.lower(),
        "tag": lambda m: False,
    }
    if value and field in fields:
        return fields[field]
    return _everywhere(word.lower())


def compile_query(query: str) -> Predicate:
    """A predicate for messages matching ``query``; raises ValueError if it is empty."""
    try:
        words = shlex.split(query)
    except ValueError:  # an unbalanced quote: take the words as they are
        words = query.split()
    if not words:
        raise ValueError("no search query")
    checks: list[tuple[bool, Predicate]] = []
    for word in words:
        negate = word.startswith("-") and len(word) > 1
        checks.append((negate, _term(word[1:] if negate else word)))
    return lambda m: all(check(m) != negate for negate, check in checks)
