"""What an analysis request must satisfy before it is stored (RunAnalysis and schedules alike)."""

from __future__ import annotations

from mesh.analytics.v1 import analysis_pb2 as apb
from mesh_runtime.errors import InvalidArgument


def check_kind(kind: int, parameters: apb.AnalysisParameters, field_prefix: str) -> None:
    """InvalidArgument naming the field when an analysis of ``kind`` cannot run with ``parameters``."""
    if kind == apb.ANALYSIS_KIND_UNSPECIFIED:
        raise InvalidArgument.for_field(f"{field_prefix}kind", "value is required")
    if kind == apb.ANALYSIS_KIND_CORRELATION and not parameters.correlate_with_dataset_id:
        raise InvalidArgument.for_field(
            f"{field_prefix}parameters.correlate_with_dataset_id", "a correlation needs the other dataset's id"
        )
    if parameters.HasField("window_start") and parameters.HasField("window_end"):
        if parameters.window_end.ToDatetime() <= parameters.window_start.ToDatetime():
            raise InvalidArgument.for_field(f"{field_prefix}parameters.window_end", "must be after window_start")
    _check_anomaly_parameters(kind, parameters, field_prefix)
    if kind == apb.ANALYSIS_KIND_FORECAST and parameters.forecast_horizon < 1:
        raise InvalidArgument.for_field(
            f"{field_prefix}parameters.forecast_horizon", "a forecast needs a horizon of 1 to 10000 steps"
        )


def _check_anomaly_parameters(kind: int, parameters: apb.AnalysisParameters, field_prefix: str) -> None:
    periods = list(parameters.seasonal_periods_seconds)
    if not periods:
        return
    field = f"{field_prefix}parameters.seasonal_periods_seconds"
    if kind == apb.ANALYSIS_KIND_FORECAST:
        return  # too few cycles for a seasonal model: the forecast falls back to non-seasonal ones
    if kind not in (apb.ANALYSIS_KIND_ANOMALIES, apb.ANALYSIS_KIND_REPORT):
        raise InvalidArgument.for_field(
            field, "seasonal periods apply only to the anomalies, report and forecast kinds"
        )
    if parameters.anomaly_method == apb.ANOMALY_METHOD_GLOBAL:
        raise InvalidArgument.for_field(field, "seasonal periods apply only to the seasonal method")
    if parameters.HasField("window_start") and parameters.HasField("window_end"):
        span = (parameters.window_end.ToDatetime() - parameters.window_start.ToDatetime()).total_seconds()
        longest = max(periods)
        if 2 * longest > span:
            raise InvalidArgument.for_field(
                field, f"period {longest} s needs two full cycles ({2 * longest} s); the window spans {span:g} s"
            )


def check_dataset_periods(kind: int, parameters: apb.AnalysisParameters, dataset_periods_s: list[int]) -> None:
    """InvalidArgument when an anomalies request on a known window would use the
    dataset's declared periods (the request names none) and the window cannot
    hold two cycles of the longest: the run could only fail."""
    if kind != apb.ANALYSIS_KIND_ANOMALIES or not dataset_periods_s:
        return
    if parameters.anomaly_method == apb.ANOMALY_METHOD_GLOBAL or parameters.seasonal_periods_seconds:
        return
    if parameters.HasField("window_start") and parameters.HasField("window_end"):
        span = (parameters.window_end.ToDatetime() - parameters.window_start.ToDatetime()).total_seconds()
    elif parameters.lookback_seconds and not parameters.HasField("window_start"):
        span = float(parameters.lookback_seconds)
    else:
        return
    longest = max(dataset_periods_s)
    if 2 * longest > span:
        raise InvalidArgument.for_field(
            "parameters.seasonal_periods_seconds",
            f"the dataset declares a period of {longest} s, which needs two full cycles ({2 * longest} s); "
            f"the window spans {span:g} s: widen the window or declare shorter periods in the request",
        )
