"""Analyses of one dataset's points as pure, vectorised numpy functions.

Inputs are numpy arrays as the store loads them: timestamps as int64 epoch
microseconds (``datetime64`` of any unit is accepted and converted to
microseconds) and values as float64. Every function works on whole arrays
without Python loops over points, so it runs on millions of points; take a time
window first with :func:`window` to analyse part of a dataset.

Conventions shared by all functions:

- Timestamps must be strictly increasing (the order the store returns them in).
  Unsorted or duplicate timestamps are rejected, not sorted: sorting would hide
  a loading bug, and duplicates make windows and alignment ambiguous.
- Values must be finite; a NaN or infinity is rejected with its position, so
  NaNs never propagate silently into a result.
- Bad input raises :class:`mesh_runtime.errors.InvalidArgument` with one
  :class:`FieldViolation` naming the offending argument.
- Time in results is epoch microseconds (``int``); rates (trend slope) are per
  second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mesh_runtime.errors import InvalidArgument

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MICROSECONDS_PER_SECOND = 1_000_000
DEFAULT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
DEFAULT_ANOMALY_THRESHOLD = 3.5
# 0.6745 is the 0.75 quantile of the standard normal: MAD/0.6745 estimates sigma.
_MAD_SCALE = 0.6745
# Iglewicz & Hoaglin's fallback when MAD is 0: mean absolute deviation * sqrt(pi/2)
# estimates sigma for normal data.
_MEAN_AD_SCALE = 1.253314
# EWMA weights below this are dropped: their contribution is under float64
# rounding relative to the largest value.
_EWMA_NEGLIGIBLE_WEIGHT = 1e-18


_invalid = InvalidArgument.for_field


# --- validation -------------------------------------------------------------------


def _as_values(values: npt.ArrayLike, field: str = "values", *, min_count: int = 1) -> FloatArray:
    """``values`` as a 1-d float64 array, checked finite and at least ``min_count`` long."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise _invalid(field, f"must be one-dimensional, got {array.ndim} dimensions")
    if array.size < min_count:
        raise _invalid(field, f"needs at least {min_count} point(s), got {array.size}")
    finite = np.isfinite(array)
    if not finite.all():
        index = int(np.argmin(finite))
        raise _invalid(field, f"value at index {index} is not finite ({array[index]})")
    return array


def _as_timestamps(timestamps: npt.ArrayLike, field: str = "timestamps") -> IntArray:
    """``timestamps`` as 1-d int64 epoch microseconds, checked strictly increasing."""
    array = np.asarray(timestamps)
    if np.issubdtype(array.dtype, np.datetime64):
        if np.isnat(array).any():
            raise _invalid(field, "contains NaT")
        array = array.astype("datetime64[us]").view(np.int64)
    elif array.size and not np.issubdtype(array.dtype, np.integer):
        raise _invalid(field, f"must be int64 epoch microseconds or datetime64, got {array.dtype}")
    array = array.astype(np.int64, copy=False)
    if array.ndim != 1:
        raise _invalid(field, f"must be one-dimensional, got {array.ndim} dimensions")
    if array.size > 1:
        increasing = array[1:] > array[:-1]
        if not increasing.all():
            index = int(np.argmin(increasing)) + 1
            raise _invalid(field, f"must be strictly increasing; index {index} is not after index {index - 1}")
    return array


def _as_series(
    timestamps: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    min_count: int = 1,
    ts_field: str = "timestamps",
    values_field: str = "values",
) -> tuple[IntArray, FloatArray]:
    ts = _as_timestamps(timestamps, ts_field)
    vs = _as_values(values, values_field, min_count=0)
    if ts.size != vs.size:
        raise _invalid(values_field, f"has {vs.size} points but {ts_field} has {ts.size}")
    if vs.size < min_count:
        raise _invalid(values_field, f"needs at least {min_count} point(s), got {vs.size}")
    return ts, vs


def _as_instant(instant: int | np.datetime64 | None, field: str) -> int | None:
    if instant is None:
        return None
    if isinstance(instant, np.datetime64):
        if np.isnat(instant):
            raise _invalid(field, "is NaT")
        return int(instant.astype("datetime64[us]").astype(np.int64))
    if isinstance(instant, bool) or not isinstance(instant, int | np.integer):
        raise _invalid(field, "must be epoch microseconds (int) or numpy.datetime64")
    return int(instant)


# --- windows -------------------------------------------------------------------------


def window(
    timestamps: npt.ArrayLike,
    values: npt.ArrayLike,
    start: int | np.datetime64 | None = None,
    end: int | np.datetime64 | None = None,
) -> tuple[IntArray, FloatArray]:
    """The points with ``start <= timestamp < end`` (either bound may be open).

    Bounds are epoch microseconds or ``datetime64``. Returns views into the
    inputs (no copy), found by binary search on the sorted timestamps.
    """
    ts, vs = _as_series(timestamps, values)
    lo = _as_instant(start, "start")
    hi = _as_instant(end, "end")
    if lo is not None and hi is not None and lo > hi:
        raise _invalid("end", f"must not be before start ({hi} < {lo})")
    first = 0 if lo is None else int(np.searchsorted(ts, lo, side="left"))
    stop = ts.size if hi is None else int(np.searchsorted(ts, hi, side="left"))
    return ts[first:stop], vs[first:stop]


# --- summary, quantiles, histogram ------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Count, mean, population standard deviation (ddof=0), minimum and maximum."""

    count: int
    mean: float
    std: float
    min: float
    max: float


def summary(values: npt.ArrayLike) -> Summary:
    """Summary statistics of at least one value; ``std`` is the population std (0 for one point)."""
    vs = _as_values(values)
    mean = float(vs.mean())
    # Two-pass (centred) variance: stable for values with a large common offset.
    centred = vs - mean
    std = math.sqrt(float(np.dot(centred, centred)) / vs.size)
    return Summary(count=int(vs.size), mean=mean, std=std, min=float(vs.min()), max=float(vs.max()))


@dataclass(frozen=True)
class Quantiles:
    """Quantile levels and the values at them, in the order asked for."""

    levels: tuple[float, ...]
    values: tuple[float, ...]

    def as_dict(self) -> dict[float, float]:
        """Level → value."""
        return dict(zip(self.levels, self.values, strict=True))


def quantiles(values: npt.ArrayLike, qs: Sequence[float] = DEFAULT_QUANTILES) -> Quantiles:
    """Quantiles by linear interpolation between order statistics (numpy's default, R type 7).

    These match ``statistics.quantiles(..., method="inclusive")`` cut points.
    """
    vs = _as_values(values)
    levels = np.asarray(qs, dtype=np.float64)
    if levels.ndim != 1 or levels.size == 0:
        raise _invalid("qs", "must be a non-empty sequence of levels")
    if not (np.isfinite(levels).all() and (levels >= 0).all() and (levels <= 1).all()):
        raise _invalid("qs", "every level must be within [0, 1]")
    result = np.quantile(vs, levels)
    return Quantiles(levels=tuple(float(q) for q in levels), values=tuple(float(v) for v in result))


@dataclass(frozen=True, eq=False)
class Histogram:
    """Counts per bin and the ``len(counts) + 1`` bin edges; the last bin includes its right edge."""

    counts: IntArray
    edges: FloatArray


def histogram(values: npt.ArrayLike, bins: int = 10, value_range: tuple[float, float] | None = None) -> Histogram:
    """Equal-width histogram over ``value_range`` (default: min to max of the values).

    Values outside an explicit ``value_range`` are not counted.
    """
    vs = _as_values(values)
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise _invalid("bins", f"must be an integer >= 1, got {bins!r}")
    if value_range is not None:
        low, high = (float(v) for v in value_range)
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise _invalid("value_range", f"must be finite with low <= high, got {value_range!r}")
        value_range = (low, high)
    counts, edges = np.histogram(vs, bins=int(bins), range=value_range)
    return Histogram(counts=counts.astype(np.int64, copy=False), edges=edges.astype(np.float64, copy=False))


# --- trend ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Trend:
    """Least-squares line ``value = intercept + slope * seconds_since(origin)``.

    ``slope`` is in value units per second; ``intercept`` is the fitted value at
    ``origin_us``, the first timestamp (epoch microseconds). ``r_squared`` is 1.0
    for a constant series, which the horizontal line fits exactly.
    """

    slope: float
    intercept: float
    r_squared: float
    origin_us: int
    count: int


def linear_trend(timestamps: npt.ArrayLike, values: npt.ArrayLike) -> Trend:
    """Ordinary least-squares trend of at least two points.

    x is seconds since the first timestamp, so large epoch values do not cost
    precision; sums are taken over centred x and y.
    """
    ts, vs = _as_series(timestamps, values, min_count=2)
    seconds = (ts - ts[0]).astype(np.float64) / MICROSECONDS_PER_SECOND
    x_mean = float(seconds.mean())
    y_mean = float(vs.mean())
    x_centred = seconds - x_mean
    y_centred = vs - y_mean
    sxx = float(np.dot(x_centred, x_centred))
    sxy = float(np.dot(x_centred, y_centred))
    syy = float(np.dot(y_centred, y_centred))
    slope = sxy / sxx  # sxx > 0: strictly increasing timestamps are distinct
    intercept = y_mean - slope * x_mean
    r_squared = 1.0 if syy == 0.0 else min(1.0, (sxy * sxy) / (sxx * syy))
    return Trend(slope=slope, intercept=intercept, r_squared=r_squared, origin_us=int(ts[0]), count=int(vs.size))


@dataclass(frozen=True)
class TrendUncertainty:
    """The slope's standard error, 95% confidence interval and p-value (per second)."""

    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    hac_lags: int

    @property
    def significant(self) -> bool:
        """Whether the 95% interval excludes a zero slope."""
        return self.ci_low > 0 or self.ci_high < 0


def trend_uncertainty(timestamps: npt.ArrayLike, values: npt.ArrayLike) -> TrendUncertainty:
    """The least-squares slope's uncertainty with a Newey-West (HAC) covariance,
    which stays honest when the noise is autocorrelated; at least three points.

    Lags follow Newey and West's rule ``floor(4 (n/100)^(2/9))``. A series the
    line fits exactly has a zero standard error; a constant one a p-value of 1.
    """
    ts, vs = _as_series(timestamps, values, min_count=3)
    from statsmodels.regression.linear_model import OLS  # noqa: PLC0415 - heavy import, only here

    lags = int(4 * (vs.size / 100) ** (2 / 9))
    if float(vs.max()) == float(vs.min()):
        return TrendUncertainty(0.0, 0.0, 0.0, 1.0, lags)
    seconds = (ts - ts[0]).astype(np.float64) / MICROSECONDS_PER_SECOND
    x = seconds - seconds.mean()
    design = np.column_stack([np.ones_like(x), x])
    fit = OLS(vs, design).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    slope = float(fit.params[1])
    std_error = float(fit.bse[1])
    if not math.isfinite(std_error) or std_error == 0.0:
        p_value = 1.0 if slope == 0.0 else 0.0
        return TrendUncertainty(0.0, slope, slope, p_value, lags)
    low, high = (float(v) for v in fit.conf_int(alpha=0.05)[1])
    return TrendUncertainty(std_error, low, high, float(fit.pvalues[1]), lags)


# --- smoothing -----------------------------------------------------------------------


def moving_average(values: npt.ArrayLike, window: int) -> FloatArray:
    """Trailing mean over ``window`` points; element i averages ``values[i : i + window]``.

    The result has ``len(values) - window + 1`` elements, aligned with
    ``timestamps[window - 1:]`` (each mean is stamped with its window's last
    point). Computed as differences of a cumulative sum of the mean-centred
    values, which keeps the running sum small for long series.
    """
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
        raise _invalid("window", f"must be an integer >= 1, got {window!r}")
    vs = _as_values(values, min_count=int(window))
    offset = float(vs.mean())
    running = np.empty(vs.size + 1, dtype=np.float64)
    running[0] = 0.0
    np.cumsum(vs - offset, out=running[1:])
    means = running[window:] - running[:-window]
    means /= window
    means += offset
    return means


def _smoothing_factor(alpha: float | None, span: float | None) -> float:
    if (alpha is None) == (span is None):
        raise _invalid("alpha", "give exactly one of alpha or span")
    if span is not None:
        if not (isinstance(span, int | float | np.number) and math.isfinite(span) and span >= 1):
            raise _invalid("span", f"must be a number >= 1, got {span!r}")
        return 2.0 / (float(span) + 1.0)
    assert alpha is not None
    if not (isinstance(alpha, int | float | np.number) and math.isfinite(alpha) and 0 < alpha <= 1):
        raise _invalid("alpha", f"must be in (0, 1], got {alpha!r}")
    return float(alpha)


def ewma(values: npt.ArrayLike, alpha: float | None = None, *, span: float | None = None) -> FloatArray:
    """Exponentially weighted moving average ``y[0] = x[0]``, ``y[i] = alpha*x[i] + (1-alpha)*y[i-1]``.

    Give ``alpha`` in (0, 1] or ``span`` >= 1 (``alpha = 2 / (span + 1)``), as in
    pandas' ``ewm(adjust=False)``. The result has one element per value.

    Method: the recursion is a linear scan, evaluated by recursive doubling
    (Hillis-Steele): after pass k each element holds the exact sum of its last
    2**k weighted terms, with weights (1-alpha)**j <= 1, so there is no growing
    scale factor and the error stays at a few ulps for any length. Passes stop
    once the next weight (1-alpha)**(2**k) is below 1e-18, where older terms no
    longer change a float64 result: about log2(40/alpha) passes.
    """
    factor = _smoothing_factor(alpha, span)
    vs = _as_values(values)
    return _ewma_scan(vs, factor)


def _ewma_scan(values: FloatArray, alpha: float) -> FloatArray:
    result = values * alpha
    result[0] = values[0]
    decay = 1.0 - alpha
    shift = 1
    while shift < result.size and decay >= _EWMA_NEGLIGIBLE_WEIGHT:
        # The right-hand side is evaluated into a temporary before the in-place add,
        # so every element reads the previous pass's values.
        result[shift:] += decay * result[:-shift]
        decay *= decay
        shift *= 2
    return result


# --- anomalies -----------------------------------------------------------------------


@dataclass(frozen=True)
class Anomaly:
    """A point whose robust z-score exceeds the threshold in absolute value."""

    timestamp_us: int
    value: float
    score: float


@dataclass(frozen=True)
class AnomalyReport:
    """The robust centre and spread used, the threshold, and the anomalies in time order.

    ``scale_method`` says which spread scaled the scores: ``"mad"`` (the modified
    z-score ``0.6745 * (x - median) / MAD``), ``"mean_absolute_deviation"`` (used
    when MAD is 0: ``(x - median) / (1.253314 * mean|x - median|)``), or
    ``"constant"`` (every value equals the median: no anomalies, all scores 0).
    """

    median: float
    mad: float
    threshold: float
    scale_method: str
    anomalies: tuple[Anomaly, ...]
    # The spread that divides ``x - median`` into a score (0 for a constant series).
    scale: float = 0.0


def robust_anomalies(
    timestamps: npt.ArrayLike, values: npt.ArrayLike, threshold: float = DEFAULT_ANOMALY_THRESHOLD
) -> AnomalyReport:
    """Points whose modified z-score (Iglewicz & Hoaglin) has ``|score| > threshold``.

    Median and MAD resist the outliers being looked for, unlike mean and std.
    When more than half the values equal the median, MAD is 0; the score then
    falls back to the mean absolute deviation from the median (see
    :class:`AnomalyReport`).
    """
    if not (isinstance(threshold, int | float | np.number) and math.isfinite(threshold) and threshold > 0):
        raise _invalid("threshold", f"must be a finite number > 0, got {threshold!r}")
    ts, vs = _as_series(timestamps, values, min_count=1)
    median = float(np.median(vs))
    deviation = np.abs(vs - median)
    mad = float(np.median(deviation))
    if mad > 0:
        scale, method = mad / _MAD_SCALE, "mad"
    else:
        mean_ad = float(deviation.mean())
        if mean_ad == 0:
            return AnomalyReport(
                median=median, mad=0.0, threshold=float(threshold), scale_method="constant", anomalies=()
            )
        scale, method = _MEAN_AD_SCALE * mean_ad, "mean_absolute_deviation"
    # |score| > threshold  <=>  |x - median| > threshold * scale: scores only for the hits.
    hits = np.flatnonzero(deviation > threshold * scale)
    scores = (vs[hits] - median) / scale
    anomalies = tuple(
        Anomaly(timestamp_us=t, value=v, score=s)
        for t, v, s in zip(ts[hits].tolist(), vs[hits].tolist(), scores.tolist(), strict=True)
    )
    return AnomalyReport(
        median=median, mad=mad, threshold=float(threshold), scale_method=method, anomalies=anomalies, scale=scale
    )


# --- correlation ---------------------------------------------------------------------


@dataclass(frozen=True)
class Correlation:
    """Pearson correlation of two datasets over their common timestamps.

    ``r`` is None when fewer than two timestamps align or either side is
    constant over them (the coefficient is undefined); ``count`` is the number
    of aligned points.
    """

    r: float | None
    count: int


def correlate(
    timestamps_a: npt.ArrayLike, values_a: npt.ArrayLike, timestamps_b: npt.ArrayLike, values_b: npt.ArrayLike
) -> Correlation:
    """Pearson r of the two series' values at timestamps present in both (exact equality)."""
    ts_a, vs_a = _as_series(timestamps_a, values_a, ts_field="timestamps_a", values_field="values_a")
    ts_b, vs_b = _as_series(timestamps_b, values_b, ts_field="timestamps_b", values_field="values_b")
    _, index_a, index_b = np.intersect1d(ts_a, ts_b, assume_unique=True, return_indices=True)
    count = int(index_a.size)
    if count < 2:
        return Correlation(r=None, count=count)
    a = vs_a[index_a]
    b = vs_b[index_b]
    a = a - a.mean()
    b = b - b.mean()
    saa = float(np.dot(a, a))
    sbb = float(np.dot(b, b))
    if saa == 0.0 or sbb == 0.0:
        return Correlation(r=None, count=count)
    r = float(np.dot(a, b)) / math.sqrt(saa * sbb)
    return Correlation(r=max(-1.0, min(1.0, r)), count=count)


__all__ = [
    "Anomaly",
    "AnomalyReport",
    "Correlation",
    "Histogram",
    "Quantiles",
    "Summary",
    "Trend",
    "TrendUncertainty",
    "correlate",
    "ewma",
    "histogram",
    "linear_trend",
    "moving_average",
    "quantiles",
    "robust_anomalies",
    "summary",
    "trend_uncertainty",
    "window",
]
