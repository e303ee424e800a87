"""What an anomaly result expected, drawn with the series: at each anomaly
event's peak, the value the method expected there (seasonal: trend plus
cycles; global: the median) as a dot and the band around it whose values
would not have been flagged as a bar from its lower to its upper edge. The
result stores them per reported event (AnomalyEvent.expected, lower, upper),
so the band shows where the series left it. Also the trend in words: its
slope per day with its 95% interval and whether it stands out from noise."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

import reflex as rx

from mesh.analytics.v1 import analysis_pb2
from mesh_web.result_display import format_number


def with_expected_band(
    rows: list[dict[str, Any]], timestamps_us: Sequence[int], events: Sequence[analysis_pb2.AnomalyEvent]
) -> list[dict[str, Any]]:
    """The series chart's rows (one per timestamp) with, on the row nearest
    each event's peak, 'expected' (the expected value) and 'expected_band'
    (how far the band reaches below and above it, as recharts' error bars
    take it); None elsewhere."""
    out = [{**row, "expected": None, "expected_band": None} for row in rows]
    stamps = list(timestamps_us)
    if not out or not stamps:
        return out
    for event in events:
        if not all(math.isfinite(v) for v in (event.expected, event.lower, event.upper)):
            continue
        at = bisect.bisect_left(stamps, event.peak_us)
        candidates = [i for i in (at - 1, at) if 0 <= i < min(len(stamps), len(out))]
        if not candidates:
            continue
        nearest = min(candidates, key=lambda i: abs(stamps[i] - event.peak_us))
        out[nearest]["expected"] = event.expected
        out[nearest]["expected_band"] = [max(0.0, event.expected - event.lower), max(0.0, event.upper - event.expected)]
    return out


def trend_in_words(trend: analysis_pb2.Trend, unit: str = "") -> str:
    """'rising 2.1 rpm/day ± 0.4 (95% interval 1.7 to 2.5), distinguishable from
    noise (p = 0.001)': the slope per day, how sure it is, and what that means."""
    per_day = trend.slope_per_second * 86_400
    direction = "rising" if per_day > 0 else "falling" if per_day < 0 else "flat"
    rate = f"{unit}/day" if unit else "/day"
    text = f"{direction} {format_number(abs(per_day))}{' ' if unit else ''}{rate}"
    if not trend.HasField("uncertainty"):
        return text + " (too few points to say how sure)"
    u = trend.uncertainty
    low, high = u.slope_ci_low * 86_400, u.slope_ci_high * 86_400
    text += f" ± {format_number((high - low) / 2)} (95% interval {format_number(low)} to {format_number(high)})"
    if u.significant:
        return text + f", distinguishable from noise (p = {format_number(u.p_value)})"
    return text + f", not distinguishable from noise (p = {format_number(u.p_value)}): it could be chance"


def expected_band_layer() -> rx.Component:
    """The series chart's layer of expected values (dots) and their bands (bars)."""
    return rx.recharts.line(
        rx.recharts.error_bar(
            data_key="expected_band",
            direction="y",
            width=10,
            stroke="var(--grass-10)",
            stroke_width=2,
        ),
        data_key="expected",
        name="expected (band not flagged)",
        stroke="none",
        legend_type="diamond",
        dot={"r": 3, "fill": "var(--grass-10)", "stroke": "var(--grass-11)", "className": "expected-dot"},
        is_animation_active=False,
        class_name="expected-band",
    )
