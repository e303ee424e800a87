"""Unit tests of the chunk layout, codec, bucketing and binary COPY rows (no database)."""

from __future__ import annotations

import struct
import uuid

import numpy as np
import pytest

from analytics_svc.points import chunks as ch
from analytics_svc.points import pgcopy

MIN_US = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
MAX_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z


def test_widths_divide_each_other_so_every_chunk_edge_is_on_the_narrowest_grid() -> None:
    for narrower, wider in zip(ch.WIDTHS_US, ch.WIDTHS_US[1:], strict=False):
        assert wider % narrower == 0 and wider > narrower
    # The chart steps people use are multiples of some width.
    for step in (ch.MINUTE, 5 * ch.MINUTE, ch.HOUR, ch.DAY, 7 * ch.DAY):
        assert any(step % width == 0 and width >= step // 10 for width in ch.WIDTHS_US)


@pytest.mark.parametrize(
    ("spacing", "width"),
    [(ch.MINUTE, 7 * ch.DAY), (ch.SECOND, 6 * ch.HOUR), (ch.HOUR, 364 * ch.DAY), (ch.DAY, 3_640 * ch.DAY),
     (1, 10 * ch.MS)],
)  # fmt: skip
def test_width_follows_density_aiming_at_thousands_of_points(spacing: int, width: int) -> None:
    ts = -10**15 + np.arange(50_000, dtype=np.int64) * spacing
    assert ch.width_for(ts) == width
    assert 1_000 <= width // spacing <= ch.TARGET_POINTS


def test_no_width_from_a_single_point() -> None:
    assert ch.width_for(np.array([5], np.int64)) is None


def test_encoding_round_trips_every_double_and_the_whole_timestamp_range() -> None:
    rng = np.random.default_rng(1)
    ts = np.sort(np.concatenate([[MIN_US, MIN_US + 1, -1, 0, MAX_US - 1, MAX_US], rng.integers(MIN_US, MAX_US, 994)]))
    values = rng.normal(0, 1e9, ts.size)
    values[:4] = [-0.0, 5e-324, -1.7976931348623157e308, 1.7976931348623157e308]
    ts_data, value_data = ch.encode(ts, values)
    got_ts, got_values = ch.decode(ts_data, value_data, ts.size)
    np.testing.assert_array_equal(got_ts, ts)
    assert got_values.tobytes() == values.tobytes()  # bit for bit, -0.0 included


def test_regular_and_rounded_series_encode_near_the_noise_floor() -> None:
    ts = 1_700_000_000_000_000 + np.arange(10_080, dtype=np.int64) * ch.MINUTE
    values = np.round(np.random.default_rng(2).normal(20, 1, ts.size), 3)
    ts_data, value_data = ch.encode(ts, values)
    assert len(ts_data) < 100  # start + constant delta
    assert len(value_data) / ts.size < 2.0


def test_last_occurrence_wins_within_a_batch() -> None:
    ts, values = ch.last_occurrences(np.array([5, 3, 5, 1, 3]), np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert ts.tolist() == [1, 3, 5] and values.tolist() == [4.0, 5.0, 3.0]


def test_overwrite_replaces_old_values_and_counts_them() -> None:
    ts, values, replaced = ch.overwrite(
        np.array([1, 3, 5, 7]), np.array([1.0, 3.0, 5.0, 7.0]), np.array([0, 3, 7, 9]), np.array([0.5, 30.0, 70.0, 9.0])
    )
    assert ts.tolist() == [0, 1, 3, 5, 7, 9] and values.tolist() == [0.5, 1.0, 30.0, 5.0, 70.0, 9.0]
    assert replaced == 2


def test_new_windows_are_grid_cells_clipped_to_the_gaps_between_existing_chunks() -> None:
    width = 100
    starts, ends = np.array([-200, 120, 300]), np.array([-100, 150, 400])
    ts = np.array([-250, -99, 5, 99, 100, 110, 150, 199, 450, 10**6], dtype=np.int64)
    assert (ch.containing(ts, starts, ends) == -1).all()
    assert ch.containing(np.array([-200, -101, 120, 149, 399]), starts, ends).tolist() == [0, 0, 1, 1, 2]
    first, lo, hi = ch.new_windows(ts, width, starts, ends)
    windows = list(zip(first.tolist(), lo.tolist(), hi.tolist(), strict=True))
    assert windows == [(0, -300, -200), (1, -100, 0), (2, 0, 100), (4, 100, 120), (6, 150, 200), (8, 400, 500),
                       (9, 10**6, 10**6 + 100)]  # fmt: skip
    stops = [*first[1:].tolist(), ts.size]
    for (a, start, end), b in zip(windows, stops, strict=True):
        assert (ts[a:b] >= start).all() and (ts[a:b] < end).all()


def test_an_oversized_chunk_is_cut_at_a_narrower_width_into_bounded_pieces() -> None:
    ts = np.arange(0, 200_000, dtype=np.int64) * 1000  # a point a millisecond in one week-wide window
    width, cuts = ch.split_window(ts, 0, 7 * ch.DAY)
    assert width < 7 * ch.DAY and width in ch.WIDTHS_US
    stops = [c[0] for c in cuts[1:]] + [ts.size]
    assert all(b - a <= ch.TARGET_POINTS for (a, _, _), b in zip(cuts, stops, strict=True))
    assert all(lo % width == 0 and ts[a] >= lo for a, lo, _ in cuts)
    encoded, narrowest = ch.encode_pieces([(ts, np.ones(ts.size), 0, 7 * ch.DAY)])
    assert narrowest == width and int(encoded.count.sum()) == ts.size and encoded.count.max() <= ch.TARGET_POINTS
    assert (encoded.start_us[1:] >= encoded.end_us[:-1]).all()


def test_chunk_summaries_describe_their_points() -> None:
    ts = np.array([-5, -2, 3, 10, 11], np.int64)
    values = np.array([2.0, -1.0, 4.0, 0.5, 8.0])
    encoded = ch.encode_chunks(ts, values, np.array([0, 3]), np.array([-10, 10]), np.array([10, 20]))
    assert encoded.count.tolist() == [3, 2]
    assert encoded.first_us.tolist() == [-5, 10] and encoded.last_us.tolist() == [3, 11]
    assert encoded.min.tolist() == [-1.0, 0.5] and encoded.max.tolist() == [4.0, 8.0]
    assert encoded.sum.tolist() == [5.0, 8.5]
    assert encoded.first_value.tolist() == [2.0, 0.5] and encoded.last_value.tolist() == [4.0, 8.0]


def _numpy_buckets(ts: np.ndarray, values: np.ndarray, step: int, origin: int) -> dict[int, tuple[float, ...]]:
    """Per-bucket aggregates the plain way: a mask per bucket."""
    out: dict[int, tuple[float, ...]] = {}
    for k in np.unique((ts - origin) // step).tolist():
        mask = (ts - origin) // step == k
        v = values[mask]
        out[origin + k * step] = (mask.sum(), v.min(), v.max(), v.sum(), v[0], v[-1])
    return out


@pytest.mark.parametrize("origin", [0, 7, -1_000_003])
def test_buckets_from_summaries_and_decoded_pieces_match_numpy(origin: int) -> None:
    rng = np.random.default_rng(origin & 0xFFFF)
    ts = np.sort(rng.choice(np.arange(-50_000, 50_000), 5_000, replace=False)).astype(np.int64)
    values = rng.normal(0, 10, ts.size)
    step = 1_000
    # Some pieces given as summaries (each within one bucket), the rest as points.
    cells = (ts - origin) // step
    parts = []
    for k in np.unique(cells).tolist():
        idx = np.flatnonzero(cells == k)
        if k % 3 == 0:
            v = values[idx]
            parts.append(ch.Partials(np.array([k]), ts[idx[:1]], np.array([idx.size]), v.min(keepdims=True),
                                     v.max(keepdims=True), v.sum(keepdims=True), v[:1], v[-1:]))  # fmt: skip
        elif k % 3 == 1:
            half = idx.size // 2
            parts.append(ch.partials_of_points(ts[idx[:half]], values[idx[:half]], step, origin))
            parts.append(ch.partials_of_points(ts[idx[half:]], values[idx[half:]], step, origin))
        else:
            parts.append(ch.partials_of_points(ts[idx], values[idx], step, origin))
    rng.shuffle(parts)  # order of arrival does not matter
    got = ch.combine(parts, step, origin)
    want = _numpy_buckets(ts, values, step, origin)
    assert got.start_us.tolist() == sorted(want)
    for i, start in enumerate(got.start_us.tolist()):
        count, low, high, total, first, last = want[start]
        assert (got.count[i], got.min[i], got.max[i], got.first[i], got.last[i]) == (count, low, high, first, last)
        assert got.sum[i] == pytest.approx(total, rel=1e-12, abs=1e-9)
    empty = ch.combine([], step, origin)
    assert empty.start_us.size == 0 and empty.count.dtype == np.int64


def test_chunk_rows_parse_back_however_copy_cuts_its_messages() -> None:
    ts = np.array([MIN_US, -1, MAX_US], np.int64)
    encoded = ch.encode_chunks(ts, np.array([1.5, -0.0, 3.0]), np.array([0, 1]), np.array([MIN_US, -1000]),
                               np.array([-1000, MAX_US + 1]))  # fmt: skip
    key = uuid.uuid4()
    data = pgcopy.chunk_rows(key, encoded)
    for cut in (len(data), 3, 40, len(data) - 1):
        messages = [data[:cut], data[cut:]] if cut < len(data) else [data]
        rows = list(pgcopy.rows(pgcopy.joined(messages)))
        assert len(rows) == 2 and all(len(row) == 13 for row in rows)
        assert bytes(rows[0][0] or b"") == key.bytes
        assert [struct.unpack(">q", bytes(row[1] or b""))[0] for row in rows] == [MIN_US, -1000]
        got = ch.decode(rows[1][11] or b"", rows[1][12] or b"", 2)
        assert got[0].tolist() == [-1, MAX_US] and got[1].tolist() == [-0.0, 3.0]


def test_a_torn_or_foreign_copy_is_an_error_not_garbage() -> None:
    encoded = ch.encode_chunks(np.array([1], np.int64), np.array([1.0]), np.array([0]), np.array([0]), np.array([9]))
    data = pgcopy.chunk_rows(uuid.uuid4(), encoded)
    for bad in (data[:-3], data[:-2], data + b"x", b"COPY" + data[4:]):
        with pytest.raises(RuntimeError):
            list(pgcopy.rows(memoryview(bad)))
    nulls = pgcopy.HEADER + struct.pack(">hi", 1, -1) + pgcopy.TRAILER
    assert list(pgcopy.rows(memoryview(nulls))) == [[None]]
