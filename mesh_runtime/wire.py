"""Conversions between Python values and well-known protobuf types."""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp


def timestamp_or_none(value: dt.datetime | None) -> Timestamp | None:
    """A Timestamp for an aware datetime, or None (field left unset)."""
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
