"""PostgreSQL's binary COPY format: rows of chunk bytes in and out without hex text.

The format: a 19-byte header, then per row a 16-bit field count and per field
a 32-bit length (-1 for NULL) and the value in the type's binary send format
(network byte order), then a 16-bit -1 trailer. Chunk rows are few (one per
thousands of points), so a loop per row and field is cheap; the points inside
are pcodec bytes, handled by numpy.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from analytics_svc.points.chunks import EncodedChunks

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
TRAILER = b"\xff\xff"
_FIELD_COUNT = struct.Struct(">h")
_LENGTH = struct.Struct(">i")


@dataclass
class Appender:
    """A file for psycopg2's copy_expert that keeps each message it writes (not copied again)."""

    messages: list[bytes]

    def write(self, data: bytes) -> None:
        self.messages.append(data)


def joined(messages: list[bytes]) -> memoryview:
    """The COPY output as one buffer (the messages themselves when there is one)."""
    return memoryview(messages[0] if len(messages) == 1 else b"".join(messages))


def rows(data: memoryview) -> Iterator[list[memoryview | None]]:
    """The rows of a binary COPY output, each a list of its fields' bytes (None for NULL).

    RuntimeError if the data is not a whole, well-formed binary COPY.
    """
    if bytes(data[: len(HEADER) - 8]) != HEADER[:-8] or len(data) < len(HEADER) + len(TRAILER):
        raise RuntimeError("not a binary COPY: bad header")
    at = len(HEADER) + _LENGTH.unpack_from(data, len(HEADER) - 4)[0]  # skip the header extension
    end = len(data)
    while True:
        if at + 2 > end:
            raise RuntimeError("binary COPY cut short before its trailer")
        (fields,) = _FIELD_COUNT.unpack_from(data, at)
        at += 2
        if fields == -1:
            if at != end:
                raise RuntimeError("binary COPY has data after its trailer")
            return
        row: list[memoryview | None] = []
        for _ in range(fields):
            if at + 4 > end:
                raise RuntimeError("binary COPY cut short inside a row")
            (length,) = _LENGTH.unpack_from(data, at)
            at += 4
            if length < 0:
                row.append(None)
                continue
            if at + length > end:
                raise RuntimeError("binary COPY cut short inside a field")
            row.append(data[at : at + length])
            at += length
        yield row


# The columns of a point_chunk row, in the order chunk_rows writes them.
CHUNK_COLUMNS = (
    "dataset_id, start_us, end_us, point_count, first_us, last_us, first_value, last_value,"
    " min_value, max_value, value_sum, ts_data, value_data"
)
# A chunk row up to its two bytea fields: the field count, then (length, value)
# of the uuid, two bigints, an integer, two bigints and five doubles.
_CHUNK_HEAD = struct.Struct(">h i16s iq iq ii iq iq id id id id id")


def chunk_row_parts(dataset_id: uuid.UUID, encoded: EncodedChunks) -> Iterator[bytes]:
    """A binary COPY of point_chunk rows (CHUNK_COLUMNS) of one dataset, one row a
    part (the header and trailer with the first and last), as the chunks' bytes arrive."""
    dataset = dataset_id.bytes
    columns = zip(
        encoded.start_us.tolist(), encoded.end_us.tolist(), encoded.count.tolist(), encoded.first_us.tolist(),
        encoded.last_us.tolist(), encoded.first_value.tolist(), encoded.last_value.tolist(), encoded.min.tolist(),
        encoded.max.tolist(), encoded.sum.tolist(), encoded.data, strict=True,
    )  # fmt: skip
    prefix = HEADER
    for start, end, count, first, last, first_value, last_value, low, high, total, (ts_data, value_data) in columns:
        yield b"".join((
            prefix,
            _CHUNK_HEAD.pack(
                13, 16, dataset, 8, start, 8, end, 4, count, 8, first, 8, last,
                8, first_value, 8, last_value, 8, low, 8, high, 8, total,
            ),
            _LENGTH.pack(len(ts_data)), ts_data, _LENGTH.pack(len(value_data)), value_data,
        ))  # fmt: skip
        prefix = b""
    yield prefix + TRAILER


def chunk_rows(dataset_id: uuid.UUID, encoded: EncodedChunks) -> bytes:
    """A binary COPY of point_chunk rows (CHUNK_COLUMNS) of one dataset, as one buffer."""
    return b"".join(chunk_row_parts(dataset_id, encoded))


@dataclass
class PartsReader:
    """A file for psycopg2's copy_expert that hands out the parts of an iterator as they come."""

    parts: Iterator[bytes]

    def read(self, size: int = -1) -> bytes:
        return next(self.parts, b"")

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)
