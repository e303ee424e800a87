"""Run one analysis kind over loaded points and shape the numbers for the wire.

Pure functions over numpy arrays (no database, no network): the worker loads
points, calls :func:`run`, and stores what it returns; GetResult calls
:func:`chart_series` to draw the series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analytics_svc.analyses import forecast, numeric, seasonal
from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.events.v1 import events_pb2
from mesh_runtime.wire import us_to_timestamp

EVENT_ANOMALIES = 10
DEFAULT_HISTOGRAM_BINS = 20
DEFAULT_MOVING_AVERAGE_WINDOW = 10
DEFAULT_EWMA_ALPHA = 0.3

KIND_NAMES = {
    apb.ANALYSIS_KIND_SUMMARY: "summary",
    apb.ANALYSIS_KIND_TREND: "trend",
    apb.ANALYSIS_KIND_ANOMALIES: "anomalies",
    apb.ANALYSIS_KIND_CORRELATION: "correlation",
    apb.ANALYSIS_KIND_REPORT: "report",
    apb.ANALYSIS_KIND_FORECAST: "forecast",
}


def kind_name(kind: int) -> str:
    """The lower-case name of an analysis kind, e.g. "report"."""
    return KIND_NAMES.get(apb.AnalysisKind.ValueType(kind), str(kind))


_HAS_SUMMARY = {apb.ANALYSIS_KIND_SUMMARY, apb.ANALYSIS_KIND_REPORT}
_HAS_TREND = {apb.ANALYSIS_KIND_TREND, apb.ANALYSIS_KIND_REPORT}
_HAS_ANOMALIES = {apb.ANALYSIS_KIND_ANOMALIES, apb.ANALYSIS_KIND_REPORT}


class AnalysisFailed(Exception):
    """The analysis cannot produce a result; the message is fit for a user."""


@dataclass(frozen=True)
class Outcome:
    """What a successful analysis produced."""

    output: apb.ResultOutput
    anomaly_count: int
    window_start_us: int
    window_end_us: int


def run(
    kind: int,
    parameters: apb.AnalysisParameters,
    timestamps_us: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    other: tuple[str, str, npt.NDArray[np.int64], npt.NDArray[np.float64]] | None = None,
    dataset_periods_s: Sequence[int] = (),
) -> Outcome:
    """Compute analysis ``kind`` of the points; AnalysisFailed when it cannot.

    ``other`` is (id, name, timestamps, values) of the second dataset of a
    correlation; ``dataset_periods_s`` the seasonal periods declared on the
    dataset (used when the parameters declare none).
    """
    if timestamps_us.size == 0:
        raise AnalysisFailed("the dataset has no points in the analysed window")
    output = apb.ResultOutput()
    anomaly_count = 0
    if kind in _HAS_SUMMARY:
        s = numeric.summary(values)
        output.summary.CopyFrom(apb.SummaryStatistics(count=s.count, mean=s.mean, std=s.std, min=s.min, max=s.max))
        levels = list(parameters.quantile_levels) or list(numeric.DEFAULT_QUANTILES)
        q = numeric.quantiles(values, levels)
        output.quantiles.extend(apb.Quantile(level=lv, value=v) for lv, v in zip(q.levels, q.values, strict=True))
        h = numeric.histogram(values, parameters.histogram_bins or DEFAULT_HISTOGRAM_BINS)
        output.histogram.CopyFrom(apb.Histogram(edges=h.edges.tolist(), counts=h.counts.tolist()))
    if kind in _HAS_TREND:
        if timestamps_us.size < 2:
            raise AnalysisFailed("a trend needs at least two points in the analysed window")
        t = numeric.linear_trend(timestamps_us, values)
        output.trend.CopyFrom(apb.Trend(slope_per_second=t.slope, intercept=t.intercept, r_squared=t.r_squared))
        output.trend.origin_time.CopyFrom(us_to_timestamp(t.origin_us))
        if timestamps_us.size >= 3:
            u = numeric.trend_uncertainty(timestamps_us, values)
            output.trend.uncertainty.CopyFrom(
                apb.TrendUncertainty(
                    slope_std_error=u.std_error,
                    slope_ci_low=u.ci_low,
                    slope_ci_high=u.ci_high,
                    p_value=u.p_value,
                    significant=u.significant,
                    hac_lags=u.hac_lags,
                )
            )
    if kind in _HAS_ANOMALIES:
        try:
            report = anomaly_report(parameters, timestamps_us, values, dataset_periods_s)
        except AnalysisFailed as e:
            # A report still gives its other numbers when the default method cannot run.
            if kind != apb.ANALYSIS_KIND_REPORT or parameters.anomaly_method != apb.ANOMALY_METHOD_UNSPECIFIED:
                raise
            report = _global_report(parameters, timestamps_us, values)
            report.fallback_reason = str(e)
        anomaly_count = report.anomaly_count
        output.anomalies.CopyFrom(report)
    if kind == apb.ANALYSIS_KIND_CORRELATION:
        if other is None:
            raise AnalysisFailed("a correlation needs parameters.correlate_with_dataset_id")
        other_id, other_name, other_ts, other_values = other
        if other_ts.size == 0:
            raise AnalysisFailed(f"dataset {other_name!r} has no points in the analysed window")
        c = numeric.correlate(timestamps_us, values, other_ts, other_values)
        output.correlation.CopyFrom(
            apb.Correlation(other_dataset_id=other_id, other_dataset_name=other_name, aligned_count=c.count)
        )
        if c.r is not None:
            output.correlation.r = c.r
    if kind == apb.ANALYSIS_KIND_FORECAST:
        output.forecast.CopyFrom(forecast_output(parameters, timestamps_us, values, dataset_periods_s))
    return Outcome(output, anomaly_count, int(timestamps_us[0]), int(timestamps_us[-1]))


def forecast_output(
    parameters: apb.AnalysisParameters,
    timestamps_us: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    dataset_periods_s: Sequence[int] = (),
) -> apb.Forecast:
    """The forecast of the next ``parameters.forecast_horizon`` steps, its intervals and how its model was chosen.

    The seasonal periods are the request's, else the dataset's, else detected from the data.
    """
    periods, origin = list(parameters.seasonal_periods_seconds), seasonal.DECLARED
    if not periods and dataset_periods_s:
        periods, origin = list(dataset_periods_s), seasonal.DECLARED_ON_DATASET
    try:
        found = forecast.forecast_series(timestamps_us, values, parameters.forecast_horizon, periods, origin)
    except forecast.ForecastFailed as e:
        raise AnalysisFailed(f"forecast: {e}") from e
    fit, p = found.fit, found.fit.prediction
    result = apb.Forecast(
        model=fit.model,
        holdout_mase=fit.holdout_mase,
        holdout_points=fit.holdout_points,
        step_us=found.step_us,
        periods_seconds=list(found.periods_s),
        periods_origin=found.periods_origin,
        regularization=found.regularisation,
        fallback_reason=fit.fallback_reason,
        training_points=fit.training_points,
    )
    for c in fit.candidates:
        candidate = result.candidates.add(model=c.model, error=c.error)
        if c.mase is not None and math.isfinite(c.mase):
            candidate.holdout_mase = c.mase
    result.points.extend(
        apb.ForecastPoint(timestamp_us=t, value=v, lower_80=l80, upper_80=u80, lower_95=l95, upper_95=u95)
        for t, v, l80, u80, l95, u95 in zip(
            found.timestamps_us.tolist(),
            p.mean.tolist(),
            p.lower_80.tolist(),
            p.upper_80.tolist(),
            p.lower_95.tolist(),
            p.upper_95.tolist(),
            strict=True,
        )
    )
    return result


def anomaly_report(
    parameters: apb.AnalysisParameters,
    timestamps_us: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    dataset_periods_s: Sequence[int] = (),
) -> apb.AnomalyReport:
    """Anomaly events by the requested method (seasonal unless global is asked for), all of them, ranked.

    The seasonal periods are the request's, else the dataset's, else detected from the data.
    """
    if parameters.anomaly_method == apb.ANOMALY_METHOD_GLOBAL:
        return _global_report(parameters, timestamps_us, values)
    threshold = parameters.anomaly_threshold or seasonal.DEFAULT_SEASONAL_THRESHOLD
    periods, origin = list(parameters.seasonal_periods_seconds), seasonal.DECLARED
    if not periods and dataset_periods_s:
        periods, origin = list(dataset_periods_s), seasonal.DECLARED_ON_DATASET
    try:
        found = seasonal.seasonal_anomalies(timestamps_us, values, threshold, periods, origin)
    except seasonal.SeasonalFailed as e:
        raise AnalysisFailed(f"seasonal anomaly detection: {e}") from e
    report = apb.AnomalyReport(
        method="seasonal",
        median=found.residual_median,
        mad=found.residual_mad,
        threshold=found.threshold,
        scale_method="residual_mad",
        periods_seconds=list(found.periods_s),
        periods_origin=found.periods_origin,
        regularization=found.regularisation,
        flagged_point_count=found.flagged_point_count,
    )
    return _with_events(report, found.events)


def _global_report(
    parameters: apb.AnalysisParameters, timestamps_us: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
) -> apb.AnomalyReport:
    found = numeric.robust_anomalies(
        timestamps_us, values, parameters.anomaly_threshold or numeric.DEFAULT_ANOMALY_THRESHOLD
    )
    index = np.searchsorted(timestamps_us, [a.timestamp_us for a in found.anomalies]).astype(np.int64)
    scores = np.zeros(values.size)
    scores[index] = [a.score for a in found.anomalies]
    expected = np.full(values.size, found.median)
    events = seasonal.merge_events(
        timestamps_us, values, expected, scores, found.threshold * found.scale, found.threshold
    )
    report = apb.AnomalyReport(
        method="global",
        median=found.median,
        mad=found.mad,
        threshold=found.threshold,
        scale_method=found.scale_method,
        flagged_point_count=len(found.anomalies),
    )
    return _with_events(report, events)


def _with_events(report: apb.AnomalyReport, events: Sequence[seasonal.AnomalyEvent]) -> apb.AnomalyReport:
    """``report`` with every event (ranked as given) and each event's peak point."""
    report.anomaly_count = len(events)
    report.events.extend(
        apb.AnomalyEvent(
            start_us=e.start_us,
            end_us=e.end_us,
            peak_us=e.peak_us,
            peak_value=e.peak_value,
            expected=e.expected,
            lower=e.lower,
            upper=e.upper,
            score=e.score,
            point_count=e.point_count,
        )
        for e in events
    )
    report.anomalies.extend(
        apb.Anomaly(timestamp_us=e.peak_us, value=e.peak_value, score=e.score, expected=e.expected) for e in events
    )
    return report


FORECAST_NUMBERS = ("forecast steps", "forecast at horizon", "forecast 95% low", "forecast 95% high", "holdout MASE")
"""The key numbers of a forecast, in order."""


def key_numbers(output: apb.ResultOutput) -> list[events_pb2.KeyNumber]:
    """The headline numbers of a result, in display order (for e-mails and insights)."""
    numbers: list[tuple[str, float]] = []
    if output.HasField("summary"):
        s = output.summary
        numbers += [("count", s.count), ("mean", s.mean), ("std", s.std), ("min", s.min), ("max", s.max)]
        numbers += [(f"p{q.level * 100:g}", q.value) for q in output.quantiles]
    if output.HasField("trend"):
        t = output.trend
        numbers += [("slope per day", t.slope_per_second * 86400), ("r squared", t.r_squared)]
        if t.HasField("uncertainty"):
            u = t.uncertainty
            numbers += [
                ("slope CI low per day", u.slope_ci_low * 86400),
                ("slope CI high per day", u.slope_ci_high * 86400),
                ("trend p-value", u.p_value),
            ]
    if output.HasField("anomalies"):
        a = output.anomalies
        numbers += [("anomalies", a.anomaly_count), ("median", a.median), ("threshold", a.threshold)]
    if output.HasField("forecast") and output.forecast.points:
        f = output.forecast
        last = f.points[-1]
        values = (len(f.points), last.value, last.lower_95, last.upper_95, f.holdout_mase)
        numbers += list(zip(FORECAST_NUMBERS, values, strict=True))
    if output.HasField("correlation"):
        c = output.correlation
        numbers.append(("aligned points", c.aligned_count))
        if c.HasField("r"):
            numbers.append(("correlation r", c.r))
    return [events_pb2.KeyNumber(name=n, value=float(v)) for n, v in numbers if math.isfinite(float(v))]


def top_anomalies(output: apb.ResultOutput, limit: int = EVENT_ANOMALIES) -> list[events_pb2.AnomalyPoint]:
    """The ``limit`` anomaly events with the largest absolute score, largest first."""
    ranked = sorted(output.anomalies.events, key=lambda e: (-abs(e.score), e.peak_us))[:limit]
    return [
        events_pb2.AnomalyPoint(
            timestamp_us=e.peak_us,
            value=e.peak_value,
            score=e.score,
            expected=e.expected,
            start_us=e.start_us,
            end_us=e.end_us,
        )
        for e in ranked
    ]


def downsample_indices(values: npt.NDArray[np.float64], max_points: int) -> npt.NDArray[np.int64]:
    """Indices of at most ``max_points`` points that keep each bucket's minimum
    and maximum, in time order: spikes survive, unlike plain decimation."""
    n = values.size
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    buckets = max(1, max_points // 2)
    size = -(-n // buckets)  # ceil
    padded_low = np.full(buckets * size, np.inf)
    padded_low[:n] = values
    padded_high = np.full(buckets * size, -np.inf)
    padded_high[:n] = values
    base = np.arange(buckets, dtype=np.int64) * size
    lows = base + padded_low.reshape(buckets, size).argmin(axis=1)
    highs = base + padded_high.reshape(buckets, size).argmax(axis=1)
    picked = np.unique(np.concatenate([lows, highs]))
    return picked[picked < n][:max_points]


def chart_series(
    result_kind: int,
    parameters: apb.AnalysisParameters,
    output: apb.ResultOutput,
    timestamps_us: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    max_points: int,
) -> apb.ResultSeries:
    """The series of a result for a chart, reduced to ``max_points``, with its
    trend line and (trend results) smoothed lines at the kept points."""
    series = apb.ResultSeries(source_point_count=int(timestamps_us.size))
    if timestamps_us.size == 0 or max_points <= 0:
        return series
    keep = downsample_indices(values, max_points)
    ts = timestamps_us[keep]
    series.timestamps_us.extend(ts.tolist())
    series.values.extend(values[keep].tolist())
    if output.HasField("trend"):
        origin_us = output.trend.origin_time.seconds * 1_000_000 + output.trend.origin_time.nanos // 1000
        seconds = (ts - origin_us).astype(np.float64) / 1e6
        series.trend.extend((output.trend.intercept + output.trend.slope_per_second * seconds).tolist())
    if result_kind == apb.ANALYSIS_KIND_TREND:
        window = min(parameters.moving_average_window or DEFAULT_MOVING_AVERAGE_WINDOW, int(values.size))
        means = numeric.moving_average(values, window)
        # Element i of the moving average ends at point i + window - 1; before that: no value (NaN).
        aligned = np.full(values.size, np.nan)
        aligned[window - 1 :] = means
        series.moving_average.extend(aligned[keep].tolist())
        series.ewma.extend(numeric.ewma(values, parameters.ewma_alpha or DEFAULT_EWMA_ALPHA)[keep].tolist())
    return series
