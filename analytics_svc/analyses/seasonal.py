"""Seasonal anomaly detection and anomaly events, on numpy arrays.

The seasonal method removes the trend and the seasonal cycles (daily,
weekly, or periods the caller declares) with statsmodels' STL (one period)
or MSTL (several), then scores the residuals with a robust z-score
``(r - median(r)) / (1.4826 * MAD(r))``. Each point gets an expected value
(trend + seasonal + the residuals' median) and a band (expected ± threshold
× the residuals' robust sigma); a point outside its band is flagged.

Flagged points that are near each other (less than one cycle apart, see
:func:`event_gap_steps`) merge into one :class:`AnomalyEvent`, scored by its
most extreme point; events are ranked by ``|score|``. The global method
(one median/MAD over the whole series, :func:`numeric.robust_anomalies`)
produces events the same way, so both methods report alike.

STL needs a regular series: an irregular one is put on a regular grid first
(:func:`regularise`), and the result says how. Bad input the caller could
have known about (constant values, too few points, a period longer than half
the data) raises :class:`SeasonalFailed` with a message fit for a user.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from statsmodels.tsa.seasonal import MSTL, STL

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# The default sensitivity (|robust z| of a residual) and how far apart flagged
# points may be and still be one event: chosen once for all series on the
# sample series and the Numenta Anomaly Benchmark's realKnownCause series
# (bench/anomaly_quality.py), where real residuals are heavy-tailed and an
# incident flags points over hours: a lower threshold or a shorter gap turned
# one incident into dozens of events and flagged ordinary bursts.
DEFAULT_SEASONAL_THRESHOLD = 8.0
# Points outside this many robust sigmas of the first fit are treated as
# missing when the cycles are refitted (see decompose).
REFIT_OUTLIER_Z = 4.5
# Without a cycle, flagged points at most this fraction of the window apart are one event.
EVENT_GAP_FRACTION_WITHOUT_CYCLE = 0.05
# Candidate cycles looked for when none are declared: a day and a week.
CANDIDATE_PERIODS_S = (86_400, 604_800)
# A candidate counts as present when the lag-period autocorrelation of the
# linearly detrended values is at least this.
MIN_SEASONAL_AUTOCORRELATION = 0.3
# Flagged points at most this many grid steps apart belong to one event (at
# least; the seasonal method merges points less than one cycle apart).
EVENT_GAP_STEPS = 3
# Refits with the outlying points treated as missing.
REFITS = 2
# A decomposition needs at least this many points.
MIN_POINTS = 8
# An irregular series may grow at most this much when put on a grid (big gaps
# would otherwise make a grid of mostly invented values).
MAX_GRID_GROWTH = 4
# 1 / Phi^-1(0.75): MAD * this estimates sigma for normal data.
_MAD_TO_SIGMA = 1.482602218505602
_US = 1_000_000


# Where the removed periods came from (AnomalyReport.periods_origin).
DECLARED = "declared"
DECLARED_ON_DATASET = "declared on the dataset"


class SeasonalFailed(Exception):
    """The data cannot be analysed this way; the message says why, for a user."""


@dataclass(frozen=True)
class RegularSeries:
    """A series on a regular grid: point i is at ``start_us + i * step_us``.

    ``description`` says how it was made regular, for the result.
    """

    start_us: int
    step_us: int
    values: FloatArray
    description: str

    @property
    def timestamps_us(self) -> IntArray:
        return self.start_us + np.arange(self.values.size, dtype=np.int64) * self.step_us


def regularise(timestamps_us: IntArray, values: FloatArray) -> RegularSeries:
    """The series on a grid of its median step: regular input unchanged;
    otherwise points in the same cell averaged and empty cells linearly interpolated."""
    if timestamps_us.size < 2:
        raise SeasonalFailed(f"the window has {timestamps_us.size} point(s); at least {MIN_POINTS} are needed")
    steps = np.diff(timestamps_us)
    step = int(np.median(steps))
    start = int(timestamps_us[0])
    if bool((steps == step).all()):
        return RegularSeries(start, step, values, f"regular: one point every {_duration(step)}")
    cells = np.rint((timestamps_us - start) / step).astype(np.int64)
    size = int(cells[-1]) + 1
    if size > MAX_GRID_GROWTH * timestamps_us.size:
        raise SeasonalFailed(
            f"the points are too irregular for a decomposition: a grid of their median step "
            f"({_duration(step)}) would need {size} cells for {timestamps_us.size} points; "
            "analyse a window without the large gaps, or use the global method"
        )
    counts = np.bincount(cells, minlength=size)
    sums = np.bincount(cells, weights=values, minlength=size)
    filled = counts > 0
    grid = np.empty(size, dtype=np.float64)
    grid[filled] = sums[filled] / counts[filled]
    empty = int((~filled).sum())
    if empty:
        where = np.flatnonzero(filled)
        grid[~filled] = np.interp(np.flatnonzero(~filled), where, grid[filled])
    averaged = int((counts > 1).sum())
    return RegularSeries(
        start,
        step,
        grid,
        f"irregular: put on a {_duration(step)} grid (the median step); "
        f"{averaged} cell(s) averaged from several points, {empty} empty cell(s) linearly interpolated",
    )


def _duration(us: int) -> str:
    seconds = us / _US
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


def _autocorrelation(detrended: FloatArray, lag: int) -> float:
    a, b = detrended[:-lag], detrended[lag:]
    a = a - a.mean()
    b = b - b.mean()
    denominator = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    return 0.0 if denominator == 0 else float(np.dot(a, b)) / denominator


def detect_periods(series: RegularSeries) -> list[int]:
    """The candidate cycles (seconds) the data shows: two full cycles fit and
    the lag autocorrelation is high; the week only when it beats the day."""
    n = series.values.size
    x = np.arange(n, dtype=np.float64)
    slope, intercept = np.polyfit(x, series.values, 1)
    detrended = series.values - (intercept + slope * x)
    found: dict[int, float] = {}
    for period_s in CANDIDATE_PERIODS_S:
        lag = round(period_s * _US / series.step_us)
        if lag < 2 or n < 2 * lag:
            continue
        r = _autocorrelation(detrended, lag)
        if r >= MIN_SEASONAL_AUTOCORRELATION:
            found[period_s] = r
    # A daily cycle also repeats every week: keep the week only when it explains more.
    if 86_400 in found and 604_800 in found and found[604_800] < found[86_400] + 0.05:
        del found[604_800]
    return sorted(found)


@dataclass(frozen=True)
class Decomposition:
    """Expected values and the robust scale of what is left."""

    expected: FloatArray  # trend + seasonal + median residual, per grid point
    residual: FloatArray  # values - expected
    sigma: float  # robust sigma of the residuals
    residual_median: float
    residual_mad: float


def decompose(series: RegularSeries, periods_s: Sequence[int]) -> Decomposition:
    """Trend and cycles removed by STL/MSTL (robust fits), or a rolling median
    trend when there is no cycle; SeasonalFailed on data that cannot be scored."""
    values = series.values
    n = values.size
    if n < MIN_POINTS:
        raise SeasonalFailed(f"the window has {n} points; at least {MIN_POINTS} are needed")
    if float(values.max()) == float(values.min()):
        raise SeasonalFailed(f"every value in the window is {values[0]:g}: a constant series has no anomalies to score")
    lags = []
    for period_s in periods_s:
        lag = round(period_s * _US / series.step_us)
        if lag < 2:
            raise SeasonalFailed(
                f"period {period_s} s is shorter than two steps of the data ({_duration(series.step_us)} each)"
            )
        if n < 2 * lag:
            raise SeasonalFailed(
                f"period {period_s} s needs at least two cycles ({2 * lag} points at one every "
                f"{_duration(series.step_us)}); the window has {n}"
            )
        lags.append(lag)
    lags = sorted(set(lags))
    if not lags:
        # No cycle: a straight line plus a rolling median of what it leaves
        # (the line keeps the median unbiased at the ends of a ramp).
        x = np.arange(n, dtype=np.float64)
        slope, intercept = np.polyfit(x, values, 1)
        line = intercept + slope * x
        window = max(5, min(n // 10, 1001)) | 1
        fitted = line + ndimage.median_filter(values - line, size=window, mode="nearest")
    else:
        # Points far outside the first fit are treated as missing (linearly
        # interpolated from their neighbours in time) and the series refitted:
        # a spike would otherwise leak into its phase of every cycle and flag
        # the same time on other days. Twice: the first fit flags the leaks too.
        fitted = _seasonal_fit(values, lags)
        for _ in range(REFITS):
            residual = values - fitted
            centre = float(np.median(residual))
            spread = _MAD_TO_SIGMA * float(np.median(np.abs(residual - centre)))
            outside = np.abs(residual - centre) > REFIT_OUTLIER_Z * spread
            if spread == 0 or not outside.any() or outside.all():
                break
            inside = np.flatnonzero(~outside)
            cleaned = values.copy()
            cleaned[outside] = np.interp(np.flatnonzero(outside), inside, values[inside])
            fitted = _seasonal_fit(cleaned, lags)
    residual = values - fitted
    centre = float(np.median(residual))
    mad = float(np.median(np.abs(residual - centre)))
    sigma = _MAD_TO_SIGMA * mad
    # Floor: float noise of a perfect fit must not become a "huge" z-score.
    floor = 1e-9 * float(np.abs(values).max())
    if sigma <= floor:
        mean_ad = float(np.abs(residual - centre).mean())
        sigma = max(1.253314 * mean_ad, floor)
    expected = fitted + centre
    return Decomposition(expected, values - expected, sigma, centre, mad)


def _odd(x: float) -> int:
    n = math.ceil(x)
    return n if n % 2 else n + 1


def _seasonal_fit(values: FloatArray, lags: list[int]) -> FloatArray:
    """Trend + seasonal cycles of ``values`` by STL (one lag) or MSTL (several).

    Settings chosen for scoring rather than for describing: each cycle's
    shape is a local mean across up to 35 cycles (``seasonal_deg=0``, a wide
    seasonal window), so a cycle-subseries is not fitted point by point and
    the residuals keep the noise a spike has to stand out from; the loess
    smoothers are evaluated every ~10% of their window (``*_jump``), which
    makes the fit linear in the number of points.
    """
    n = values.size
    shortest = lags[0]
    seasonal = min(_odd(2 * (n // lags[-1]) + 1), 35)
    trend = _odd(1.5 * shortest / (1 - 1.5 / seasonal))
    low_pass = _odd(shortest + 1)
    options = {
        "seasonal_deg": 0,
        "seasonal_jump": max(1, seasonal // 10),
        "trend_jump": max(1, trend // 10),
        "low_pass_jump": max(1, low_pass // 10),
    }
    if len(lags) == 1:
        fit = STL(values, period=shortest, seasonal=seasonal, trend=trend, low_pass=low_pass, **options).fit()
        return np.asarray(fit.trend) + np.asarray(fit.seasonal)
    windows = [min(_odd(2 * (n // lag) + 1), 35) for lag in lags]
    multi = MSTL(values, periods=lags, windows=windows, stl_kwargs=options).fit()
    seasonal_parts = np.asarray(multi.seasonal)
    total = seasonal_parts.sum(axis=1) if seasonal_parts.ndim == 2 else seasonal_parts
    return np.asarray(multi.trend) + total


@dataclass(frozen=True)
class AnomalyEvent:
    """Adjacent or near flagged points: when, the most extreme point, and how far out it was."""

    start_us: int
    end_us: int
    peak_us: int
    peak_value: float
    expected: float
    lower: float
    upper: float
    score: float  # the peak's z-score; the sign says above or below expected
    point_count: int


def merge_events(
    timestamps_us: IntArray,
    values: FloatArray,
    expected: FloatArray,
    scores: FloatArray,
    half_band: FloatArray | float,
    threshold: float,
    gap_steps: int = EVENT_GAP_STEPS,
) -> list[AnomalyEvent]:
    """Points with ``|score| > threshold`` merged into events (flagged indices at
    most ``gap_steps`` apart), ranked by ``|score|`` (largest first), all of them."""
    flagged = np.flatnonzero(np.abs(scores) > threshold)
    if flagged.size == 0:
        return []
    band = np.broadcast_to(np.asarray(half_band, dtype=np.float64), values.shape)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(flagged) > gap_steps) + 1])
    ends = np.concatenate([starts[1:], [flagged.size]])
    magnitude = np.abs(scores[flagged])
    segment = np.repeat(np.arange(starts.size), ends - starts)
    # Within each segment, the flagged point of largest |score| (earliest on ties).
    order = np.lexsort((flagged, -magnitude, segment))
    first_of_segment = np.concatenate([[True], segment[order][1:] != segment[order][:-1]])
    peaks = flagged[order[first_of_segment]]
    events = [
        AnomalyEvent(
            start_us=int(timestamps_us[flagged[s]]),
            end_us=int(timestamps_us[flagged[e - 1]]),
            peak_us=int(timestamps_us[p]),
            peak_value=float(values[p]),
            expected=float(expected[p]),
            lower=float(expected[p] - band[p]),
            upper=float(expected[p] + band[p]),
            score=float(scores[p]),
            point_count=int(e - s),
        )
        for s, e, p in zip(starts.tolist(), ends.tolist(), peaks.tolist(), strict=True)
    ]
    events.sort(key=lambda event: (-abs(event.score), event.peak_us))
    return events


def event_gap_steps(series: RegularSeries, periods_s: Sequence[int]) -> int:
    """How many grid steps apart flagged points may be and still be one event:
    one cycle of the shortest period (an incident seen again at the next
    time of day is the same incident), else a twentieth of the window."""
    if periods_s:
        gap = round(min(periods_s) * _US / series.step_us)
    else:
        gap = int(EVENT_GAP_FRACTION_WITHOUT_CYCLE * series.values.size)
    return max(EVENT_GAP_STEPS, gap)


@dataclass(frozen=True)
class SeasonalReport:
    """What the seasonal method found and how."""

    periods_s: tuple[int, ...]
    periods_origin: str  # "declared", "detected" or "none detected"
    regularisation: str
    threshold: float
    residual_median: float
    residual_mad: float
    flagged_point_count: int
    events: tuple[AnomalyEvent, ...]


def seasonal_anomalies(
    timestamps_us: IntArray,
    values: FloatArray,
    threshold: float = DEFAULT_SEASONAL_THRESHOLD,
    periods_s: Sequence[int] = (),
    declared_origin: str = "declared",
) -> SeasonalReport:
    """Anomaly events after removing trend and cycles (declared, or detected when none are).

    ``declared_origin`` says where declared periods came from, for the report
    (:data:`DECLARED` in the request, :data:`DECLARED_ON_DATASET`).
    """
    series = regularise(timestamps_us, values)
    if series.values.size < MIN_POINTS:
        raise SeasonalFailed(f"the window has {series.values.size} points; at least {MIN_POINTS} are needed")
    if periods_s:
        periods, origin = tuple(sorted(set(int(p) for p in periods_s))), declared_origin
    else:
        periods = tuple(detect_periods(series))
        origin = "detected" if periods else "none detected"
    d = decompose(series, periods)
    scores = d.residual / d.sigma
    gap = event_gap_steps(series, periods)
    events = merge_events(
        series.timestamps_us, series.values, d.expected, scores, threshold * d.sigma, threshold, gap
    )
    return SeasonalReport(
        periods_s=periods,
        periods_origin=origin,
        regularisation=series.description,
        threshold=threshold,
        residual_median=d.residual_median,
        residual_mad=d.residual_mad,
        flagged_point_count=int((np.abs(scores) > threshold).sum()),
        events=tuple(events),
    )
