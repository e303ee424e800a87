"""Timestamps built from datetimes match protobuf's own conversion, to the microsecond."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from mesh_runtime.wire import timestamp_or_none

CASES = [
    dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
    dt.datetime(2026, 11, 29, 8, 30, 15, 123456, tzinfo=dt.UTC),
    dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),  # before the epoch: nanos stay positive
    dt.datetime(1, 1, 1, tzinfo=dt.UTC),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 29, 2, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    dt.datetime(2026, 3, 29, 2, 30, 0, 1),  # naive: UTC
]


@pytest.mark.parametrize("value", CASES, ids=str)
def test_timestamp_matches_protobuf_conversion(value: dt.datetime) -> None:
    expected = Timestamp()
    expected.FromDatetime(value if value.tzinfo else value.replace(tzinfo=dt.UTC))
    got = timestamp_or_none(value)
    assert got == expected
    assert got is not None and 0 <= got.nanos < 1_000_000_000
    assert got.ToDatetime(dt.UTC) == value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def test_none_leaves_the_field_unset() -> None:
    assert timestamp_or_none(None) is None
