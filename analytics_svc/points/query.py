"""Reading points back: the range and bucket grid of a query and their limits. Pure functions.

A query reads a half-open range ``[start_us, end_us)`` of epoch microseconds.
With a step, the range is cut by a grid of buckets ``[origin + k*step,
origin + (k+1)*step)``; a query may span at most ``MAX_BUCKETS`` of them (over
all its datasets), so its answer stays small whatever the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mesh_runtime.errors import FieldViolation, InvalidArgument
from mesh_runtime.wire import MAX_TIMESTAMP_US, MIN_TIMESTAMP_US

MAX_BUCKETS = 10_000
# Raw points per page when the request does not say (its page_size is capped by the proto).
DEFAULT_PAGE_POINTS = 10_000
# The whole range a stored point can lie in.
ALL_TIME = (MIN_TIMESTAMP_US, MAX_TIMESTAMP_US + 1)


@dataclass(frozen=True)
class TimeRange:
    """A half-open range of epoch microseconds, ``[start_us, end_us)``."""

    start_us: int
    end_us: int


def invalid(field: str, description: str) -> InvalidArgument:
    """INVALID_ARGUMENT with one field violation."""
    return InvalidArgument(f"{field}: {description}", violations=[FieldViolation(field, description)])


def range_to_read(
    start_us: int | None, end_us: int | None, spans: list[tuple[int | None, int | None]]
) -> TimeRange | None:
    """The range a query reads: its own ends where given, else the ends of the
    data (``spans``: each dataset's first and last point time, None when it is
    empty). None when that range holds no point."""
    firsts = [first for first, _ in spans if first is not None]
    lasts = [last for _, last in spans if last is not None]
    if not firsts:
        return None
    start = start_us if start_us is not None else min(firsts)
    end = end_us if end_us is not None else max(lasts) + 1
    if start >= end:
        return None
    return TimeRange(start, end)


def step_us(seconds: int, nanos: int, field: str = "step") -> int:
    """A bucket length in microseconds; INVALID_ARGUMENT unless it is a whole number of them."""
    if nanos % 1000:
        raise invalid(field, "must be a whole number of microseconds")
    return seconds * 1_000_000 + nanos // 1000


def bucket_index(timestamp_us: int, step: int, origin_us: int) -> int:
    """Which bucket of the grid holds ``timestamp_us`` (negative before the origin)."""
    return (timestamp_us - origin_us) // step


def bucket_count(window: TimeRange, step: int, origin_us: int) -> int:
    """How many buckets of the grid ``window`` touches."""
    return bucket_index(window.end_us - 1, step, origin_us) - bucket_index(window.start_us, step, origin_us) + 1


def check_bucket_count(window: TimeRange, step: int, origin_us: int, datasets: int = 1) -> None:
    """INVALID_ARGUMENT (on ``step``) when the query would answer more than MAX_BUCKETS buckets."""
    count = bucket_count(window, step, origin_us) * datasets
    if count > MAX_BUCKETS:
        per = f" ({datasets} datasets)" if datasets > 1 else ""
        raise invalid(
            "step",
            f"the range spans {count:,} buckets of this step{per}, more than the {MAX_BUCKETS:,} a query may "
            "answer; use a longer step or a shorter range",
        )


def mean(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each bucket's mean from its sum and (non-zero) count."""
    return np.asarray(sums, dtype=np.float64) / np.asarray(counts, dtype=np.float64)
