"""Screening incoming points and parsing CSV uploads: pure functions, no I/O.

Every way in (AppendPoints, IngestPoints, ImportCsv) screens its points here
and then stores the accepted ones with ``store.append_points``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import numpy as np

# Timestamps are epoch microseconds; the accepted range is what numpy's
# datetime64[ns] (used by the analyses) can hold, from the epoch on.
MIN_TIMESTAMP_US = 0
MAX_TIMESTAMP_US = np.iinfo(np.int64).max // 1000
# Responses list at most this many rejections; the counts cover all of them.
MAX_REPORTED_REJECTIONS = 1000

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class Rejection:
    """A point that was not stored: its position in the input and why."""

    index: int
    timestamp_us: int
    reason: str


@dataclass
class Screened:
    """Points split into those to store and those rejected."""

    timestamps_us: np.ndarray
    values: np.ndarray
    rejections: list[Rejection] = field(default_factory=list)


def timestamp_problem(timestamp_us: int) -> str | None:
    """Why a timestamp cannot be stored, or None when it can."""
    if timestamp_us < MIN_TIMESTAMP_US:
        return "timestamp is before 1970-01-01T00:00:00Z"
    if timestamp_us > MAX_TIMESTAMP_US:
        return "timestamp is after 2262-04-11T23:47:16.854775Z"
    return None


def screen(timestamps_us: np.ndarray | list[int], values: np.ndarray | list[float], first_index: int = 0) -> Screened:
    """Keep points with finite values and timestamps in range; reject the rest with reasons.

    Rejection indexes start at ``first_index`` (the position of the first point
    in a longer stream).
    """
    ts = np.asarray(timestamps_us, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(vals)
    in_range = (ts >= MIN_TIMESTAMP_US) & (ts <= MAX_TIMESTAMP_US)
    ok = finite & in_range
    rejections = []
    for i in np.flatnonzero(~ok).tolist():
        stamp = int(ts[i])
        reason = timestamp_problem(stamp) or "value is not finite (NaN or infinity)"
        rejections.append(Rejection(first_index + i, stamp, reason))
    return Screened(ts[ok], vals[ok], rejections)


def parse_timestamp(text: str) -> int:
    """Epoch microseconds from ISO-8601 (naive = UTC) or epoch seconds; ValueError if neither."""
    text = text.strip()
    if not text:
        raise ValueError("timestamp is empty")
    try:
        seconds = Decimal(text)
    except InvalidOperation:
        seconds = None
    if seconds is not None:
        if not seconds.is_finite():
            raise ValueError(f"timestamp {text!r} is not a finite number")
        return int((seconds * 1_000_000).to_integral_value())
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"timestamp {text!r} is neither ISO-8601 nor epoch seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment - _EPOCH) // _MICROSECOND


@dataclass
class ParsedCsv:
    """Rows of a CSV upload: the points to store, and the bad lines with reasons."""

    timestamps_us: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    bad_lines: list[tuple[int, str]] = field(default_factory=list)


def _is_header(row: list[str]) -> bool:
    if len(row) != 2:
        return False
    try:
        float(row[1])
    except ValueError:
        return True
    return False


def parse_csv(data: bytes) -> ParsedCsv:
    """Parse "timestamp,value" rows; the first row may be a header; blank lines are skipped.

    Rows with a non-finite value or a timestamp out of range are bad lines too,
    so the points returned need no further screening. ValueError if the data
    is not UTF-8 text. Each bad row lands in ``bad_lines`` as (line number
    from 1, reason).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"csv is not UTF-8 text (byte {exc.start})") from None
    parsed = ParsedCsv()
    reader = csv.reader(io.StringIO(text, newline=""))
    first = True
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if first:
                first = False
                if _is_header(row):
                    continue
            if len(row) != 2:
                parsed.bad_lines.append((line, f"expected 2 fields (timestamp,value), got {len(row)}"))
                continue
            try:
                stamp = parse_timestamp(row[0])
            except ValueError as exc:
                parsed.bad_lines.append((line, str(exc)))
                continue
            problem = timestamp_problem(stamp)
            if problem is not None:
                parsed.bad_lines.append((line, problem))
                continue
            try:
                value = float(row[1])
            except ValueError:
                parsed.bad_lines.append((line, f"value {row[1].strip()!r} is not a number"))
                continue
            if not math.isfinite(value):
                parsed.bad_lines.append((line, "value is not finite (NaN or infinity)"))
                continue
            parsed.timestamps_us.append(stamp)
            parsed.values.append(value)
    except csv.Error as exc:
        parsed.bad_lines.append((reader.line_num, f"malformed CSV: {exc}"))
    return parsed

