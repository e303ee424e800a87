"""Run one analysis of a dataset's window within a memory budget, whatever its size.

A window that fits the budget (``streaming.in_memory_max_points``) is loaded
and computed in memory (``compute.run``), exactly as always. A bigger one is
analysed over its chunks (``analyses.streaming``): passes over batches of at
most ``streaming.batch_points`` points, in this process or, with a Dask
cluster configured, as Dask tasks (``analyses.distributed``). The result's
``computation`` says which, and which numbers are approximate and by how much.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from analytics_svc.analyses import compute, forecast, numeric, seasonal, streaming
from analytics_svc.analyses.distributed import DaskCluster, DaskPasses
from analytics_svc.points import scan
from analytics_svc.points import store as point_store
from mesh.analytics.v1 import analysis_pb2 as apb
from mesh_runtime.wire import us_to_timestamp

# Kinds computed over chunks (the forecast reads only the window's tail:
# _forecast_tail); others (a kind that needs the whole series at once) fail on
# a window over the budget rather than exceed it.
_CHUNKED_KINDS = {
    apb.ANALYSIS_KIND_SUMMARY, apb.ANALYSIS_KIND_TREND, apb.ANALYSIS_KIND_ANOMALIES,
    apb.ANALYSIS_KIND_REPORT, apb.ANALYSIS_KIND_CORRELATION, apb.ANALYSIS_KIND_FORECAST,
}  # fmt: skip


# ANALYTICS_ANALYSIS_MEMORY_MB's default (analytics_svc.config).
DEFAULT_ANALYSIS_MEMORY_MB = 256


@dataclass(frozen=True)
class Budget:
    """How much memory one analysis may hold, and the Dask cluster to use (None: in process)."""

    memory_bytes: int
    cluster: DaskCluster | None = None

    @classmethod
    def of(cls, memory_mb: int, cluster: DaskCluster | None = None) -> Budget:
        return cls(memory_mb * 1024 * 1024, cluster)


def execute(
    kind: int,
    parameters: apb.AnalysisParameters,
    dataset_id: str,
    start_us: int | None,
    end_us: int | None,
    other: tuple[str, str] | None,
    budget: Budget,
    dataset_periods_s: Sequence[int] = (),
) -> compute.Outcome:
    """Analysis ``kind`` of the dataset's points in ``[start_us, end_us)`` (None: open);
    ``other`` is (id, name) of a correlation's second dataset; ``dataset_periods_s`` the
    seasonal periods declared on the dataset. AnalysisFailed when it cannot."""
    limit = streaming.in_memory_max_points(budget.memory_bytes)
    with scan.window_scan(dataset_id, start_us, end_us) as window:
        other_window = scan.ChunkScan(window.cursor, other[0], start_us, end_us) if other else None
        small = window.index.points <= limit and (other_window is None or other_window.index.points <= limit)
        if not small:
            if kind not in _CHUNKED_KINDS:
                raise compute.AnalysisFailed(
                    f"the window holds about {window.index.points} points, more than the {limit} this kind can "
                    "analyse within ANALYTICS_ANALYSIS_MEMORY_MB; analyse a shorter window"
                )
            if kind == apb.ANALYSIS_KIND_FORECAST:
                return _forecast_tail(parameters, window, budget, dataset_periods_s)
            return _over_chunks(kind, parameters, window, other_window, other, budget, dataset_periods_s)
    # Small: the in-memory computation, loading as the store loads fastest.
    timestamps, values = point_store.load_points(dataset_id, start_us, end_us)
    loaded = None
    if other is not None:
        other_ts, other_values = point_store.load_points(other[0], start_us, end_us)
        loaded = (other[0], other[1], other_ts, other_values)
    outcome = compute.run(kind, parameters, timestamps, values, loaded, dataset_periods_s)
    outcome.output.computation.CopyFrom(apb.Computation(mode="in_memory", exact=True, point_count=timestamps.size))
    return outcome


def extent(window: scan.ChunkScan) -> streaming.Extent | None:
    """The window's exact count, first/last time, min and max (None when empty): from the
    summaries of the chunks wholly inside it, decoding only the (at most two) it cuts."""
    index = window.index
    inside = (index.first_us >= window.lo) & (index.last_us < window.hi)
    count = int(index.count[inside].sum())
    firsts = list(index.first_us[inside][:1])
    lasts = list(index.last_us[inside][-1:])
    lows, highs = list(index.min[inside]), list(index.max[inside])
    for i in np.flatnonzero(~inside).tolist():
        for ts, values in window.batches(1, i, i + 1):
            count += ts.size
            firsts.append(ts[0])
            lasts.append(ts[-1])
            lows.append(values.min())
            highs.append(values.max())
    if count == 0:
        return None
    return streaming.Extent(count, int(min(firsts)), int(max(lasts)), float(min(lows)), float(max(highs)))


def _over_chunks(
    kind: int,
    parameters: apb.AnalysisParameters,
    window: scan.ChunkScan,
    other_window: scan.ChunkScan | None,
    other: tuple[str, str] | None,
    budget: Budget,
    dataset_periods_s: Sequence[int],
) -> compute.Outcome:
    found = extent(window)
    if found is None:
        raise compute.AnalysisFailed("the dataset has no points in the analysed window")
    batch = streaming.batch_points(budget.memory_bytes)
    passes: streaming.PassRunner
    if budget.cluster is not None:
        on_dask = DaskPasses.open(budget.cluster, window)
        passes, mode, parts = on_dask, "dask", len(on_dask.parts)
    else:
        passes = streaming.in_process(window.batches)
        mode, parts = "chunks", 0
    summary = kind in (apb.ANALYSIS_KIND_SUMMARY, apb.ANALYSIS_KIND_REPORT)
    trend = kind in (apb.ANALYSIS_KIND_TREND, apb.ANALYSIS_KIND_REPORT)
    anomalies = kind in (apb.ANALYSIS_KIND_ANOMALIES, apb.ANALYSIS_KIND_REPORT)
    if trend and found.count < 2:
        raise compute.AnalysisFailed("a trend needs at least two points in the analysed window")
    seasonal_report: apb.AnomalyReport | None = None
    fallback = ""
    notes: list[str] = []
    if anomalies and parameters.anomaly_method != apb.ANOMALY_METHOD_GLOBAL:
        try:
            on_cluster = passes if isinstance(passes, DaskPasses) else None
            seasonal_report, note = _seasonal(parameters, window, found, budget, dataset_periods_s, on_cluster)
            notes.append(note)
        except (seasonal.SeasonalFailed, streaming.SeasonalWindowFailed) as e:
            if kind != apb.ANALYSIS_KIND_REPORT or parameters.anomaly_method != apb.ANOMALY_METHOD_UNSPECIFIED:
                raise compute.AnalysisFailed(f"seasonal anomaly detection: {e}") from None
            fallback = str(e)
    figures = streaming.analyse(
        passes,
        found,
        batch,
        summary=summary,
        trend=trend,
        global_anomalies=anomalies and seasonal_report is None,
        quantile_levels=list(parameters.quantile_levels) or list(numeric.DEFAULT_QUANTILES),
        histogram_bins=parameters.histogram_bins or compute.DEFAULT_HISTOGRAM_BINS,
        anomaly_threshold=parameters.anomaly_threshold or numeric.DEFAULT_ANOMALY_THRESHOLD,
    )
    output = _shape(figures)
    approximate = list(figures.approximate)
    anomaly_count = 0
    if seasonal_report is not None:
        output.anomalies.CopyFrom(seasonal_report)
        approximate.append("seasonal anomalies (windowed decomposition)")
    if output.HasField("anomalies"):
        output.anomalies.fallback_reason = fallback
        anomaly_count = output.anomalies.anomaly_count
    if kind == apb.ANALYSIS_KIND_CORRELATION:
        if other_window is None or other is None:
            raise compute.AnalysisFailed("a correlation needs parameters.correlate_with_dataset_id")
        if other_window.index.points == 0:
            raise compute.AnalysisFailed(f"dataset {other[1]!r} has no points in the analysed window")
        c = streaming.correlate(window.batches(batch // 2), other_window.batches(batch // 2))
        output.correlation.CopyFrom(
            apb.Correlation(other_dataset_id=other[0], other_dataset_name=other[1], aligned_count=c.count)
        )
        if c.r is not None:
            output.correlation.r = c.r
    output.computation.CopyFrom(
        apb.Computation(
            mode=mode,
            exact=not approximate,
            approximate=approximate,
            quantile_rank_error=streaming.QUANTILE_RANK_ERROR if figures.approximate else 0.0,
            point_count=found.count,
            batch_points=batch,
            passes=figures.passes + 1,  # and the extent's
            parts=parts,
            note="; ".join(notes),
        )
    )
    return compute.Outcome(output, anomaly_count, found.first_us, found.last_us)


def forecast_tail_points(
    parameters: apb.AnalysisParameters, found: streaming.Extent, max_points: int, dataset_periods_s: Sequence[int]
) -> int:
    """How many of the window's last points a forecast reads: what its models fit at most (the
    last ``MAX_TRAINING_CYCLES`` of the longest period, or ``MAX_TRAINING_POINTS``) plus the
    held-out tails, and three of the longest candidate cycles when periods are detected;
    never more than the budget holds (``max_points``)."""
    declared = list(parameters.seasonal_periods_seconds) or list(dataset_periods_s)
    longest_s = max(declared or seasonal.CANDIDATE_PERIODS_S)
    per_us = (found.count - 1) / max(found.last_us - found.first_us, 1)
    lag = math.ceil(longest_s * 1_000_000 * per_us)
    fit = max(forecast.MAX_TRAINING_POINTS, forecast.MAX_TRAINING_CYCLES * lag)
    fit += (forecast.ORIGINS + 1) * max(parameters.forecast_horizon, 1)
    needed = fit if declared else max(fit, 3 * lag)
    return max(1, min(needed, max_points, found.count))


def _forecast_tail(
    parameters: apb.AnalysisParameters, window: scan.ChunkScan, budget: Budget, dataset_periods_s: Sequence[int]
) -> compute.Outcome:
    """The forecast of a window over the budget: the in-memory forecast of its last points
    (:func:`forecast_tail_points`), decoding only the last chunks."""
    found = extent(window)
    if found is None:
        raise compute.AnalysisFailed("the dataset has no points in the analysed window")
    wanted = forecast_tail_points(parameters, found, streaming.in_memory_max_points(budget.memory_bytes),
                                  dataset_periods_s)  # fmt: skip
    ts, values = tail(window, wanted)
    outcome = compute.run(apb.ANALYSIS_KIND_FORECAST, parameters, ts, values, None, dataset_periods_s)
    outcome.output.computation.CopyFrom(
        apb.Computation(
            mode="chunks",
            exact=False,
            approximate=["forecast (fitted on the window's last points only)"],
            point_count=ts.size,
            batch_points=ts.size,
            passes=1,
            note=(
                f"forecast from the last {ts.size:,} of the window's {found.count:,} points, "
                f"read from its last chunks (models fit at most the last {forecast.MAX_TRAINING_CYCLES} cycles "
                f"or {forecast.MAX_TRAINING_POINTS:,} points)"
            ),
        )
    )
    return compute.Outcome(outcome.output, 0, found.first_us, found.last_us)


def tail(window: scan.ChunkScan, points: int) -> tuple[np.ndarray, np.ndarray]:
    """The window's last ``points`` points (fewer when it holds fewer), decoding only the
    last chunks that hold them (and, at most, one chunk more)."""
    index = window.index
    if len(index) == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    from_end = np.cumsum(index.count[::-1])
    first = max(len(index) - 1 - int(np.searchsorted(from_end, points, side="left")), 0)
    while True:
        # The chunk counts include points of the last chunk after the window: step back if short.
        ts, values = window.points_between(int(index.start_us[first]), window.hi)
        if ts.size >= points or first == 0:
            return ts[-points:], values[-points:]
        first -= 1


def _shape(figures: streaming.Figures) -> apb.ResultOutput:
    """The proto output of chunked figures, as compute.run shapes the in-memory ones."""
    output = apb.ResultOutput()
    if figures.summary is not None:
        s = figures.summary
        output.summary.CopyFrom(apb.SummaryStatistics(count=s.count, mean=s.mean, std=s.std, min=s.min, max=s.max))
    if figures.quantiles is not None:
        q = figures.quantiles
        output.quantiles.extend(apb.Quantile(level=lv, value=v) for lv, v in zip(q.levels, q.values, strict=True))
    if figures.histogram is not None:
        h = figures.histogram
        output.histogram.CopyFrom(apb.Histogram(edges=h.edges.tolist(), counts=h.counts.tolist()))
    if figures.trend is not None:
        t = figures.trend
        output.trend.CopyFrom(apb.Trend(slope_per_second=t.slope, intercept=t.intercept, r_squared=t.r_squared))
        output.trend.origin_time.CopyFrom(us_to_timestamp(t.origin_us))
        if figures.uncertainty is not None:
            u = figures.uncertainty
            output.trend.uncertainty.CopyFrom(
                apb.TrendUncertainty(
                    slope_std_error=u.std_error, slope_ci_low=u.ci_low, slope_ci_high=u.ci_high,
                    p_value=u.p_value, significant=u.significant, hac_lags=u.hac_lags,
                )  # fmt: skip
            )
    if figures.anomalies is not None:
        a = figures.anomalies
        report = apb.AnomalyReport(
            method="global", median=a.median, mad=a.mad, threshold=a.threshold,
            scale_method=a.scale_method, flagged_point_count=a.flagged,
        )  # fmt: skip
        output.anomalies.CopyFrom(_with_events(report, a.events))
    return output


def _with_events(report: apb.AnomalyReport, events: tuple[seasonal.AnomalyEvent, ...]) -> apb.AnomalyReport:
    report.anomaly_count = len(events)
    report.events.extend(
        apb.AnomalyEvent(
            start_us=e.start_us, end_us=e.end_us, peak_us=e.peak_us, peak_value=e.peak_value,
            expected=e.expected, lower=e.lower, upper=e.upper, score=e.score, point_count=e.point_count,
        )  # fmt: skip
        for e in events
    )
    report.anomalies.extend(
        apb.Anomaly(timestamp_us=e.peak_us, value=e.peak_value, score=e.score, expected=e.expected) for e in events
    )
    return report


def _seasonal(
    parameters: apb.AnalysisParameters,
    window: scan.ChunkScan,
    found: streaming.Extent,
    budget: Budget,
    dataset_periods_s: Sequence[int],
    on_cluster: DaskPasses | None = None,
) -> tuple[apb.AnomalyReport, str]:
    """The seasonal method in windows of a bounded number of cycles, read one at a time."""
    threshold = parameters.anomaly_threshold or seasonal.DEFAULT_SEASONAL_THRESHOLD
    max_points = streaming.in_memory_max_points(budget.memory_bytes)
    if parameters.seasonal_periods_seconds:
        periods = tuple(sorted({int(p) for p in parameters.seasonal_periods_seconds}))
        origin = seasonal.DECLARED
    elif dataset_periods_s:
        periods = tuple(sorted({int(p) for p in dataset_periods_s}))
        origin = seasonal.DECLARED_ON_DATASET
    else:
        # Detected on the first stretch of the window (three weeks, or what the budget holds).
        per_us = (found.count - 1) / max(found.last_us - found.first_us, 1)
        span = int(min(3 * max(seasonal.CANDIDATE_PERIODS_S) * 1_000_000, max_points / max(per_us, 1e-12)))
        ts, values = window.points_between(found.first_us, found.first_us + span)
        periods = tuple(seasonal.detect_periods(seasonal.regularise(ts, values)))
        origin = "detected" if periods else "none detected"
    windows, cycles = streaming.seasonal_windows(found, max_points, periods)
    if on_cluster is not None:
        part = on_cluster.seasonal(windows, threshold, periods)
    else:
        part = streaming.SeasonalPart((), 0, (), (), ())
        for w in windows:
            ts, values = window.points_between(w.read_lo, w.read_hi)
            part = part.merge(streaming.seasonal_window(w, ts, values, threshold, periods))
    events = sorted(part.events, key=lambda event: (-abs(event.score), event.peak_us))
    report = apb.AnomalyReport(
        method="seasonal",
        median=float(np.median(part.residual_medians)) if part.residual_medians else 0.0,
        mad=float(np.median(part.residual_mads)) if part.residual_mads else 0.0,
        threshold=threshold,
        scale_method="residual_mad",
        periods_seconds=list(periods),
        periods_origin=origin,
        regularization=_regularisations(part.regularisations),
        flagged_point_count=part.flagged,
    )
    shape = f"{cycles} cycles of {max(periods)} s" if periods else "a bounded number of points"
    note = (
        f"seasonal method in {len(windows)} windows of {shape}, each read with a margin on both sides "
        "and scored on its own robust scale; median and MAD are the windows' medians"
    )
    return _with_events(report, tuple(events)), note


def _regularisations(descriptions: tuple[str, ...]) -> str:
    distinct: Iterator[str] = iter(dict.fromkeys(descriptions))
    first = next(distinct, "")
    rest = sum(1 for _ in distinct)
    return first if not rest else f"{first} (and {rest} other ways in other windows)"


def chart_series(
    result_kind: int,
    parameters: apb.AnalysisParameters,
    output: apb.ResultOutput,
    dataset_id: str,
    start_us: int,
    end_us: int,
    max_points: int,
    budget: Budget,
) -> apb.ResultSeries:
    """``compute.chart_series`` of the dataset's points in ``[start_us, end_us)``, in bounded
    memory: a window over the budget is read in batches, keeping each bucket's minimum and
    maximum point as they pass (the same points ``compute.downsample_indices`` keeps), and
    for a trend result read again for the moving average and EWMA at those points."""
    with scan.window_scan(dataset_id, start_us, end_us) as window:
        small = window.index.points <= streaming.in_memory_max_points(budget.memory_bytes)
        if not small:
            found = extent(window)
            if found is not None and found.count > max_points > 0:
                return _chart_over_chunks(result_kind, parameters, output, window, found.count, max_points, budget)
    timestamps, values = point_store.load_points(dataset_id, start_us, end_us)
    return compute.chart_series(result_kind, parameters, output, timestamps, values, max_points)


def _chart_over_chunks(
    result_kind: int,
    parameters: apb.AnalysisParameters,
    output: apb.ResultOutput,
    window: scan.ChunkScan,
    n: int,
    max_points: int,
    budget: Budget,
) -> apb.ResultSeries:
    buckets = max(1, max_points // 2)
    size = -(-n // buckets)
    low = np.full(buckets, np.inf)
    high = np.full(buckets, -np.inf)
    low_at = np.full(buckets, -1, np.int64)
    high_at = np.full(buckets, -1, np.int64)
    stamps: dict[int, int] = {}
    kept_values: dict[int, float] = {}
    batch = streaming.batch_points(budget.memory_bytes)
    offset = 0
    for ts, values in window.batches(batch):
        # Each bucket's piece of this batch: its first minimum and maximum (earliest on ties).
        first_bucket, last_bucket = offset // size, (offset + ts.size - 1) // size
        for bucket in range(first_bucket, last_bucket + 1):
            a = max(bucket * size - offset, 0)
            b = min((bucket + 1) * size - offset, ts.size)
            i, j = a + int(np.argmin(values[a:b])), a + int(np.argmax(values[a:b]))
            if values[i] < low[bucket]:
                low[bucket], low_at[bucket] = values[i], offset + i
                stamps[offset + i], kept_values[offset + i] = int(ts[i]), float(values[i])
            if values[j] > high[bucket]:
                high[bucket], high_at[bucket] = values[j], offset + j
                stamps[offset + j], kept_values[offset + j] = int(ts[j]), float(values[j])
        offset += ts.size
    picked = np.unique(np.concatenate([low_at[low_at >= 0], high_at[high_at >= 0]]))[:max_points]
    series = apb.ResultSeries(source_point_count=n)
    kept_ts = np.array([stamps[int(k)] for k in picked], np.int64)
    series.timestamps_us.extend(kept_ts.tolist())
    series.values.extend(kept_values[int(k)] for k in picked)
    if output.HasField("trend"):
        origin_us = output.trend.origin_time.seconds * 1_000_000 + output.trend.origin_time.nanos // 1000
        seconds = (kept_ts - origin_us).astype(np.float64) / 1e6
        series.trend.extend((output.trend.intercept + output.trend.slope_per_second * seconds).tolist())
    if result_kind == apb.ANALYSIS_KIND_TREND:
        means, smoothed = _smoothed_at(window, batch, picked, parameters, n)
        series.moving_average.extend(means.tolist())
        series.ewma.extend(smoothed.tolist())
    return series


def _smoothed_at(
    window: scan.ChunkScan, batch: int, picked: np.ndarray, parameters: apb.AnalysisParameters, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The moving average and EWMA (as compute.chart_series: NaN before a full window) at the
    points ``picked`` (global indices), in one more pass: each batch with the last
    ``window - 1`` values before it, and the EWMA's last value carried."""
    size = min(parameters.moving_average_window or compute.DEFAULT_MOVING_AVERAGE_WINDOW, n)
    alpha = parameters.ewma_alpha or compute.DEFAULT_EWMA_ALPHA
    means = np.full(picked.size, np.nan)
    smoothed = np.empty(picked.size)
    carry = np.empty(0, np.float64)
    last: float | None = None
    offset = 0
    for _, values in window.batches(batch):
        joined = np.concatenate([carry, values])
        first_end = offset - carry.size + size - 1  # the point the first mean of ``joined`` ends at
        if joined.size >= size:
            part = numeric.moving_average(joined, size)
            inside = (picked >= max(first_end, offset)) & (picked < offset + values.size)
            means[inside] = part[picked[inside] - first_end]
        carry = joined[joined.size - (size - 1) :] if size > 1 else carry
        if last is None:
            part = numeric.ewma(values, alpha)
        else:  # y[-1] is the previous batch's last value: the recursion goes on from it
            part = numeric.ewma(np.concatenate([[last], values]), alpha)[1:]
        last = float(part[-1])
        inside = (picked >= offset) & (picked < offset + values.size)
        smoothed[inside] = part[picked[inside] - offset]
        offset += values.size
    return means, smoothed
