"""Points as CSV text for ExportPoints: what ImportCsv reads back unchanged. Pure functions."""

from __future__ import annotations

import numpy as np

CONTENT_TYPE = "text/csv; charset=utf-8"
HEADER = b"timestamp,value\n"
# Points per streamed message: about 1 MB of CSV, well under gRPC's message limits.
CHUNK_POINTS = 20_000


def csv_rows(timestamps_us: np.ndarray, values: np.ndarray) -> bytes:
    """Rows "timestamp,value\\n": ISO-8601 UTC to the microsecond (years 0001 to
    9999), and the shortest decimal text that reads back as the same double."""
    stamps = np.datetime_as_string(np.asarray(timestamps_us, dtype=np.int64).astype("datetime64[us]"), unit="us")
    # repr of a Python float is the shortest round-tripping text (numpy's str of a float64 is not always).
    lines = [f"{stamp}Z,{value!r}\n" for stamp, value in zip(stamps.tolist(), np.asarray(values).tolist(), strict=True)]
    return "".join(lines).encode()


def attachment_name(dataset_name: str) -> str:
    """The Content-Disposition of a dataset's CSV download (names hold only [A-Za-z0-9._-])."""
    return f'attachment; filename="{dataset_name}.csv"'
