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
from collections.abc import Callable
from typing import Any, TypeVar

from mesh_runtime.errors import FieldViolation, InvalidArgument

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(requested: int) -> int:
    """The page size to use for a request's ``page_size`` (0 means default)."""
    if requested <= 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def time_and_id_key(after: list[Any]) -> tuple[dt.datetime, uuid.UUID]:
    """A ``[ISO time, UUID]`` sort key from a token, parsed (``parse`` of decode_page_token)."""
    time, key = after
    return dt.datetime.fromisoformat(time), uuid.UUID(key)


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
