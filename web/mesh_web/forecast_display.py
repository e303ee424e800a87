"""How a forecast result is shown: its chart rows (the series' last points,
then the point forecast with its 80% and 95% bands) and its numbers. Pure
functions from protos to plain dicts and text; no Reflex, no network."""

from __future__ import annotations

import math
from typing import Any

from mesh.analytics.v1 import analysis_pb2
from mesh_runtime.wire import us_to_datetime

HISTORY_POINTS = 240
"""Points of the series drawn before the forecast (its last ones)."""
MODEL_NAMES = {
    "seasonal_naive": "seasonal naive",
    "holt_winters": "Holt-Winters",
    "stl_ets": "STL + exponential smoothing",
    "combination": "combination",
    "naive": "naive",
    "holt": "Holt (damped trend)",
}
"""How each model is named on the page."""


def _time(timestamp_us: int) -> str:
    return us_to_datetime(timestamp_us).strftime("%m-%d %H:%M")


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def forecast_rows(series: analysis_pb2.ResultSeries, forecast: analysis_pb2.Forecast) -> list[dict[str, Any]]:
    """The rows of the forecast chart: the series' last points ('value'), then
    one row per forecast step with 'forecast' and the bands 'band_80' and
    'band_95' as [low, high]; the last observed point also starts the forecast
    line, so the two join."""
    rows: list[dict[str, Any]] = []
    stamps, values = list(series.timestamps_us), list(series.values)
    for stamp, value in list(zip(stamps, values, strict=False))[-HISTORY_POINTS:]:
        rows.append({"time": _time(stamp), "value": _number(value), "forecast": None, "band_80": None, "band_95": None})
    if rows and forecast.points:
        rows[-1]["forecast"] = rows[-1]["value"]
    for p in forecast.points:
        rows.append(
            {
                "time": _time(p.timestamp_us),
                "value": None,
                "forecast": _number(p.value),
                "band_80": [_number(p.lower_80), _number(p.upper_80)],
                "band_95": [_number(p.lower_95), _number(p.upper_95)],
            }
        )
    return rows


def model_name(model: str) -> str:
    """'Holt-Winters' for 'holt_winters'; unknown names as they are."""
    return MODEL_NAMES.get(model, model.replace("_", " "))


def forecast_caption(forecast: analysis_pb2.Forecast, unit: str = "") -> str:
    """'24 steps · Holt-Winters (holdout MASE 0.52) · expected 61.2 ± 3.4 kW by 01-03 00:00'."""
    if not forecast.points:
        return ""
    last = forecast.points[-1]
    suffix = f" {unit}" if unit else ""
    half = (last.upper_95 - last.lower_95) / 2
    return (
        f"{len(forecast.points):,} steps · {model_name(forecast.model)} (holdout MASE {forecast.holdout_mase:.3g})"
        f" · expected {last.value:.4g} ± {half:.3g}{suffix} by {_time(last.timestamp_us)} (95%)"
    )


def forecast_figures(forecast: analysis_pb2.Forecast, suffix: str = "") -> list[tuple[str, str]]:
    """(label, text) of a forecast's numbers for the result page."""
    if not forecast.points:
        return []
    last = forecast.points[-1]
    figures = [
        ("forecast model", model_name(forecast.model)),
        ("holdout MASE", f"{forecast.holdout_mase:.3g} over {forecast.holdout_points:,} points"),
        ("forecast steps", f"{len(forecast.points):,}"),
        ("expected at the end", f"{last.value:.4g}{suffix}"),
        ("95% interval at the end", f"{last.lower_95:.4g} to {last.upper_95:.4g}{suffix}"),
        ("80% interval at the end", f"{last.lower_80:.4g} to {last.upper_80:.4g}{suffix}"),
        ("series regularised", forecast.regularization),
    ]
    if forecast.fallback_reason:
        figures.append(("without a season because", forecast.fallback_reason))
    return figures
