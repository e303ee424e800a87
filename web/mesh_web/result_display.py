"""How analysis results and schedules are shown: table rows, the filters of
the results table and the request they make, live updates merged into the
table, chart data and the numbers of one result. Pure functions from protos
to text and plain dicts; no Reflex, no network (tests/web/test_web_state.py)."""

from __future__ import annotations

import base64
import bisect
import dataclasses
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2

from mesh.analytics.v1 import analysis_pb2, analytics_service_pb2
from mesh_runtime.wire import us_to_datetime
from mesh_web.display import MISSING, counted, format_count, format_timestamp
from mesh_web.forecast_display import forecast_figures

KIND_LABELS: dict[int, str] = {
    analysis_pb2.ANALYSIS_KIND_SUMMARY: "summary",
    analysis_pb2.ANALYSIS_KIND_TREND: "trend",
    analysis_pb2.ANALYSIS_KIND_ANOMALIES: "anomalies",
    analysis_pb2.ANALYSIS_KIND_CORRELATION: "correlation",
    analysis_pb2.ANALYSIS_KIND_REPORT: "report",
    analysis_pb2.ANALYSIS_KIND_FORECAST: "forecast",
}
"""The name shown for each analysis kind (also the value of the kind selects)."""

RUNNABLE_KINDS = ("report", "summary", "trend", "anomalies", "forecast")
"""The kinds a user can run or schedule from a dataset (correlation needs a second dataset)."""

STATUS_LABELS: dict[int, str] = {
    analysis_pb2.RESULT_STATUS_PENDING: "pending",
    analysis_pb2.RESULT_STATUS_RUNNING: "running",
    analysis_pb2.RESULT_STATUS_SUCCEEDED: "succeeded",
    analysis_pb2.RESULT_STATUS_FAILED: "failed",
}

INSIGHT_LABELS: dict[int, str] = {
    analysis_pb2.INSIGHT_STATUS_UNSPECIFIED: "none",
    analysis_pb2.INSIGHT_STATUS_PENDING: "being written",
    analysis_pb2.INSIGHT_STATUS_READY: "ready",
    analysis_pb2.INSIGHT_STATUS_UNAVAILABLE: "unavailable",
}

ANY = "any"
"""The value of a filter select that does not filter."""

ORDERS: dict[str, str] = {
    "newest": "create_time desc",
    "oldest": "create_time asc",
    "started, newest": "start_time desc",
    "started, oldest": "start_time asc",
}
"""The sort choices of the results table and the order_by each sends."""


def kind_value(label: str) -> int:
    """The AnalysisKind of a label ('report' -> ANALYSIS_KIND_REPORT); UNSPECIFIED for 'any' or unknown."""
    for value, name in KIND_LABELS.items():
        if name == label:
            return value
    return analysis_pb2.ANALYSIS_KIND_UNSPECIFIED


def status_value(label: str) -> int:
    """The ResultStatus of a label; UNSPECIFIED for 'any' or unknown."""
    for value, name in STATUS_LABELS.items():
        if name == label:
            return value
    return analysis_pb2.RESULT_STATUS_UNSPECIFIED


def format_number(value: float) -> str:
    """A measured number, short and readable: 4 significant digits, thousands
    separators for big ones, scientific notation for tiny ones; '—' for NaN."""
    if math.isnan(value):
        return MISSING
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e15 or magnitude < 1e-4:
        return f"{value:.3e}"
    if magnitude >= 1000:
        return f"{value:,.0f}" if magnitude >= 1e5 else f"{value:,.1f}"
    decimals = max(0, 3 - int(math.floor(math.log10(magnitude))))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _time_or_none(result: analysis_pb2.Result, field: str) -> timestamp_pb2.Timestamp | None:
    return getattr(result, field) if result.HasField(field) else None


def _seconds(stamp: timestamp_pb2.Timestamp) -> float:
    return stamp.seconds + stamp.nanos / 1e9


def format_duration(seconds: float) -> str:
    """'0.4 s', '12 s', '3 min 5 s', '2 h 4 min'."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@dataclasses.dataclass(frozen=True)
class ResultRow:
    """One row of the results table, every cell already text."""

    id: str
    dataset_id: str
    dataset_name: str
    kind: str
    status: str
    created: str
    duration: str
    anomalies: str
    has_anomalies: bool
    anomaly_label: str
    """'1 anomaly', '3 anomalies'."""
    insight: str
    origin: str
    create_seconds: float


def result_row(result: analysis_pb2.Result) -> ResultRow:
    """The table row of one result."""
    created = _time_or_none(result, "create_time")
    started, ended = _time_or_none(result, "start_time"), _time_or_none(result, "end_time")
    duration = format_duration(max(0.0, _seconds(ended) - _seconds(started))) if started and ended else MISSING
    detects = result.kind in (analysis_pb2.ANALYSIS_KIND_ANOMALIES, analysis_pb2.ANALYSIS_KIND_REPORT)
    succeeded = result.status == analysis_pb2.RESULT_STATUS_SUCCEEDED
    return ResultRow(
        id=result.id,
        dataset_id=result.dataset_id,
        dataset_name=result.dataset_name or result.dataset_id,
        kind=KIND_LABELS.get(result.kind, "unknown"),
        status=STATUS_LABELS.get(result.status, "unknown"),
        created=format_timestamp(created),
        duration=duration,
        anomalies=format_count(result.anomaly_count) if (detects and succeeded) else MISSING,
        has_anomalies=result.anomaly_count > 0,
        anomaly_label=counted(result.anomaly_count, "anomaly", "anomalies"),
        insight=INSIGHT_LABELS.get(result.insight.status, "none") if result.HasField("insight") else "none",
        origin="scheduled" if result.schedule_id else "on demand",
        create_seconds=_seconds(created) if created else 0.0,
    )


@dataclasses.dataclass(frozen=True)
class ResultFilters:
    """What the results table is filtered and sorted by, as the selects hold it."""

    dataset_id: str = ""
    kind: str = ANY
    status: str = ANY
    anomalies: str = ANY
    """'any', 'with' or 'without'."""
    created_after: str = ""
    """A date (YYYY-MM-DD, UTC) or empty."""
    created_before: str = ""
    order: str = "newest"


def _parse_day(text: str) -> datetime | None:
    """A YYYY-MM-DD date as midnight UTC; None when empty. ValueError when malformed."""
    text = text.strip()
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)


def list_results_request(
    filters: ResultFilters, page_size: int, page_token: str = ""
) -> analytics_service_pb2.ListResultsRequest:
    """The ListResults request of the table's filters. The 'before' day is
    inclusive (results created before the next midnight). ValueError naming the
    field when a date is malformed or the range is empty."""
    request = analytics_service_pb2.ListResultsRequest(
        dataset_id=filters.dataset_id,
        kind=kind_value(filters.kind),  # type: ignore[arg-type]
        status=status_value(filters.status),  # type: ignore[arg-type]
        order_by=ORDERS.get(filters.order, ""),
        page_size=page_size,
        page_token=page_token,
    )
    if filters.anomalies in ("with", "without"):
        request.has_anomalies = filters.anomalies == "with"
    try:
        after = _parse_day(filters.created_after)
    except ValueError:
        raise ValueError("created from: expected a date like 2026-11-29") from None
    try:
        before = _parse_day(filters.created_before)
    except ValueError:
        raise ValueError("created until: expected a date like 2026-11-29") from None
    if before is not None:
        before = datetime.fromtimestamp(before.timestamp() + 86_400, tz=UTC)
    if after is not None and before is not None and after >= before:
        raise ValueError("created from must not be after created until")
    if after is not None:
        request.created_after.FromDatetime(after)
    if before is not None:
        request.created_before.FromDatetime(before)
    return request


def matches_filters(result: analysis_pb2.Result, request: analytics_service_pb2.ListResultsRequest) -> bool:
    """Whether a result from WatchResults belongs in a table listed with ``request``."""
    if request.dataset_id and result.dataset_id != request.dataset_id:
        return False
    if request.kind and result.kind != request.kind:
        return False
    if request.status and result.status != request.status:
        return False
    if request.HasField("has_anomalies") and (result.anomaly_count > 0) != request.has_anomalies:
        return False
    created = _seconds(result.create_time) if result.HasField("create_time") else None
    if created is not None and request.HasField("created_after") and created < _seconds(request.created_after):
        return False
    if created is not None and request.HasField("created_before") and created >= _seconds(request.created_before):
        return False
    return True


def rows_after_update(
    rows: Sequence[ResultRow], result: analysis_pb2.Result, request: analytics_service_pb2.ListResultsRequest
) -> list[ResultRow]:
    """The table after WatchResults reported ``result``: a shown result is
    updated in place (or dropped when it no longer matches the filters, e.g. a
    'running' filter and a result that succeeded); a new matching one is added
    where the sort order puts it among the newest — at the top for 'newest
    first', and only onto a table already showing every row for the oldest-first orders."""
    row = result_row(result)
    keep = matches_filters(result, request)
    updated: list[ResultRow] = []
    found = False
    for shown in rows:
        if shown.id == row.id:
            found = True
            if keep:
                updated.append(row)
        else:
            updated.append(shown)
    if found or not keep:
        return updated
    if request.order_by in ("", "create_time desc", "start_time desc"):
        return [row, *updated]
    return [*updated, row]


# --- one result: the numbers, the charts -------------------------------------------


@dataclasses.dataclass(frozen=True)
class Figure:
    """One labelled number of a result."""

    label: str
    value: str


def result_figures(result: analysis_pb2.Result, unit: str = "") -> list[Figure]:
    """The numbers of a result, in reading order, with the dataset's unit where it applies."""
    out = result.output
    suffix = f" {unit}" if unit else ""
    figures: list[Figure] = []
    if out.HasField("summary"):
        s = out.summary
        figures += [
            Figure("points", format_count(s.count)),
            Figure("mean", format_number(s.mean) + suffix),
            Figure("standard deviation", format_number(s.std) + suffix),
            Figure("minimum", format_number(s.min) + suffix),
            Figure("maximum", format_number(s.max) + suffix),
        ]
    for q in out.quantiles:
        figures.append(Figure(f"p{format_number(q.level * 100)}", format_number(q.value) + suffix))
    if out.HasField("trend"):
        t = out.trend
        figures += [
            Figure("trend per day", format_number(t.slope_per_second * 86_400) + suffix),
            Figure("trend fit (R²)", format_number(t.r_squared)),
        ]
        if t.HasField("uncertainty"):
            u = t.uncertainty
            low, high = format_number(u.slope_ci_low * 86_400), format_number(u.slope_ci_high * 86_400)
            figures += [
                Figure("trend per day, 95% interval", f"{low} to {high}{suffix}"),
                Figure("trend p-value", format_number(u.p_value)),
                Figure("trend vs noise", "distinguishable" if u.significant else "not distinguishable"),
            ]
    if out.HasField("anomalies"):
        a = out.anomalies
        figures += [
            Figure("anomalies", format_count(a.anomaly_count)),
            Figure("anomaly method", a.method or "global"),
        ]
        if a.method == "seasonal":
            periods = ", ".join(format_period(p) for p in a.periods_seconds) or "none"
            figures.append(Figure("cycles removed", f"{periods} ({a.periods_origin})"))
        figures += [
            Figure("median" if a.method != "seasonal" else "residual median", format_number(a.median) + suffix),
            Figure("MAD" if a.method != "seasonal" else "residual MAD", format_number(a.mad) + suffix),
            Figure("threshold (|z|)", format_number(a.threshold)),
        ]
    if out.HasField("correlation"):
        c = out.correlation
        figures += [
            Figure("correlated with", c.other_dataset_name or c.other_dataset_id),
            Figure("Pearson r", format_number(c.r) if c.HasField("r") else MISSING),
            Figure("aligned points", format_count(c.aligned_count)),
        ]
    figures += [Figure(label, text) for label, text in forecast_figures(out.forecast, suffix)]
    return figures


def _chart_time(timestamp_us: int) -> str:
    return us_to_datetime(timestamp_us).strftime("%m-%d %H:%M")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def series_chart(series: analysis_pb2.ResultSeries, anomalies: Sequence[analysis_pb2.Anomaly]) -> list[dict[str, Any]]:
    """The rows of the series chart: time label, value, and where the result
    has them the trend line, moving average and EWMA; an anomaly is marked
    (its value under 'anomaly') on the series point nearest to it in time, since
    the series may have been reduced."""
    stamps = list(series.timestamps_us)
    rows: list[dict[str, Any]] = []
    for i, (stamp, value) in enumerate(zip(stamps, series.values, strict=False)):
        row: dict[str, Any] = {"time": _chart_time(stamp), "value": _finite(value), "anomaly": None}
        if i < len(series.trend):
            row["trend"] = _finite(series.trend[i])
        if i < len(series.moving_average):
            row["moving_average"] = _finite(series.moving_average[i])
        if i < len(series.ewma):
            row["ewma"] = _finite(series.ewma[i])
        rows.append(row)
    if not rows:
        return rows
    for anomaly in anomalies:
        at = bisect.bisect_left(stamps, anomaly.timestamp_us)
        candidates = [i for i in (at - 1, at) if 0 <= i < len(stamps)]
        nearest = min(candidates, key=lambda i: abs(stamps[i] - anomaly.timestamp_us))
        rows[nearest]["anomaly"] = _finite(anomaly.value)
    return rows


def series_caption(source_points: int, anomaly_count: int, marked: int | None = None) -> str:
    """'50,000 points analysed · 3 anomalies (red dots)' above the series chart;
    when only the largest ``marked`` events are drawn, it says so."""
    text = f"{format_count(source_points)} points analysed"
    if anomaly_count:
        noun = "anomaly" if anomaly_count == 1 else "anomalies"
        dots = "red dots"
        if marked is not None and 0 < marked < anomaly_count:
            dots = f"the largest {format_count(marked)} as red dots"
        text += f" · {format_count(anomaly_count)} {noun} ({dots})"
    return text


def histogram_chart(histogram: analysis_pb2.Histogram) -> list[dict[str, Any]]:
    """The bars of the histogram chart: each bin's range as its label, and its count."""
    edges, counts = list(histogram.edges), list(histogram.counts)
    return [
        {"bin": f"{format_number(edges[i])}–{format_number(edges[i + 1])}", "count": counts[i]}
        for i in range(min(len(counts), len(edges) - 1))
    ]


def format_period(seconds: int) -> str:
    """'1 d', '7 d', '1 h' or '90 s': a seasonal period for display."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def anomaly_rows(events: Sequence[analysis_pb2.AnomalyEvent], limit: int = 20) -> list[dict[str, str]]:
    """The first ``limit`` anomaly events (ranked, largest first) as table rows:
    peak time, value, expected value, score and how long it lasted."""
    fmt = "%Y-%m-%d %H:%M:%S UTC"
    rows = []
    for e in list(events)[:limit]:
        lasted = ""
        if e.end_us > e.start_us:
            lasted = f"{us_to_datetime(e.start_us).strftime(fmt)} → {us_to_datetime(e.end_us).strftime(fmt)}"
        rows.append(
            {
                "time": us_to_datetime(e.peak_us).strftime(fmt),
                "value": format_number(e.peak_value),
                "expected": format_number(e.expected),
                "score": format_number(e.score),
                "lasted": lasted,
            }
        )
    return rows


MAX_FORECAST_HORIZON = 10_000
"""The most steps a forecast may ask for (the contract's limit)."""


def forecast_horizon(form: dict[str, Any]) -> int:
    """The forecast horizon of a form's "horizon" field, in steps; ValueError with a line for the user."""
    raw = str(form.get("horizon", "")).strip()
    problem = f"horizon: enter how many steps of the series to forecast, 1 to {MAX_FORECAST_HORIZON:,}"
    try:
        steps = int(raw)
    except ValueError:
        raise ValueError(problem) from None
    if not 1 <= steps <= MAX_FORECAST_HORIZON:
        raise ValueError(problem)
    return steps


def anomaly_form_parameters(form: dict[str, Any]) -> analysis_pb2.AnalysisParameters:
    """The parameters of the run form (anomaly method, sensitivity, periods in
    seconds, comma-separated; the horizon of a forecast); ValueError with a line for the user."""
    parameters = analysis_pb2.AnalysisParameters()
    if kind_value(str(form.get("kind", ""))) == analysis_pb2.ANALYSIS_KIND_FORECAST:
        parameters.forecast_horizon = forecast_horizon(form)
    method = str(form.get("anomaly_method", "seasonal"))
    if method == "global":
        parameters.anomaly_method = analysis_pb2.ANOMALY_METHOD_GLOBAL
    raw = str(form.get("sensitivity", "")).strip()
    if raw:
        try:
            parameters.anomaly_threshold = float(raw)
        except ValueError:
            raise ValueError("sensitivity: enter a number of robust z-scores, e.g. 8") from None
        if not 0 < parameters.anomaly_threshold <= 1000:
            raise ValueError("sensitivity: must be above 0 and at most 1000")
    raw = str(form.get("periods", "")).strip()
    if raw:
        try:
            parameters.seasonal_periods_seconds.extend(int(p) for p in raw.replace(" ", "").split(",") if p)
        except ValueError:
            raise ValueError("periods: seconds, comma-separated, e.g. 86400, 604800") from None
    return parameters


def window_text(result: analysis_pb2.Result) -> str:
    """'2026-11-01 00:00 UTC → 2026-11-29 05:00 UTC', the analysed window."""
    start = format_timestamp(_time_or_none(result, "window_start"))
    end = format_timestamp(_time_or_none(result, "window_end"))
    return f"{start} → {end}"


# --- schedules -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ScheduleRow:
    """One row of a dataset's schedules."""

    id: str
    kind: str
    trigger: str
    trigger_kind: str
    """'interval' or 'cron'."""
    trigger_value: str
    """Seconds or the cron expression, as the edit form holds it."""
    time_zone: str
    enabled: bool
    next_run: str
    last_run: str
    last_result_id: str
    parameters: str = ""
    """The schedule's AnalysisParameters (serialized, base64), for "run now"."""


def trigger_text(schedule: analysis_pb2.Schedule) -> str:
    """'every 15 min', 'cron */5 * * * * (Europe/Paris)'."""
    if schedule.WhichOneof("trigger") == "cron":
        zone = schedule.time_zone or "UTC"
        return f"cron {schedule.cron} ({zone})"
    seconds = schedule.interval_seconds
    for size, unit in ((86_400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size and seconds % size == 0:
            return f"every {seconds // size} {unit}"
    return f"every {seconds} s"


def schedule_row(schedule: analysis_pb2.Schedule) -> ScheduleRow:
    """The row of one schedule."""
    is_cron = schedule.WhichOneof("trigger") == "cron"
    return ScheduleRow(
        id=schedule.id,
        kind=KIND_LABELS.get(schedule.kind, "unknown"),
        trigger=trigger_text(schedule),
        trigger_kind="cron" if is_cron else "interval",
        trigger_value=schedule.cron if is_cron else str(schedule.interval_seconds),
        time_zone=schedule.time_zone,
        enabled=schedule.enabled,
        next_run=format_timestamp(schedule.next_run_time if schedule.HasField("next_run_time") else None),
        last_run=format_timestamp(schedule.last_run_time if schedule.HasField("last_run_time") else None),
        last_result_id=schedule.last_result_id,
        parameters=base64.b64encode(schedule.parameters.SerializeToString()).decode(),
    )


def schedule_parameters(row: ScheduleRow) -> analysis_pb2.AnalysisParameters:
    """The parameters a schedule row carries (what its analyses run with)."""
    return analysis_pb2.AnalysisParameters.FromString(base64.b64decode(row.parameters))


def schedule_from_form(
    dataset_id: str, form: dict[str, Any], current: analysis_pb2.AnalysisParameters | None = None
) -> analysis_pb2.Schedule:
    """The schedule a form describes: kind, trigger ('interval' with seconds
    or 'cron' with an expression), time zone and enabled (a checkbox: absent when
    unchecked). ValueError with a
    line for the user when the trigger is missing or not a number."""
    kind = kind_value(str(form.get("kind", "report")))
    if kind == analysis_pb2.ANALYSIS_KIND_UNSPECIFIED:
        raise ValueError("kind: choose what to compute")
    schedule = analysis_pb2.Schedule(
        dataset_id=dataset_id,
        kind=kind,  # type: ignore[arg-type]
        time_zone=str(form.get("time_zone", "")).strip(),
        enabled=str(form.get("enabled", "")).lower() in ("on", "true", "1", "yes"),
    )
    if kind == analysis_pb2.ANALYSIS_KIND_FORECAST:
        # The form sets only the horizon: an edited schedule keeps its other parameters (``current``).
        if current is not None:
            schedule.parameters.CopyFrom(current)
        schedule.parameters.forecast_horizon = forecast_horizon(form)
    value = str(form.get("trigger_value", "")).strip()
    if str(form.get("trigger_kind", "interval")) == "cron":
        if not value:
            raise ValueError("cron: enter an expression like */15 * * * *")
        schedule.cron = value
    else:
        try:
            schedule.interval_seconds = int(value)
        except ValueError:
            raise ValueError("interval: enter a whole number of seconds, e.g. 3600") from None
    return schedule


def schedule_update_fields(schedule: analysis_pb2.Schedule) -> list[str]:
    """The update mask of an edited schedule: everything the form holds, with
    the trigger it now has (setting one member of the oneof clears the other)."""
    trigger = schedule.WhichOneof("trigger") or "interval_seconds"
    fields = ["kind", trigger, "time_zone", "enabled"]
    # The form holds a forecast's horizon (its only parameter the form sets).
    return [*fields, "parameters"] if schedule.kind == analysis_pb2.ANALYSIS_KIND_FORECAST else fields
