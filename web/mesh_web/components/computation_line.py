"""A result's line saying how its numbers were computed (``Result.output.computation``):
in memory or over chunks in bounded memory, in how many passes, and which numbers are
approximate and by how much."""

from __future__ import annotations

import reflex as rx

from mesh.analytics.v1 import analysis_pb2


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 'es' if word.endswith('s') else 's'}"


def computation_text(computation: analysis_pb2.Computation) -> str:
    """E.g. "Computed over chunks of 100,000,000 points in 3 passes; quantiles approximate
    (rank error ≤ 0.0014)"; "" for a result that does not say (made before it was recorded)."""
    c = computation
    if not c.mode:
        return ""
    points = _plural(c.point_count, "point")
    if c.mode == "in_memory":
        text = f"Computed in memory over {points}"
    elif c.mode == "dask":
        text = f"Computed on a Dask cluster over chunks of {points} in {_plural(c.parts, 'part')}"
        text += f" and {_plural(c.passes, 'pass')}"
    else:
        text = f"Computed over chunks of {points} in {_plural(c.passes, 'pass')}"
    if c.exact:
        text += "; exact"
    elif c.approximate:
        text += f"; {', '.join(c.approximate)} approximate"
        if c.quantile_rank_error > 0:
            text += f" (rank error ≤ {c.quantile_rank_error:.2g})"
    if c.note:
        text += f" — {c.note}"
    return text


def computation_line(text: rx.Var[str]) -> rx.Component:
    """``text`` (see :func:`computation_text`) in small grey type; nothing while it is empty."""
    return rx.cond(text != "", rx.text(text, size="1", color_scheme="gray", data_testid="result-computation"))
