"""Conversions between Python values and well-known protobuf types."""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SECONDS_PER_DAY = 86_400


def timestamp_or_none(value: dt.datetime | None) -> Timestamp | None:
    """A Timestamp for an aware datetime (a naive one is taken as UTC), or None (field left unset).

    Exact to the microsecond, by integer arithmetic on the distance from the
    epoch (Timestamp.FromDatetime does the same in pure Python several times
    slower, and lists convert a dozen times per row).
    """
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    since = value - _EPOCH
    return Timestamp(seconds=since.days * _SECONDS_PER_DAY + since.seconds, nanos=since.microseconds * 1000)
