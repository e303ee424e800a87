"""Timestamps built from datetimes match protobuf's own conversion, to the microsecond."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from mesh_runtime import wire
from mesh_runtime.wire import duration_to_us, timestamp_or_none, us_to_duration

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


EDGES = [
    (wire.MIN_TIMESTAMP_US, dt.datetime(1, 1, 1, tzinfo=dt.UTC)),
    (-1, dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)),
    (-86_400_000_001, dt.datetime(1969, 12, 30, 23, 59, 59, 999999, tzinfo=dt.UTC)),
    (0, dt.datetime(1970, 1, 1, tzinfo=dt.UTC)),
    (wire.MAX_TIMESTAMP_US, dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)),
]


@pytest.mark.parametrize(("micros", "moment"), EDGES, ids=str)
def test_microseconds_convert_exactly_over_the_whole_timestamp_range(micros: int, moment: dt.datetime) -> None:
    expected = Timestamp()
    expected.FromDatetime(moment)
    assert wire.us_to_timestamp(micros) == expected
    assert wire.timestamp_to_us(expected) == micros
    assert wire.us_to_datetime(micros) == moment
    assert wire.datetime_to_us(moment) == micros


@pytest.mark.parametrize("micros", [wire.MIN_TIMESTAMP_US - 1, wire.MAX_TIMESTAMP_US + 1, -(2**63), 2**63 - 1])
def test_microseconds_outside_the_range_are_refused_naming_it(micros: int) -> None:
    for convert in (wire.us_to_timestamp, wire.us_to_datetime):
        with pytest.raises(wire.TimestampOutOfRange, match="0001-01-01T00:00:00Z to 9999-12-31"):
            convert(micros)


@pytest.mark.parametrize(
    "stamp", [Timestamp(seconds=-62_135_596_801), Timestamp(seconds=253_402_300_800), Timestamp(nanos=-1)]
)
def test_timestamps_protobuf_does_not_allow_are_refused(stamp: Timestamp) -> None:
    with pytest.raises(wire.TimestampOutOfRange):
        wire.timestamp_to_us(stamp)


@pytest.mark.parametrize(
    ("duration", "micros"),
    [
        (Duration(seconds=60), 60_000_000),
        (Duration(seconds=1, nanos=500_000_999), 1_500_000),  # below a microsecond: dropped
        (Duration(seconds=-1, nanos=-500_000_999), -1_500_000),  # towards zero, as Duration's sign rules
        (Duration(seconds=3_155_760_000), 3_155_760_000_000_000),  # 100 years
    ],
)
def test_durations_in_microseconds(duration: Duration, micros: int) -> None:
    assert duration_to_us(duration) == micros
    back = us_to_duration(micros)
    assert duration_to_us(back) == micros
    assert back.ToMicroseconds() == micros  # protobuf's own reading agrees
