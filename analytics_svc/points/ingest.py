"""Screening incoming points and parsing CSV uploads: pure functions, no I/O.

Every way in (AppendPoints, IngestPoints, ImportCsv) screens its points here
and then stores the accepted ones with ``store.append_points``.

Every step costs time in proportion to its input's length, never to the size
of a number it spells: ``1e999999`` is a rejection in microseconds, not a
ten-second exponentiation.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import math
import re
from dataclasses import dataclass, field

import numpy as np

from mesh_runtime.wire import MAX_TIMESTAMP_US, MIN_TIMESTAMP_US, TIMESTAMP_RANGE

__all__ = ["MAX_TIMESTAMP_US", "MIN_TIMESTAMP_US", "TIMESTAMP_RANGE"]

# Responses list at most this many rejections; the counts cover all of them.
MAX_REPORTED_REJECTIONS = 1000
# No valid timestamp or value is longer; longer fields are refused unread.
MAX_FIELD_CHARS = 64
# How much of a bad field a rejection reason quotes.
_QUOTED_CHARS = 40

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_OUT_OF_RANGE = f"timestamp is outside {TIMESTAMP_RANGE}"
# The number grammar of CSV readers and JSON, ASCII digits only: no "1_000",
# no Arabic-Indic or full-width digits, no hexadecimal (Python's int/float
# take the first three).
_NUMBER = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?")
_NOT_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_FIELD_SPACE = " \t"
# Byte-order marks, longest first (UTF-32's starts like UTF-16's).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)


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
    if MIN_TIMESTAMP_US <= timestamp_us <= MAX_TIMESTAMP_US:
        return None
    return _OUT_OF_RANGE


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


def _quoted(text: str) -> str:
    return repr(text if len(text) <= _QUOTED_CHARS else text[:_QUOTED_CHARS] + "…")


def _epoch_seconds_us(match: re.Match[str]) -> int:
    """Epoch microseconds of a number of seconds, rounded half to even, by integer arithmetic.

    The exponent is looked at before any power is computed, so a number far
    outside the range costs no more than one in it.
    """
    sign, whole, fraction, exponent = match.groups()
    if fraction is None and exponent is None and len(whole) <= 12:  # the usual "1714564800"
        return -int(whole) * 1_000_000 if sign == "-" else int(whole) * 1_000_000
    fraction = fraction or ""
    digits = (whole + fraction).lstrip("0")
    if not digits:
        return 0
    shift = int(exponent or "0") - len(fraction) + 6  # value in µs = digits * 10**shift
    magnitude = len(digits) + shift  # 10**(magnitude-1) <= |value| < 10**magnitude
    if magnitude > 19:  # past 10**18 µs, four times the largest timestamp
        raise ValueError(_OUT_OF_RANGE)
    if magnitude < -1:  # under 0.01 µs: rounds to zero
        return 0
    if shift >= 0:
        micros = int(digits) * 10**shift
    else:
        quotient, remainder = divmod(int(digits), 10**-shift)
        half = 5 * 10 ** (-shift - 1)
        if remainder > half or (remainder == half and quotient % 2):
            quotient += 1
        micros = quotient
    return -micros if sign == "-" else micros


def parse_timestamp(text: str) -> int:
    """Epoch microseconds from ISO-8601 (naive = UTC) or epoch seconds.

    ValueError, with the reason, for anything else and for a time outside
    ``TIMESTAMP_RANGE``.
    """
    text = text.strip(_FIELD_SPACE)
    if not text:
        raise ValueError("timestamp is empty")
    if len(text) > MAX_FIELD_CHARS:
        raise ValueError(f"timestamp is longer than {MAX_FIELD_CHARS} characters")
    number = _NUMBER.fullmatch(text)
    if number is not None and (number.group(2) or number.group(3)):
        micros = _epoch_seconds_us(number)
    else:
        if not text.isascii() or not text[:1].isdigit():
            raise ValueError(f"timestamp {_quoted(text)} is neither ISO-8601 nor epoch seconds")
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"timestamp {_quoted(text)} is neither ISO-8601 nor epoch seconds") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        try:
            micros = (moment - _EPOCH) // _MICROSECOND
        except OverflowError:  # an offset moves it past year 1 or 9999
            raise ValueError(_OUT_OF_RANGE) from None
    problem = timestamp_problem(micros)
    if problem is not None:
        raise ValueError(problem)
    return micros


def parse_value(text: str) -> float:
    """A finite float from an ASCII decimal number; ValueError with the reason otherwise."""
    text = text.strip(_FIELD_SPACE)
    if not text:
        raise ValueError("value is empty")
    number = _NUMBER.fullmatch(text)
    if number is None or not (number.group(2) or number.group(3)):
        if _NOT_FINITE.fullmatch(text):
            raise ValueError("value is not finite (NaN or infinity)")
        raise ValueError(f"value {_quoted(text)} is not a number")
    value = float(text)  # linear in the text's length, whatever its exponent
    if not math.isfinite(value):
        raise ValueError("value is not finite (NaN or infinity)")
    return value


@dataclass
class ParsedCsv:
    """Rows of a CSV upload: the points to store, the bad lines with reasons,
    and the first line when it was a header (else empty)."""

    timestamps_us: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    header: str = ""


def decode_csv(data: bytes) -> str:
    """The text of a CSV upload: UTF-8, or any UTF-8/16/32 marked by a byte-order mark.

    ValueError, with what to do, for anything else.
    """
    for bom, encoding, name in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding)
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"csv starts with a {name} byte-order mark but is not {name} text (byte {exc.start + len(bom)})"
                ) from None
    if data.count(0) * 3 > len(data):
        raise ValueError("csv looks like UTF-16 or UTF-32 without a byte-order mark: save it as UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"csv is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None


def _lines(text: str) -> list[str]:
    """Physical lines, ended by LF, CRLF or (when the text has no LF) CR."""
    if "\n" in text:
        lines = text.split("\n")
        return [line[:-1] if line.endswith("\r") else line for line in lines]
    return text.split("\r")


def _fields(line: str) -> list[str]:
    """The fields of one line; csv.Error for a quote left open.

    Each line is read on its own: a timestamp or a number never holds a line
    break, so a quote left open spoils its own line and not the rest of the file.
    """
    if '"' not in line:
        return line.split(",")
    return next(csv.reader([line], strict=True))


def _is_header(fields: list[str]) -> bool:
    """A first line of two names ("time,value"), not data nor a broken data line.

    Only names start with a letter: a timestamp or a number never does, and
    "0x10", "" or "-" are data gone wrong, reported as such.
    """
    return len(fields) == 2 and all(f.strip(_FIELD_SPACE)[:1].isalpha() for f in fields)


def parse_csv(data: bytes) -> ParsedCsv:
    """Parse "timestamp,value" lines; the first may be a header; blank lines are skipped.

    Every other line that stores nothing lands in ``bad_lines`` as (line
    number from 1, reason): a wrong field count, a quote left open, a
    timestamp or value that is not one, out of range or not finite. So the
    points returned need no further screening. ValueError if the data is not
    text (see ``decode_csv``).
    """
    parsed = ParsedCsv()
    first = True
    for number, line in enumerate(_lines(decode_csv(data)), start=1):
        if not line.strip():
            continue
        try:
            fields = _fields(line)
        except csv.Error as exc:
            parsed.bad_lines.append((number, f"malformed CSV: {exc}"))
            first = False
            continue
        if first:
            first = False
            if _is_header(fields):
                parsed.header = line
                continue
        if len(fields) != 2:
            parsed.bad_lines.append((number, f"expected 2 fields (timestamp,value), got {len(fields)}"))
            continue
        try:
            stamp = parse_timestamp(fields[0])
            value = parse_value(fields[1])
        except ValueError as exc:
            parsed.bad_lines.append((number, str(exc)))
            continue
        parsed.timestamps_us.append(stamp)
        parsed.values.append(value)
    return parsed
