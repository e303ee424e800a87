"""Unit tests of point screening and CSV parsing (no stack)."""

from __future__ import annotations

import pytest

from analytics_svc import ingest

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
    ],
)
def test_timestamps(text: str, micros: int) -> None:
    assert ingest.parse_timestamp(text) == micros


@pytest.mark.parametrize("text", ["", "yesterday", "NaN", "Infinity", "2024-13-01"])
def test_bad_timestamps(text: str) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        ingest.parse_timestamp(text)


def test_range_limits() -> None:
    assert ingest.timestamp_problem(0) is None
    assert ingest.timestamp_problem(ingest.MAX_TIMESTAMP_US) is None
    assert ingest.timestamp_problem(-1) is not None
    assert ingest.timestamp_problem(ingest.MAX_TIMESTAMP_US + 1) is not None


def test_screen_keeps_good_points_and_numbers_rejections_from_first_index() -> None:
    screened = ingest.screen([T0, T0 + 1, -5], [1.0, float("-inf"), 2.0], first_index=100)
    assert screened.timestamps_us.tolist() == [T0] and screened.values.tolist() == [1.0]
    assert [(r.index, r.timestamp_us) for r in screened.rejections] == [(101, T0 + 1), (102, -5)]


def test_csv_header_is_optional_and_only_on_the_first_row() -> None:
    with_header = ingest.parse_csv(b"\xef\xbb\xbftime,value\r\n1714564800,1\r\n")
    without = ingest.parse_csv(b"1714564800,1\n")
    assert with_header.timestamps_us == without.timestamps_us == [T0]
    assert with_header.bad_lines == without.bad_lines == []
    late_header = ingest.parse_csv(b"1714564800,1\ntime,value\n")
    assert [line for line, _ in late_header.bad_lines] == [2]


def test_csv_reports_each_bad_line_once() -> None:
    parsed = ingest.parse_csv(b"1,1\n2\n3,x\n4,inf\n1e30,1\n\n5,5\n")
    assert parsed.timestamps_us == [1_000_000, 5_000_000] and parsed.values == [1.0, 5.0]
    assert [line for line, _ in parsed.bad_lines] == [2, 3, 4, 5]


def test_csv_must_be_utf8() -> None:
    with pytest.raises(ValueError, match="UTF-8"):
        ingest.parse_csv(b"\xff,1\n")
