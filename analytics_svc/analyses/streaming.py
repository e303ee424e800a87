"""Analyses over a window of chunks in bounded memory: partial results that merge.

A big window is never loaded whole. Its points are read in time order a
bounded batch at a time (``points.scan``), and each pass over them reduces
every batch to a small partial result; partials merge into the window's
result. The merges are the same whether the batches are folded one after
another in this process or reduced on a Dask cluster part by part
(``analyses.distributed``), so both give the same numbers.

Exact (equal to the in-memory computation up to float rounding):

- count, mean, population std, min, max: Chan et al.'s pairwise merge of
  (count, mean, M2), the numerically stable form of Welford's update;
- the least-squares trend (slope, intercept, r²): co-moments of (seconds, value)
  merged the same way;
- the trend's Newey-West (HAC) standard error, interval and p-value: a second
  pass with the fitted line sums the score products at lags up to L, carrying
  the L first and last points of each part so products across a part edge are
  counted once;
- the histogram: fixed edges from the window's exact minimum and maximum
  (found from the chunk summaries, decoding only the chunks the window cuts),
  counts added;
- the correlation: co-moments of the values at common timestamps, found by a
  merge-join of the two datasets' batches in time order.

Approximate, with a stated error: quantiles, and the median and MAD of the
global anomaly method, from Apache DataSketches KLL sketches
(:data:`SKETCH_K`; normalized rank error :data:`QUANTILE_RANK_ERROR` with 99%
confidence: the returned value's rank is within that fraction of the count of
the rank asked for). Anomaly events are then exact for that median and MAD.

The seasonal method decomposes the window in windows of a bounded number of
cycles, each read with a margin of one cycle on both sides and scored on its
core: approximate (each window has its own fit and robust scale).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import datasketches
import numpy as np
import numpy.typing as npt
from scipy import stats

from analytics_svc.analyses import numeric, seasonal

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Batch = tuple[IntArray, FloatArray]

# KLL sketch size: about 6,000 retained values (~48 KB serialized) at any count.
SKETCH_K = 2000
QUANTILE_RANK_ERROR = float(datasketches.kll_doubles_sketch.get_normalized_rank_error(SKETCH_K, False))
# Memory per point while a batch is reduced: the decoded arrays (16 B), the
# COPY buffer it came in, and the temporaries of the reductions (centred
# values, histogram bins, HAC scores and lag products).
BATCH_BYTES_PER_POINT = 160
# Memory per point of the in-memory path: the loaded arrays plus what
# STL/MSTL, the HAC fit and the anomaly scoring allocate for each point.
IN_MEMORY_BYTES_PER_POINT = 200
_MAD_SCALE = 0.6745
_MEAN_AD_SCALE = 1.253314
_Z95 = float(stats.norm.ppf(0.975))


def in_memory_max_points(memory_bytes: int) -> int:
    """The most points a window may hold to be analysed in memory within ``memory_bytes``."""
    return memory_bytes // IN_MEMORY_BYTES_PER_POINT


def batch_points(memory_bytes: int) -> int:
    """Points per batch of a chunked analysis within ``memory_bytes`` (at least one chunk is read anyway)."""
    return max(1, memory_bytes // BATCH_BYTES_PER_POINT)


# --- merging partial results ---------------------------------------------------------


@dataclass(frozen=True)
class Moments:
    """Count, mean, sum of squared deviations (M2), minimum and maximum of values."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    @classmethod
    def of(cls, values: FloatArray) -> Moments:
        if values.size == 0:
            return cls()
        mean = float(values.mean())
        centred = values - mean
        return cls(int(values.size), mean, float(np.dot(centred, centred)), float(values.min()), float(values.max()))

    def merge(self, other: Moments) -> Moments:
        """The moments of both sets of values (Chan, Golub and LeVeque's pairwise update)."""
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / n
        m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / n
        return Moments(n, mean, m2, min(self.min, other.min), max(self.max, other.max))

    @property
    def std(self) -> float:
        """Population standard deviation (ddof=0)."""
        return math.sqrt(max(self.m2, 0.0) / self.count) if self.count else 0.0


@dataclass(frozen=True)
class CoMoments:
    """Count, means and co-moments of pairs (x, y): the sums a least-squares line and Pearson r need."""

    count: int = 0
    mean_x: float = 0.0
    mean_y: float = 0.0
    sxx: float = 0.0
    sxy: float = 0.0
    syy: float = 0.0

    @classmethod
    def of(cls, x: FloatArray, y: FloatArray) -> CoMoments:
        if x.size == 0:
            return cls()
        mx, my = float(x.mean()), float(y.mean())
        xc, yc = x - mx, y - my
        return cls(int(x.size), mx, my, float(np.dot(xc, xc)), float(np.dot(xc, yc)), float(np.dot(yc, yc)))

    def merge(self, other: CoMoments) -> CoMoments:
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        n = self.count + other.count
        dx, dy = other.mean_x - self.mean_x, other.mean_y - self.mean_y
        weight = self.count * other.count / n
        return CoMoments(
            n,
            self.mean_x + dx * other.count / n,
            self.mean_y + dy * other.count / n,
            self.sxx + other.sxx + dx * dx * weight,
            self.sxy + other.sxy + dx * dy * weight,
            self.syy + other.syy + dy * dy * weight,
        )


class QuantileSketch:
    """A KLL sketch of values (Apache DataSketches) that pickles (for Dask) and merges."""

    def __init__(self, sketch: Any | None = None) -> None:
        self.sketch = sketch if sketch is not None else datasketches.kll_doubles_sketch(SKETCH_K)

    @classmethod
    def of(cls, values: FloatArray) -> QuantileSketch:
        made = cls()
        if values.size:
            made.sketch.update(np.ascontiguousarray(values, dtype=np.float64))
        return made

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        merged = datasketches.kll_doubles_sketch.deserialize(self.sketch.serialize())
        merged.merge(other.sketch)
        return QuantileSketch(merged)

    @property
    def count(self) -> int:
        return int(self.sketch.n)

    def quantile(self, level: float) -> float:
        return float(self.sketch.get_quantile(level))

    def __getstate__(self) -> bytes:
        return bytes(self.sketch.serialize())

    def __setstate__(self, state: bytes) -> None:
        self.sketch = datasketches.kll_doubles_sketch.deserialize(state)


@dataclass(frozen=True)
class AbsDeviations:
    """|x - centre| of values: their sketch (for the MAD) and their sum (for the mean absolute deviation)."""

    sketch: QuantileSketch
    total: float

    def merge(self, other: AbsDeviations) -> AbsDeviations:
        return AbsDeviations(self.sketch.merge(other.sketch), self.total + other.total)


@dataclass(frozen=True)
class HacSums:
    """Newey-West sums of a least-squares line's scores z_t = (e_t, x_t e_t) over consecutive points.

    ``gram`` is sum z_t z_t'; ``lagged[l - 1]`` is sum z_t z_{t-l}' for l = 1..L
    over pairs inside the points seen; ``head`` and ``tail`` are the first and
    last (up to) L scores, so a merge adds the pairs across the edge.
    """

    count: int
    gram: FloatArray  # 2 x 2
    lagged: FloatArray  # L x 2 x 2
    head: FloatArray  # <= L x 2
    tail: FloatArray  # <= L x 2

    @classmethod
    def of(cls, scores: FloatArray, lags: int) -> HacSums:
        lagged = np.zeros((lags, 2, 2))
        n = scores.shape[0]
        for lag in range(1, min(lags, n - 1) + 1):
            lagged[lag - 1] = scores[lag:].T @ scores[:-lag]
        return cls(n, scores.T @ scores, lagged, scores[:lags].copy(), scores[max(0, n - lags) :].copy())

    def merge(self, other: HacSums) -> HacSums:
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        lags = self.lagged.shape[0]
        lagged = self.lagged + other.lagged
        joint = np.concatenate([self.tail, other.head])
        edge = self.tail.shape[0]
        for lag in range(1, lags + 1):
            # pairs (i, i - lag) with i in other's head and i - lag in self's tail
            lo, hi = max(edge, lag), min(joint.shape[0], edge + lag)
            if lo < hi:
                lagged[lag - 1] += joint[lo:hi].T @ joint[lo - lag : hi - lag]
        head = self.head if self.count >= lags else np.concatenate([self.head, other.head])[:lags]
        tail = other.tail if other.count >= lags else np.concatenate([self.tail, other.tail])[-lags:]
        return HacSums(self.count + other.count, self.gram + other.gram, lagged, head, tail)

    def long_run_variance(self) -> FloatArray:
        """Newey-West's S = gram + sum_l (1 - l / (L + 1)) (C_l + C_l'), Bartlett weights."""
        lags = self.lagged.shape[0]
        s = self.gram.copy()
        for lag in range(1, lags + 1):
            c = self.lagged[lag - 1]
            s += (1 - lag / (lags + 1)) * (c + c.T)
        return s


# Anomaly events of a part: one row per event, positions counted from the part's first point.
_EVENT_FIELDS = [
    ("start_pos", np.int64), ("end_pos", np.int64), ("start_us", np.int64), ("end_us", np.int64),
    ("peak_pos", np.int64), ("peak_us", np.int64), ("peak_value", np.float64), ("score", np.float64),
    ("points", np.int64),
]  # fmt: skip
EVENT_DTYPE = np.dtype(_EVENT_FIELDS)


def events_of_flagged(positions: IntArray, ts: IntArray, values: FloatArray, scores: FloatArray,
                      gap_steps: int) -> np.ndarray:  # fmt: skip
    """Flagged points (sorted positions) merged into events as ``seasonal.merge_events`` does:
    positions at most ``gap_steps`` apart are one event, peaked at its largest |score| (earliest on ties)."""
    events = np.zeros(0, EVENT_DTYPE)
    if positions.size == 0:
        return events
    starts = np.concatenate([[0], np.flatnonzero(np.diff(positions) > gap_steps) + 1])
    ends = np.concatenate([starts[1:], [positions.size]])
    segment = np.repeat(np.arange(starts.size), ends - starts)
    order = np.lexsort((positions, -np.abs(scores), segment))
    first_of_segment = np.concatenate([[True], segment[order][1:] != segment[order][:-1]])
    peaks = order[first_of_segment]
    events = np.zeros(starts.size, EVENT_DTYPE)
    events["start_pos"], events["end_pos"] = positions[starts], positions[ends - 1]
    events["start_us"], events["end_us"] = ts[starts], ts[ends - 1]
    events["peak_pos"], events["peak_us"] = positions[peaks], ts[peaks]
    events["peak_value"], events["score"] = values[peaks], scores[peaks]
    events["points"] = ends - starts
    return events


def merge_events(left: np.ndarray, left_count: int, right: np.ndarray, gap_steps: int) -> np.ndarray:
    """Events of two consecutive parts (``right``'s positions after ``left_count`` points),
    the last of ``left`` and the first of ``right`` fused when they are near."""
    right = right.copy()
    for name in ("start_pos", "end_pos", "peak_pos"):
        right[name] += left_count
    if left.size and right.size and right["start_pos"][0] - left["end_pos"][-1] <= gap_steps:
        a, b = left[-1].copy(), right[0]
        if abs(b["score"]) > abs(a["score"]):
            for name in ("peak_pos", "peak_us", "peak_value", "score"):
                a[name] = b[name]
        a["end_pos"], a["end_us"], a["points"] = b["end_pos"], b["end_us"], a["points"] + b["points"]
        return np.concatenate([left[:-1], a[np.newaxis], right[1:]])
    return np.concatenate([left, right])


# --- one pass: what to compute from each batch, and the partial result --------------------


@dataclass(frozen=True)
class Flagging:
    """Global-method scoring: |x - centre| > threshold * scale is flagged with score (x - centre) / scale."""

    centre: float
    scale: float
    threshold: float


@dataclass(frozen=True)
class HacLine:
    """The fitted line of pass 1, for the scores of pass 2 (x in seconds since ``ref_us``)."""

    ref_us: int
    mean_x: float
    mean_y: float
    slope: float
    lags: int


@dataclass(frozen=True)
class PassSpec:
    """What one pass over the window computes; picklable (Dask ships it to the parts)."""

    batch_points: int
    moments: bool = False
    sketch: bool = False
    histogram: tuple[int, float, float] | None = None  # bins, low, high
    trend_ref_us: int | None = None
    abs_deviation_from: float | None = None
    hac: HacLine | None = None
    flagging: Flagging | None = None


@dataclass
class PassResult:
    """The partial result of a pass over some consecutive points; ``merge`` in time order."""

    count: int = 0
    moments: Moments | None = None
    sketch: QuantileSketch | None = None
    histogram: IntArray | None = None
    trend: CoMoments | None = None
    abs_deviations: AbsDeviations | None = None
    hac: HacSums | None = None
    events: np.ndarray | None = None
    flagged: int = 0

    def merge(self, other: PassResult) -> PassResult:
        """This part followed by ``other`` (the next points in time)."""

        def both(a: Any, b: Any) -> Any:
            return b if a is None else a if b is None else a.merge(b)

        histogram = other.histogram if self.histogram is None else self.histogram if other.histogram is None \
            else self.histogram + other.histogram  # fmt: skip
        events = other.events
        if self.events is not None and other.events is not None:
            events = merge_events(self.events, self.count, other.events, seasonal.EVENT_GAP_STEPS)
        elif self.events is not None:
            events = self.events
        return PassResult(
            count=self.count + other.count,
            moments=both(self.moments, other.moments),
            sketch=both(self.sketch, other.sketch),
            histogram=histogram,
            trend=both(self.trend, other.trend),
            abs_deviations=both(self.abs_deviations, other.abs_deviations),
            hac=both(self.hac, other.hac),
            events=events,
            flagged=self.flagged + other.flagged,
        )


def reduce_batch(spec: PassSpec, ts: IntArray, values: FloatArray) -> PassResult:
    """The partial result of one batch of consecutive points."""
    result = PassResult(count=int(values.size))
    if spec.moments:
        result.moments = Moments.of(values)
    if spec.sketch:
        result.sketch = QuantileSketch.of(values)
    if spec.histogram is not None:
        bins, low, high = spec.histogram
        # The same range for every batch: each value falls in the bin it does in one np.histogram call.
        result.histogram = np.histogram(values, bins=bins, range=(low, high))[0].astype(np.int64)
    if spec.trend_ref_us is not None:
        result.trend = CoMoments.of(_seconds(ts, spec.trend_ref_us), values)
    if spec.abs_deviation_from is not None:
        deviation = np.abs(values - spec.abs_deviation_from)
        result.abs_deviations = AbsDeviations(QuantileSketch.of(deviation), float(deviation.sum()))
    if spec.hac is not None:
        line = spec.hac
        xc = _seconds(ts, line.ref_us) - line.mean_x
        residual = values - line.mean_y - line.slope * xc
        result.hac = HacSums.of(np.column_stack([residual, xc * residual]), line.lags)
    if spec.flagging is not None:
        f = spec.flagging
        hits = np.flatnonzero(np.abs(values - f.centre) > f.threshold * f.scale)
        scores = (values[hits] - f.centre) / f.scale
        result.events = events_of_flagged(hits.astype(np.int64), ts[hits], values[hits], scores,
                                          seasonal.EVENT_GAP_STEPS)  # fmt: skip
        result.flagged = int(hits.size)
    return result


def reduce_batches(spec: PassSpec, batches: Iterable[Batch]) -> PassResult:
    """The partial result of consecutive batches, folded in time order."""
    result = PassResult()
    for ts, values in batches:
        result = result.merge(reduce_batch(spec, ts, values))
    return result


def _seconds(ts: IntArray, ref_us: int) -> FloatArray:
    return (ts - ref_us).astype(np.float64) / numeric.MICROSECONDS_PER_SECOND


# --- where passes run ----------------------------------------------------------------


class PassRunner(Protocol):
    """Runs one pass over the whole window and returns its merged partial result."""

    def __call__(self, spec: PassSpec) -> PassResult: ...


@dataclass(frozen=True)
class Extent:
    """The window's exact count, first and last timestamp, minimum and maximum."""

    count: int
    first_us: int
    last_us: int
    min: float
    max: float


def in_process(batches: Callable[[int], Iterator[Batch]]) -> PassRunner:
    """A runner that folds ``batches(batch_points)`` (the window in time order) in this process."""

    def run(spec: PassSpec) -> PassResult:
        return reduce_batches(spec, batches(spec.batch_points))

    return run


# --- the analyses ----------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """The numbers of a chunked analysis, as numeric.py's types, and how exact they are."""

    summary: numeric.Summary | None = None
    quantiles: numeric.Quantiles | None = None
    histogram: numeric.Histogram | None = None
    trend: numeric.Trend | None = None
    uncertainty: numeric.TrendUncertainty | None = None
    anomalies: GlobalAnomalies | None = None
    approximate: list[str] = field(default_factory=list)
    passes: int = 0


@dataclass(frozen=True)
class GlobalAnomalies:
    """The global method's figures and events over chunks."""

    median: float
    mad: float
    threshold: float
    scale_method: str
    scale: float
    flagged: int
    events: tuple[seasonal.AnomalyEvent, ...]


def analyse(
    run_pass: PassRunner,
    extent: Extent,
    batch: int,
    *,
    summary: bool,
    trend: bool,
    global_anomalies: bool,
    quantile_levels: Sequence[float] = numeric.DEFAULT_QUANTILES,
    histogram_bins: int = 10,
    anomaly_threshold: float = numeric.DEFAULT_ANOMALY_THRESHOLD,
) -> Figures:
    """Summary/quantiles/histogram, trend with its uncertainty and global anomalies of a window,
    in at most three passes (the second and third only for what needs the first's results)."""
    base = PassSpec(batch_points=batch)
    first = replace(
        base,
        moments=summary,
        sketch=summary or global_anomalies,
        histogram=(histogram_bins, extent.min, extent.max) if summary else None,
        trend_ref_us=extent.first_us if trend else None,
    )
    p1 = run_pass(first)
    passes = 1
    approximate: list[str] = []
    out: dict[str, Any] = {}
    if summary:
        m = p1.moments
        assert m is not None and p1.sketch is not None and p1.histogram is not None
        out["summary"] = numeric.Summary(count=m.count, mean=m.mean, std=m.std, min=m.min, max=m.max)
        levels = tuple(float(q) for q in quantile_levels)
        out["quantiles"] = numeric.Quantiles(levels, tuple(p1.sketch.quantile(q) for q in levels))
        edges = np.histogram_bin_edges(np.array([extent.min, extent.max]), bins=histogram_bins)
        out["histogram"] = numeric.Histogram(counts=p1.histogram, edges=edges)
        approximate.append("quantiles")
    line = None
    if trend:
        t = p1.trend
        assert t is not None
        slope = t.sxy / t.sxx
        origin_x = 0.0  # the first point is the reference
        intercept = t.mean_y + slope * (origin_x - t.mean_x)
        r_squared = 1.0 if t.syy == 0.0 else min(1.0, (t.sxy * t.sxy) / (t.sxx * t.syy))
        out["trend"] = numeric.Trend(slope, intercept, r_squared, extent.first_us, t.count)
        if t.count >= 3:
            lags = int(4 * (t.count / 100) ** (2 / 9))
            line = HacLine(extent.first_us, t.mean_x, t.mean_y, slope, lags)
            if extent.min == extent.max:
                out["uncertainty"] = numeric.TrendUncertainty(0.0, 0.0, 0.0, 1.0, lags)
                line = None
    median = p1.sketch.quantile(0.5) if global_anomalies and p1.sketch is not None else None
    if line is not None or median is not None:
        p2 = run_pass(replace(base, hac=line, abs_deviation_from=median))
        passes += 1
        if line is not None:
            assert p2.hac is not None and p1.trend is not None
            out["uncertainty"] = _uncertainty(p2.hac, p1.trend.sxx, line)
        if median is not None:
            assert p2.abs_deviations is not None
            found = _flag_globally(run_pass, base, p2.abs_deviations, median, p2.count, anomaly_threshold)
            passes += 1 if found.scale_method != "constant" else 0
            out["anomalies"] = found
            approximate.append("anomaly median and MAD")
    return Figures(**out, approximate=approximate, passes=passes)


def _uncertainty(hac: HacSums, sxx: float, line: HacLine) -> numeric.TrendUncertainty:
    """As numeric.trend_uncertainty: OLS on [1, x - mean x], HAC covariance without
    small-sample correction, normal quantiles."""
    s = hac.long_run_variance()
    variance = float(s[1, 1]) / (sxx * sxx)
    std_error = math.sqrt(max(variance, 0.0))
    slope = line.slope
    if not math.isfinite(std_error) or std_error == 0.0:
        return numeric.TrendUncertainty(0.0, slope, slope, 1.0 if slope == 0.0 else 0.0, line.lags)
    z = slope / std_error
    p_value = float(2 * stats.norm.sf(abs(z)))
    return numeric.TrendUncertainty(
        std_error, slope - _Z95 * std_error, slope + _Z95 * std_error, p_value, line.lags
    )


def _flag_globally(run_pass: PassRunner, base: PassSpec, deviations: AbsDeviations, median: float,
                   count: int, threshold: float) -> GlobalAnomalies:  # fmt: skip
    mad = deviations.sketch.quantile(0.5)
    if mad > 0:
        scale, method = mad / _MAD_SCALE, "mad"
    else:
        mean_ad = deviations.total / count
        if mean_ad == 0:
            return GlobalAnomalies(median, 0.0, threshold, "constant", 0.0, 0, ())
        scale, method = _MEAN_AD_SCALE * mean_ad, "mean_absolute_deviation"
    p3 = run_pass(replace(base, flagging=Flagging(median, scale, threshold)))
    band = threshold * scale
    rows = p3.events if p3.events is not None else np.zeros(0, EVENT_DTYPE)
    events = [
        seasonal.AnomalyEvent(
            start_us=int(e["start_us"]), end_us=int(e["end_us"]), peak_us=int(e["peak_us"]),
            peak_value=float(e["peak_value"]), expected=median, lower=median - band, upper=median + band,
            score=float(e["score"]), point_count=int(e["points"]),
        )  # fmt: skip
        for e in rows
    ]
    events.sort(key=lambda event: (-abs(event.score), event.peak_us))
    return GlobalAnomalies(median, mad, threshold, method, scale, p3.flagged, tuple(events))


# --- correlation: a merge-join of two windows ----------------------------------------------


def correlate(batches_a: Iterator[Batch], batches_b: Iterator[Batch]) -> numeric.Correlation:
    """Pearson r of two series at their common timestamps, joining their batches in time order."""
    co = CoMoments()
    pending_a: Batch | None = next(batches_a, None)
    pending_b: Batch | None = next(batches_b, None)
    while pending_a is not None and pending_b is not None:
        ts_a, vs_a = pending_a
        ts_b, vs_b = pending_b
        # Both batches are complete up to the earlier of their last timestamps.
        upto = min(int(ts_a[-1]), int(ts_b[-1]))
        cut_a = int(np.searchsorted(ts_a, upto, side="right"))
        cut_b = int(np.searchsorted(ts_b, upto, side="right"))
        _, index_a, index_b = np.intersect1d(ts_a[:cut_a], ts_b[:cut_b], assume_unique=True, return_indices=True)
        co = co.merge(CoMoments.of(vs_a[index_a], vs_b[index_b]))
        pending_a = (ts_a[cut_a:], vs_a[cut_a:]) if cut_a < ts_a.size else next(batches_a, None)
        pending_b = (ts_b[cut_b:], vs_b[cut_b:]) if cut_b < ts_b.size else next(batches_b, None)
    if co.count < 2 or co.sxx == 0.0 or co.syy == 0.0:
        return numeric.Correlation(r=None, count=co.count)
    r = co.sxy / math.sqrt(co.sxx * co.syy)
    return numeric.Correlation(r=max(-1.0, min(1.0, r)), count=co.count)


# --- smoothing over batches ------------------------------------------------------------------


def moving_average_batches(batches: Iterable[FloatArray], window: int) -> Iterator[FloatArray]:
    """``numeric.moving_average`` of the concatenated batches, batch by batch: each batch
    is averaged with the last ``window - 1`` values before it (the overlap)."""
    carry = np.empty(0, np.float64)
    for values in batches:
        joined = np.concatenate([carry, values])
        if joined.size >= window:
            yield numeric.moving_average(joined, window)
        carry = joined[max(0, joined.size - (window - 1)) :] if window > 1 else carry


def ewma_batches(batches: Iterable[FloatArray], alpha: float) -> Iterator[FloatArray]:
    """``numeric.ewma`` of the concatenated batches, batch by batch (the last value carried)."""
    last: float | None = None
    for values in batches:
        if values.size == 0:
            continue
        if last is None:
            smoothed = numeric.ewma(values, alpha)
        else:
            # y[-1] is the previous batch's last value: one step of the recursion folds it in.
            smoothed = numeric.ewma(np.concatenate([[last], values]), alpha)[1:]
        last = float(smoothed[-1])
        yield smoothed


# --- the seasonal method, window by window ------------------------------------------------

# Cycles of the longest period in a window's core (the in-memory fit smooths
# each cycle's shape across up to 35; 8 keep a window small and still robust).
SEASONAL_CORE_CYCLES = 8
# Without a cycle: a window's core is this share of the points a window may hold.
_NO_CYCLE_CORE_SHARE = 0.8


class SeasonalWindowFailed(Exception):
    """The seasonal method cannot run in windows this small; the message says why, for a user."""


@dataclass(frozen=True)
class SeasonalWindow:
    """Points read ``[read_lo, read_hi)``, events kept when their peak is in ``[core_lo, core_hi)``."""

    read_lo: int
    read_hi: int
    core_lo: int
    core_hi: int


def seasonal_windows(
    extent: Extent, max_window_points: int, periods_s: Sequence[int]
) -> tuple[list[SeasonalWindow], int]:
    """Windows covering the extent, each holding at most about ``max_window_points`` points
    (at the window's mean density): cores of up to SEASONAL_CORE_CYCLES cycles of the longest
    period, margins of one cycle on both sides; and the cycles per core."""
    span = max(extent.last_us - extent.first_us, 1)
    per_us = (extent.count - 1) / span
    if periods_s:
        cycle = max(periods_s) * numeric.MICROSECONDS_PER_SECOND
        fit = int(max_window_points / max(cycle * per_us, 1e-12)) - 2
        if fit < 2:
            raise SeasonalWindowFailed(
                f"a window of two cycles of {max(periods_s)} s plus margins holds "
                f"{int(4 * cycle * per_us)} points, over the {max_window_points} the analysis memory "
                "(ANALYTICS_ANALYSIS_MEMORY_MB) allows; raise it, or use the global method"
            )
        cycles = min(SEASONAL_CORE_CYCLES, fit)
        core, margin = cycles * cycle, cycle
    else:
        cycles = 0
        core = max(int(_NO_CYCLE_CORE_SHARE * max_window_points / per_us), 1)
        margin = max(core // 10, 1)
    windows = []
    lo = extent.first_us
    while lo <= extent.last_us:
        hi = lo + core
        windows.append(SeasonalWindow(lo - margin, hi + margin, lo, hi))
        lo = hi
    # A short last core joins the one before (a decomposition needs cycles to fit).
    if len(windows) > 1 and extent.last_us - windows[-1].core_lo < core // 2:
        last, before = windows.pop(), windows.pop()
        windows.append(SeasonalWindow(before.read_lo, last.read_hi, before.core_lo, last.core_hi))
    return windows, cycles


@dataclass(frozen=True)
class SeasonalPart:
    """The seasonal method on some windows: events peaking in their cores, in time order of windows."""

    events: tuple[seasonal.AnomalyEvent, ...]
    flagged: int
    residual_medians: tuple[float, ...]
    residual_mads: tuple[float, ...]
    regularisations: tuple[str, ...]

    def merge(self, other: SeasonalPart) -> SeasonalPart:
        return SeasonalPart(
            self.events + other.events,
            self.flagged + other.flagged,
            self.residual_medians + other.residual_medians,
            self.residual_mads + other.residual_mads,
            self.regularisations + other.regularisations,
        )


def seasonal_window(window: SeasonalWindow, ts: IntArray, values: FloatArray, threshold: float,
                    periods_s: Sequence[int]) -> SeasonalPart:  # fmt: skip
    """The seasonal method on one window's points with the given periods (none: no cycle);
    SeasonalFailed as ``seasonal.seasonal_anomalies``."""
    if ts.size == 0:
        return SeasonalPart((), 0, (), (), ())
    series = seasonal.regularise(ts, values)
    d = seasonal.decompose(series, tuple(periods_s))
    scores = d.residual / d.sigma
    grid = series.timestamps_us
    gap = seasonal.event_gap_steps(series, periods_s)  # as in memory: points less than a cycle apart are one event
    events = seasonal.merge_events(grid, series.values, d.expected, scores, threshold * d.sigma, threshold, gap)
    kept = tuple(e for e in events if window.core_lo <= e.peak_us < window.core_hi)
    return SeasonalPart(
        kept,
        sum(e.point_count for e in kept),
        (d.residual_median,),
        (d.residual_mad,),
        (series.description,),
    )
