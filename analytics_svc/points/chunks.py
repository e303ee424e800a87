"""Chunks of a dataset's points: where they are cut in time, how they are encoded,
summarised and bucketed. Pure numpy and pcodec, no I/O (``points.store`` keeps them).

A dataset's points live in time-ordered, non-overlapping chunks. Each chunk
covers a window ``[start_us, end_us)`` on a grid of widths from ``WIDTHS_US``,
holds its points' timestamps and values encoded with pcodec, and carries a
summary (count, first/last time and value, min, max, sum) that answers
aggregate queries over whole chunks without decoding them.

Why widths from a ladder that divide each other: a new chunk's window is
``[k * width, (k + 1) * width)`` counted from the epoch, and every width
divides the next, so every chunk edge, whatever width it was cut at, lies on
the grid of the narrowest width in use. A chart step that is a multiple of the
chunk width (a day of hour chunks, a week of day or week chunks) puts every
bucket edge on a chunk edge, and the summaries answer the whole chart.

Why these widths and how one is picked: per dataset, from the density of its
first batch, the widest width whose expected points per chunk stay at or
under ``TARGET_POINTS`` (32,768). Thousands to tens of thousands of points per
chunk is where pcodec reaches the noise floor (its per-chunk header is about
50 bytes) and decoding one chunk for a straddled bucket edge stays well under
a millisecond. Examples: one point a minute gets week chunks (10,080 points),
one a second gets 6-hour chunks (21,600), one an hour gets 364-day chunks
(8,736), one a day 3,640-day chunks (3,640). Data that turns out denser than
its width was picked for is cut narrower when a chunk grows past
``MAX_POINTS``, so a chunk's size stays bounded whatever arrives.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from pcodec import ChunkConfig, standalone

MS = 1_000
SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
# Each divides the next (the weeks' multiples too: 7 | 28 | 364 | 3640 ...).
WIDTHS_US = (
    MS, 10 * MS, 100 * MS, SECOND, 10 * SECOND, MINUTE, 10 * MINUTE, HOUR, 6 * HOUR, DAY, 7 * DAY,
    28 * DAY, 364 * DAY, 3_640 * DAY, 36_400 * DAY, 364_000 * DAY,
)  # fmt: skip
TARGET_POINTS = 32_768
MAX_POINTS = 4 * TARGET_POINTS
# The width of chunks written before a dataset's density is known (its first batches of one point).
DEFAULT_WIDTH_US = DAY

# pcodec levels (0-12, default 8): values at 6, within 0.2% of the default's
# size on noisy doubles and on values rounded to decimals, at a third of its
# encoding time; timestamps at 2, where regular ones cost ~0 and jittered ones
# half of what level 0 leaves, for a fraction of the values' time.
_VALUES_CONFIG = ChunkConfig(compression_level=6)
_TIMESTAMPS_CONFIG = ChunkConfig(compression_level=2)
# pcodec releases the GIL while it encodes: a write's chunks are encoded on
# every core (threads started on first use, shared by all writers).
_ENCODERS = ThreadPoolExecutor(min(4, os.cpu_count() or 1), thread_name_prefix="pcodec")


def width_for(timestamps_us: np.ndarray) -> int | None:
    """The chunk width for points as dense as these (sorted, distinct); None for fewer than two."""
    if timestamps_us.size < 2:
        return None
    return width_for_density(int(timestamps_us.size), int(timestamps_us[-1]) - int(timestamps_us[0]))


def width_for_density(count: int, span_us: int) -> int:
    """The widest width whose expected points per chunk, for ``count`` points over
    ``span_us``, stay at or under TARGET_POINTS."""
    per_us = (count - 1) / max(span_us, 1)
    for width in reversed(WIDTHS_US):
        if per_us * width <= TARGET_POINTS:
            return width
    return WIDTHS_US[0]


def encode(timestamps_us: np.ndarray, values: np.ndarray) -> tuple[bytes, bytes]:
    """A chunk's points as pcodec bytes: (timestamps, values)."""
    return (
        standalone.simple_compress(np.ascontiguousarray(timestamps_us, dtype=np.int64), _TIMESTAMPS_CONFIG),
        standalone.simple_compress(np.ascontiguousarray(values, dtype=np.float64), _VALUES_CONFIG),
    )


def decode_into(ts_data: bytes | memoryview, value_data: bytes | memoryview,
                timestamps_us: np.ndarray, values: np.ndarray) -> None:
    """Decode a chunk into the given arrays (exactly its point count long)."""
    # pcodec takes bytes only: a field of a COPY buffer is copied out first.
    standalone.simple_decompress_into(bytes(ts_data), timestamps_us)
    standalone.simple_decompress_into(bytes(value_data), values)


def decode(ts_data: bytes | memoryview, value_data: bytes | memoryview, count: int) -> tuple[np.ndarray, np.ndarray]:
    """A chunk's points as new arrays."""
    timestamps_us, values = np.empty(count, np.int64), np.empty(count, np.float64)
    decode_into(ts_data, value_data, timestamps_us, values)
    return timestamps_us, values


def last_occurrences(timestamps_us: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The batch with one point per timestamp, the later occurrence winning, sorted by time."""
    if timestamps_us.size > 1 and np.all(timestamps_us[1:] > timestamps_us[:-1]):
        return timestamps_us, values  # the common case: already sorted and distinct
    reversed_ts = timestamps_us[::-1]
    unique_ts, first_in_reversed = np.unique(reversed_ts, return_index=True)
    keep = len(timestamps_us) - 1 - first_in_reversed
    return unique_ts, values[keep]


def overwrite(old_ts: np.ndarray, old_values: np.ndarray, new_ts: np.ndarray, new_values: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, int]:
    """Sorted points of a chunk with new (sorted, distinct) points written over them,
    and how many old points the new ones replaced."""
    at = np.searchsorted(new_ts, old_ts)
    replaced = (at < new_ts.size) & (new_ts[np.minimum(at, new_ts.size - 1)] == old_ts)
    kept_ts, kept_values = old_ts[~replaced], old_values[~replaced]
    ts = np.concatenate([kept_ts, new_ts])
    order = np.argsort(ts, kind="stable")
    return ts[order], np.concatenate([kept_values, new_values])[order], int(replaced.sum())


def containing(timestamps_us: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For each timestamp, the index of the chunk window (sorted, disjoint) holding it, or -1."""
    if starts.size == 0:
        return np.full(timestamps_us.size, -1, np.int64)
    index = np.searchsorted(starts, timestamps_us, side="right") - 1
    inside = (index >= 0) & (timestamps_us < ends[np.maximum(index, 0)])
    return np.where(inside, index, -1)


def new_windows(timestamps_us: np.ndarray, width: int, starts: np.ndarray, ends: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows of new chunks for points (sorted) outside the existing chunk windows.

    A point's window is its ``width`` grid cell, clipped to the gap between the
    existing chunks around it (which may have been cut at another width), so
    new chunks never overlap old ones. Returns each window's first point's
    index into ``timestamps_us``, its start and its end.
    """
    if timestamps_us.size == 0:
        empty = np.empty(0, np.int64)
        return empty, empty, empty
    cell = timestamps_us // width
    after = np.searchsorted(starts, timestamps_us, side="right")  # chunks before each point
    boundary = np.flatnonzero((np.diff(cell) != 0) | (np.diff(after) != 0)) + 1
    first = np.concatenate([[0], boundary]).astype(np.int64)
    lo, hi = cell[first] * width, cell[first] * width + width
    before_index = after[first] - 1
    if starts.size:
        previous_end = np.where(before_index >= 0, ends[np.maximum(before_index, 0)], lo)
        next_start = np.where(after[first] < starts.size, starts[np.minimum(after[first], starts.size - 1)], hi)
        lo, hi = np.maximum(lo, previous_end), np.minimum(hi, next_start)
    return first, lo, hi


def split_window(timestamps_us: np.ndarray, start_us: int, end_us: int) -> tuple[int, list[tuple[int, int, int]]]:
    """A chunk of more than MAX_POINTS cut at the widest narrower grid width that leaves
    at most TARGET_POINTS per piece: that width, and (first point index, start, end) of each piece."""
    for width in reversed(WIDTHS_US):
        if width >= end_us - start_us and width != WIDTHS_US[0]:
            continue
        cell = timestamps_us // width
        first = np.concatenate([[0], np.flatnonzero(np.diff(cell)) + 1])
        sizes = np.diff(np.append(first, timestamps_us.size))
        if sizes.max() <= TARGET_POINTS or width == WIDTHS_US[0]:
            break
    return width, [
        (int(f), max(start_us, int(c) * width), min(end_us, int(c) * width + width))
        for f, c in zip(first.tolist(), cell[first].tolist(), strict=True)
    ]


@dataclass
class EncodedChunks:
    """Chunks ready to store: windows and summaries (parallel arrays), and the pcodec
    bytes of each chunk in the same order, yielded as the encoders finish them
    (consumed once: a binary COPY sends each row while the later ones are still encoding)."""

    start_us: np.ndarray
    end_us: np.ndarray
    count: np.ndarray
    first_us: np.ndarray
    last_us: np.ndarray
    first_value: np.ndarray
    last_value: np.ndarray
    min: np.ndarray
    max: np.ndarray
    sum: np.ndarray
    data: Iterator[tuple[bytes, bytes]]  # (timestamps, values) of each chunk


def encode_chunks(timestamps_us: np.ndarray, values: np.ndarray, first: np.ndarray,
                  start_us: np.ndarray, end_us: np.ndarray) -> EncodedChunks:
    """Encode sorted points cut at indexes ``first`` (one chunk each, with its window).

    The summaries are computed here; the encoding runs on the shared encoder
    threads (pcodec releases the GIL), all chunks submitted at once, and
    ``data`` yields each chunk's bytes in order as soon as they are ready.
    """
    stop = np.append(first[1:], timestamps_us.size)
    last = stop - 1
    bounds = list(zip(first.tolist(), stop.tolist(), strict=True))

    def one(ab: tuple[int, int]) -> tuple[bytes, bytes]:
        return encode(timestamps_us[ab[0] : ab[1]], values[ab[0] : ab[1]])

    data: Iterator[tuple[bytes, bytes]] = _ENCODERS.map(one, bounds) if len(bounds) > 1 else map(one, bounds)
    return EncodedChunks(
        start_us=np.asarray(start_us, np.int64),
        end_us=np.asarray(end_us, np.int64),
        count=(stop - first).astype(np.int64),
        first_us=timestamps_us[first],
        last_us=timestamps_us[last],
        first_value=values[first],
        last_value=values[last],
        min=np.minimum.reduceat(values, first),
        max=np.maximum.reduceat(values, first),
        sum=np.add.reduceat(values, first),
        data=data,
    )


# Sorted points of one chunk and its window [start_us, end_us).
Piece = tuple[np.ndarray, np.ndarray, int, int]


def encode_pieces(pieces: list[Piece]) -> tuple[EncodedChunks, int | None]:
    """Chunks of time-disjoint pieces, in time order, each over MAX_POINTS cut
    narrower first; and the narrowest width such a cut used (None if none)."""
    result: list[Piece] = []
    narrowest: int | None = None
    for ts, vals, start, end in pieces:
        if ts.size <= MAX_POINTS:
            result.append((ts, vals, start, end))
            continue
        width, cuts = split_window(ts, start, end)
        narrowest = width if narrowest is None else min(narrowest, width)
        stops = [cut[0] for cut in cuts[1:]] + [ts.size]
        for (a, lo, hi), b in zip(cuts, stops, strict=True):
            result.append((ts[a:b], vals[a:b], lo, hi))
    result.sort(key=lambda piece: piece[2])
    offsets = np.cumsum([0] + [piece[0].size for piece in result[:-1]]).astype(np.int64)
    encoded = encode_chunks(
        np.concatenate([piece[0] for piece in result]),
        np.concatenate([piece[1] for piece in result]),
        offsets,
        np.array([piece[2] for piece in result], np.int64),
        np.array([piece[3] for piece in result], np.int64),
    )
    return encoded, narrowest


@dataclass(frozen=True)
class Buckets:
    """Aggregates of the non-empty buckets of a range, in time order (parallel arrays)."""

    start_us: np.ndarray  # int64, each bucket's start: origin_us + k * step_us
    count: np.ndarray  # int64
    min: np.ndarray  # float64
    max: np.ndarray
    sum: np.ndarray
    first: np.ndarray  # value at the earliest timestamp in the bucket
    last: np.ndarray  # value at the latest timestamp in the bucket


@dataclass
class Partials:
    """Partial aggregates of time-disjoint pieces of a series, each within one bucket."""

    bucket: np.ndarray  # int64 bucket number k
    first_us: np.ndarray  # the piece's earliest timestamp (orders the pieces)
    count: np.ndarray
    min: np.ndarray
    max: np.ndarray
    sum: np.ndarray
    first: np.ndarray
    last: np.ndarray


def bucket_numbers(timestamps_us: np.ndarray, step_us: int, origin_us: int) -> np.ndarray:
    """Bucket k of each timestamp: origin + k * step <= t < origin + (k + 1) * step."""
    return (timestamps_us - np.int64(origin_us)) // np.int64(step_us)


def partials_of_points(timestamps_us: np.ndarray, values: np.ndarray, step_us: int, origin_us: int) -> Partials:
    """Per-bucket aggregates of sorted points."""
    bucket = bucket_numbers(timestamps_us, step_us, origin_us)
    if bucket.size == 0:
        first = np.empty(0, np.int64)
    else:
        first = np.concatenate([[0], np.flatnonzero(np.diff(bucket)) + 1]).astype(np.int64)
    last = np.append(first[1:], bucket.size) - 1
    if first.size == 0:
        empty_f = np.empty(0, np.float64)
        return Partials(first, first, first, empty_f, empty_f, empty_f, empty_f, empty_f)
    return Partials(
        bucket=bucket[first],
        first_us=timestamps_us[first],
        count=last - first + 1,
        min=np.minimum.reduceat(values, first),
        max=np.maximum.reduceat(values, first),
        sum=np.add.reduceat(values, first),
        first=values[first],
        last=values[last],
    )


def combine(parts: list[Partials], step_us: int, origin_us: int) -> Buckets:
    """Buckets from time-disjoint partial aggregates (whole-chunk summaries and decoded pieces)."""
    if parts:
        names = Partials.__dataclass_fields__
        joined = Partials(*(np.concatenate([getattr(p, name) for p in parts]) for name in names))
    else:
        joined = partials_of_points(np.empty(0, np.int64), np.empty(0, np.float64), step_us, origin_us)
    order = np.argsort(joined.first_us, kind="stable")
    bucket = joined.bucket[order]
    if bucket.size == 0:
        first = np.empty(0, np.int64)
    else:
        first = np.concatenate([[0], np.flatnonzero(np.diff(bucket)) + 1]).astype(np.int64)
    last = np.append(first[1:], bucket.size) - 1
    if first.size == 0:
        empty_f = np.empty(0, np.float64)
        return Buckets(first, first, empty_f, empty_f, empty_f, empty_f, empty_f)
    return Buckets(
        start_us=np.int64(origin_us) + bucket[first] * np.int64(step_us),
        count=np.add.reduceat(joined.count[order], first),
        min=np.minimum.reduceat(joined.min[order], first),
        max=np.maximum.reduceat(joined.max[order], first),
        sum=np.add.reduceat(joined.sum[order], first),
        first=joined.first[order][first],
        last=joined.last[order][last],
    )
