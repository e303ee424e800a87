"""The range and bucket grid of a point query (analytics_svc.points.query): pure rules."""

from __future__ import annotations

import pytest

from analytics_svc.points import query
from mesh_runtime.errors import InvalidArgument

DAY = 86_400_000_000


def test_buckets_are_counted_on_the_grid_before_and_after_the_origin() -> None:
    # [-1 day, +1 day) in days from the epoch: two buckets; one more for a range one µs longer.
    assert query.bucket_count(query.TimeRange(-DAY, DAY), DAY, 0) == 2
    assert query.bucket_count(query.TimeRange(-DAY, DAY + 1), DAY, 0) == 3
    # A range inside one bucket, and a grid moved by its origin.
    assert query.bucket_count(query.TimeRange(5, 6), DAY, 0) == 1
    assert query.bucket_count(query.TimeRange(0, DAY), DAY, DAY // 2) == 2
    assert query.bucket_index(-1, DAY, 0) == -1


def test_the_cap_counts_every_dataset() -> None:
    window = query.TimeRange(0, 5_000 * DAY)
    query.check_bucket_count(window, DAY, 0, datasets=2)
    with pytest.raises(InvalidArgument) as caught:
        query.check_bucket_count(window, DAY, 0, datasets=3)
    assert "15,000 buckets" in caught.value.message and "(3 datasets)" in caught.value.message


def test_open_ends_come_from_the_data() -> None:
    spans = [(10, 20), (None, None), (5, 15)]
    assert query.range_to_read(None, None, spans) == query.TimeRange(5, 21)
    assert query.range_to_read(12, None, spans) == query.TimeRange(12, 21)
    assert query.range_to_read(None, 3, spans) is None  # nothing before the first point
    assert query.range_to_read(None, None, [(None, None)]) is None


def test_a_step_is_whole_microseconds() -> None:
    assert query.step_us(60, 0) == 60_000_000
    assert query.step_us(0, 1000) == 1
    with pytest.raises(InvalidArgument):
        query.step_us(0, 1500)
