"""The result page's line on how a result was computed. No network, no browser."""

from __future__ import annotations

import sys
from pathlib import Path

from mesh.analytics.v1 import analysis_pb2

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
if str(WEB_DIR) not in sys.path:
    sys.path.insert(0, str(WEB_DIR))

from mesh_web.components.computation_line import computation_text  # noqa: E402


def test_over_chunks_the_line_says_how_many_points_passes_and_what_is_approximate() -> None:
    c = analysis_pb2.Computation(
        mode="chunks", exact=False, approximate=["quantiles"], quantile_rank_error=0.00136,
        point_count=100_000_000, passes=3, batch_points=1_000_000,
    )  # fmt: skip
    assert computation_text(c) == (
        "Computed over chunks of 100,000,000 points in 3 passes; quantiles approximate (rank error ≤ 0.0014)"
    )


def test_in_memory_dask_and_notes_read_plainly() -> None:
    exact = analysis_pb2.Computation(mode="in_memory", exact=True, point_count=240)
    assert computation_text(exact) == "Computed in memory over 240 points; exact"
    dask = analysis_pb2.Computation(mode="dask", exact=True, point_count=1, parts=2, passes=1, note="n")
    assert computation_text(dask) == (
        "Computed on a Dask cluster over chunks of 1 point in 2 parts and 1 pass; exact — n"
    )
    forecast = analysis_pb2.Computation(
        mode="chunks", approximate=["forecast"], point_count=5120, passes=1, note="from the last 5,120 points"
    )
    assert computation_text(forecast) == (
        "Computed over chunks of 5,120 points in 1 pass; forecast approximate — from the last 5,120 points"
    )
    assert computation_text(analysis_pb2.Computation()) == ""  # results made before it was recorded
