"""Conversions between Python values and well-known protobuf types.

Times travel as ``google.protobuf.Timestamp`` on the wire and as epoch
microseconds (int64) inside the services. Every instant a Timestamp can hold
at microsecond precision, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z,
converts both ways exactly; ``datetime`` covers the same years.
"""

from __future__ import annotations

import datetime as dt

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SECONDS_PER_DAY = 86_400
_MICROSECOND = dt.timedelta(microseconds=1)

# The instants a google.protobuf.Timestamp can hold, in epoch microseconds.
MIN_TIMESTAMP_US = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
MAX_TIMESTAMP_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
TIMESTAMP_RANGE = "the range 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z"


class TimestampOutOfRange(ValueError):
    """An instant outside what a Timestamp (and so the mesh) can hold."""


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


def _checked(micros: int) -> int:
    if not MIN_TIMESTAMP_US <= micros <= MAX_TIMESTAMP_US:
        raise TimestampOutOfRange(f"{micros} µs since the epoch is outside {TIMESTAMP_RANGE}")
    return micros


def timestamp_to_us(value: Timestamp) -> int:
    """Epoch microseconds of a Timestamp (nanoseconds below a microsecond dropped, towards the past).

    TimestampOutOfRange for a Timestamp outside the range protobuf defines
    (which the wire format does not stop a client from sending).
    """
    if not 0 <= value.nanos < 1_000_000_000:
        raise TimestampOutOfRange(f"nanos {value.nanos} is outside 0 to 999,999,999")
    return _checked(value.seconds * 1_000_000 + value.nanos // 1000)


def us_to_timestamp(micros: int) -> Timestamp:
    """The Timestamp of epoch microseconds; TimestampOutOfRange outside ``TIMESTAMP_RANGE``."""
    seconds, rest = divmod(_checked(int(micros)), 1_000_000)
    return Timestamp(seconds=seconds, nanos=rest * 1000)


def us_to_datetime(micros: int) -> dt.datetime:
    """The aware UTC datetime of epoch microseconds, exact (no float on the way)."""
    return _EPOCH + _checked(int(micros)) * _MICROSECOND


def datetime_to_us(value: dt.datetime) -> int:
    """Epoch microseconds of an aware datetime (a naive one is taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return (value - _EPOCH) // _MICROSECOND


def duration_to_us(value: Duration) -> int:
    """Microseconds of a Duration (nanoseconds below a microsecond dropped, towards zero)."""
    whole_micros = abs(value.nanos) // 1000
    return value.seconds * 1_000_000 + (whole_micros if value.nanos >= 0 else -whole_micros)


def us_to_duration(micros: int) -> Duration:
    """The Duration of ``micros`` microseconds."""
    seconds, rest = divmod(abs(int(micros)), 1_000_000)
    sign = -1 if micros < 0 else 1
    return Duration(seconds=sign * seconds, nanos=sign * rest * 1000)
