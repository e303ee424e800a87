"""AIP-158 style page tokens: opaque to clients, checked when they come back.

A token encodes the sort key of the last item served plus a fingerprint of the
query it belongs to, so a token from another query or a hand-made one is
rejected with INVALID_ARGUMENT instead of silently returning the wrong page.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from mesh_runtime.errors import FieldViolation, InvalidArgument

T = TypeVar("T")
K = TypeVar("K")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(requested: int) -> int:
    """The page size to use for a request's ``page_size`` (0 means default)."""
    if requested <= 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def next_page(rows: Sequence[T], limit: int, query: str, sort_key: Callable[[T], list[Any]]) -> tuple[list[T], str]:
    """One page of ``rows`` (fetched as ``limit + 1`` to learn whether more follow) and
    the token to the next page, "" after the last; ``sort_key`` gives a row's key."""
    if len(rows) <= limit:
        return list(rows), ""
    page = list(rows[:limit])
    return page, encode_page_token(sort_key(page[-1]), query)


def time_and_id(time: dt.datetime, row_id: object) -> list[Any]:
    """The ``[ISO time, id]`` sort key of a row ordered by a time and its id."""
    return [time.isoformat(), str(row_id)]


def time_and_id_key(after: list[Any]) -> tuple[dt.datetime, uuid.UUID]:
    """A ``[ISO time, UUID]`` sort key from a token, parsed (``parse`` of decode_page_token)."""
    time, key = after
    return dt.datetime.fromisoformat(time), uuid.UUID(key)


def text_key(after: list[Any]) -> str:
    """A one-string sort key (a name) from a token, parsed (``parse`` of decode_page_token)."""
    (text,) = after
    if not isinstance(text, str):
        raise TypeError("a name expected")
    return text


def _fingerprint(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:16]


def encode_page_token(after: list[Any], query: str = "") -> str:
    """A token resuming after the item whose sort key is ``after``."""
    payload = json.dumps({"a": after, "q": _fingerprint(query)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_page_token(
    token: str, query: str = "", parse: Callable[[list[Any]], T] = list  # type: ignore[assignment]
) -> T | None:
    """The sort key stored in ``token``, passed through ``parse`` (which raises
    ValueError or TypeError on a key of the wrong shape); None for an empty
    token (the first page)."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = payload["a"]
        if payload["q"] != _fingerprint(query) or not isinstance(after, list):
            raise ValueError("token belongs to another query")
        return parse(after)
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument(
            "invalid page_token",
            violations=[
                FieldViolation(
                    "page_token",
                    "not a token from a previous response to this query; "
                    "omit it to start from the first page",
                )
            ],
        ) from None


@dataclass(frozen=True)
class PageRequest(Generic[K]):
    """What a List request asks for: the sort key to resume after (None: the
    first page), how many rows a page shows, and the query its tokens belong to."""

    after: K | None
    limit: int
    query: str

    @classmethod
    def of(cls, page_token: str, requested_size: int, query: str, parse: Callable[[list[Any]], K]) -> PageRequest[K]:
        """The request's page_token (checked against ``query``) and page_size, read."""
        return cls(decode_page_token(page_token, query, parse), page_size(requested_size), query)

    @property
    def fetch(self) -> int:
        """Rows to fetch: one more than a page shows, to learn whether another follows."""
        return self.limit + 1

    def cut(self, rows: Sequence[T], sort_key: Callable[[T], list[Any]]) -> tuple[list[T], str]:
        """The page of ``rows`` (fetched as ``fetch``) and the token to the next one."""
        return next_page(rows, self.limit, self.query, sort_key)
