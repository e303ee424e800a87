"""Unit tests of point screening and CSV parsing (no stack)."""

from __future__ import annotations

import pytest

from analytics_svc.points import ingest

T0 = 1_714_564_800_000_000  # 2024-05-01T12:00:00Z


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("2024-05-01T12:00:00Z", T0),
        ("2024-05-01T12:00:00", T0),  # naive means UTC
        ("2024-05-01T14:00:00+02:00", T0),
        ("2024-05-01 12:00:00.000001", T0 + 1),
        ("1714564800", T0),
        ("1714564800.000001", T0 + 1),
        (" 0 ", 0),
        ("-1", -1_000_000),  # before 1970
        ("1.5e3", 1_500_000_000),
        (".5", 500_000),
        ("1714564800.0000005", T0),  # half a microsecond: to even
        ("1714564800.0000015", T0 + 2),
        ("1e-999999", 0),
        ("0001-01-01T00:00:00Z", ingest.MIN_TIMESTAMP_US),
        ("9999-12-31T23:59:59.999999", ingest.MAX_TIMESTAMP_US),
        ("1969-07-20T20:17:40Z", -14_182_940_000_000),
        ("-62135596800", ingest.MIN_TIMESTAMP_US),
        ("253402300799.999999", ingest.MAX_TIMESTAMP_US),
    ],
)
def test_timestamps(text: str, micros: int) -> None:
    assert ingest.parse_timestamp(text) == micros


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "NaN",
        "Infinity",
        "2024-13-01",
        "1_714_564_800",  # Python's int() takes these; no CSV reader does
        "\u0661\u0667\u0661\u0664\u0665\u0666\u0664\u0668\u0660\u0660",  # Arabic-Indic digits
        "\uff11\uff17\uff11\uff14",  # full-width digits
        "0x10",
        "1" * 65,
    ],
)
def test_bad_timestamps(text: str) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        ingest.parse_timestamp(text)


# Found by probing the stack: Decimal spent ~9.5 s on the first and raised
# decimal.Overflow (HTTP 500) on the second.
@pytest.mark.parametrize(
    "text",
    [
        "1e999990",
        "1e999999",
        "-1e999999",
        "9" * 64,
        "1e99999999999999999999999999999999999999999999999999999999999",
        "-62135596800.000001",
        "253402300800",
        "0000-12-31T23:59:59Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
    ],
)
def test_timestamps_outside_the_range_are_rejected_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match="0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z|neither"):
        ingest.parse_timestamp(text)


def test_range_limits() -> None:
    assert ingest.timestamp_problem(0) is None
    assert ingest.timestamp_problem(-1) is None
    assert ingest.timestamp_problem(ingest.MIN_TIMESTAMP_US) is None
    assert ingest.timestamp_problem(ingest.MAX_TIMESTAMP_US) is None
    assert ingest.timestamp_problem(ingest.MIN_TIMESTAMP_US - 1) is not None
    assert ingest.timestamp_problem(ingest.MAX_TIMESTAMP_US + 1) is not None


@pytest.mark.parametrize(
    ("text", "value"), [("1", 1.0), ("-2.5e3", -2500.0), (" .5 ", 0.5), ("+7.", 7.0), ("1e-400", 0.0)]
)
def test_values(text: str, value: float) -> None:
    assert ingest.parse_value(text) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1_000", "not a number"),
        ("\u0661", "not a number"),
        ("\uff11", "not a number"),
        ("0x10", "not a number"),
        ("1\x00", "not a number"),
        ("nan", "not finite"),
        ("-Infinity", "not finite"),
        ("1e999999", "not finite"),
        ("", "empty"),
    ],
)
def test_bad_values(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        ingest.parse_value(text)


def test_screen_keeps_good_points_and_numbers_rejections_from_first_index() -> None:
    too_early = ingest.MIN_TIMESTAMP_US - 1
    screened = ingest.screen([T0, T0 + 1, too_early, -5], [1.0, float("-inf"), 2.0, 3.0], first_index=100)
    assert screened.timestamps_us.tolist() == [T0, -5] and screened.values.tolist() == [1.0, 3.0]
    assert [(r.index, r.timestamp_us) for r in screened.rejections] == [(101, T0 + 1), (102, too_early)]


def test_csv_header_is_optional_and_only_on_the_first_row() -> None:
    with_header = ingest.parse_csv(b"\xef\xbb\xbftime,value\r\n1714564800,1\r\n")
    without = ingest.parse_csv(b"1714564800,1\n")
    assert with_header.timestamps_us == without.timestamps_us == [T0]
    assert with_header.bad_lines == without.bad_lines == []
    assert with_header.header == "time,value" and without.header == ""
    late_header = ingest.parse_csv(b"1714564800,1\ntime,value\n")
    assert [line for line, _ in late_header.bad_lines] == [2]


def test_csv_reports_each_bad_line_once() -> None:
    parsed = ingest.parse_csv(b"1,1\n2\n3,x\n4,inf\n1e30,1\n\n5,5\n")
    assert parsed.timestamps_us == [1_000_000, 5_000_000] and parsed.values == [1.0, 5.0]
    assert [line for line, _ in parsed.bad_lines] == [2, 3, 4, 5]


def test_csv_must_be_utf8() -> None:
    with pytest.raises(ValueError, match="UTF-8"):
        ingest.parse_csv(b"\xff,1\n")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
def test_csv_with_a_byte_order_mark_is_decoded(encoding: str) -> None:
    text = "time,value\r\n1714564800,1\r\n1714564801,2\r\n"
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    parsed = ingest.parse_csv(data)
    assert parsed.timestamps_us == [T0, T0 + 1_000_000] and parsed.bad_lines == []
    assert parsed.header == "time,value"


def test_csv_in_utf16_without_a_byte_order_mark_is_refused_saying_so() -> None:
    with pytest.raises(ValueError, match="UTF-16"):
        ingest.parse_csv("1714564800,1\n".encode("utf-16-le"))


# Found by probing the stack: each of these stored nothing and reported nothing.
@pytest.mark.parametrize(
    ("data", "bad"),
    [
        (b"1714564800,1\x00\n", [1]),  # the first line was taken for a header
        (b"0x10,0x10\n1714564800,1\n", [1]),
        (b",\n1714564800,1\n", [1]),
        (b'"1714564800,1', [1]),  # a quote left open
        (b'1714564800,"1\n1714564801,2\n1714564802,3\n', [1]),  # swallowed the lines after it
        (b'time,value\n"1714564800,1\n1714564801,2\n', [2]),
        (b"1714564800,\xd9\xa1\n1714564801,2\n", [1]),
        (b"1_714_564_800,1\n1714564801,2\n", [1]),
        (b"1714564800,1_000\n1714564801,2\n", [1]),
    ],
)
def test_every_line_that_stores_nothing_is_reported(data: bytes, bad: list[int]) -> None:
    parsed = ingest.parse_csv(data)
    lines = [line for line in data.decode().splitlines() if line.strip()]
    assert [line for line, _ in parsed.bad_lines] == bad
    assert len(parsed.timestamps_us) + len(parsed.bad_lines) + bool(parsed.header) == len(lines)


def test_csv_exponents_cost_no_more_than_other_numbers() -> None:
    # 20,000 lines of the stalling exponent: each one a rejection naming the range.
    parsed = ingest.parse_csv(b"1e999990,1\n" * 10_000 + b"1e999999,1\n" * 10_000)
    assert parsed.timestamps_us == [] and len(parsed.bad_lines) == 20_000
    assert {reason for _, reason in parsed.bad_lines} == {
        "timestamp is outside the range 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z"
    }


def test_csv_lines_before_1970_and_at_both_ends_of_the_range_are_stored() -> None:
    parsed = ingest.parse_csv(
        b"time,value\n0001-01-01T00:00:00Z,1\n-1.5,2\n9999-12-31T23:59:59.999999Z,3\n1899-12-31,4\n"
    )
    assert parsed.bad_lines == []
    assert parsed.timestamps_us == [
        ingest.MIN_TIMESTAMP_US,
        -1_500_000,
        ingest.MAX_TIMESTAMP_US,
        -2_209_075_200_000_000,
    ]
