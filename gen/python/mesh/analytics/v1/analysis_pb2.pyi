import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AnalysisKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANALYSIS_KIND_UNSPECIFIED: _ClassVar[AnalysisKind]
    ANALYSIS_KIND_SUMMARY: _ClassVar[AnalysisKind]
    ANALYSIS_KIND_TREND: _ClassVar[AnalysisKind]
    ANALYSIS_KIND_ANOMALIES: _ClassVar[AnalysisKind]
    ANALYSIS_KIND_CORRELATION: _ClassVar[AnalysisKind]
    ANALYSIS_KIND_REPORT: _ClassVar[AnalysisKind]
    ANALYSIS_KIND_FORECAST: _ClassVar[AnalysisKind]

class AnomalyMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANOMALY_METHOD_UNSPECIFIED: _ClassVar[AnomalyMethod]
    ANOMALY_METHOD_SEASONAL: _ClassVar[AnomalyMethod]
    ANOMALY_METHOD_GLOBAL: _ClassVar[AnomalyMethod]

class ResultStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESULT_STATUS_UNSPECIFIED: _ClassVar[ResultStatus]
    RESULT_STATUS_PENDING: _ClassVar[ResultStatus]
    RESULT_STATUS_RUNNING: _ClassVar[ResultStatus]
    RESULT_STATUS_SUCCEEDED: _ClassVar[ResultStatus]
    RESULT_STATUS_FAILED: _ClassVar[ResultStatus]

class InsightStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INSIGHT_STATUS_UNSPECIFIED: _ClassVar[InsightStatus]
    INSIGHT_STATUS_PENDING: _ClassVar[InsightStatus]
    INSIGHT_STATUS_READY: _ClassVar[InsightStatus]
    INSIGHT_STATUS_UNAVAILABLE: _ClassVar[InsightStatus]
ANALYSIS_KIND_UNSPECIFIED: AnalysisKind
ANALYSIS_KIND_SUMMARY: AnalysisKind
ANALYSIS_KIND_TREND: AnalysisKind
ANALYSIS_KIND_ANOMALIES: AnalysisKind
ANALYSIS_KIND_CORRELATION: AnalysisKind
ANALYSIS_KIND_REPORT: AnalysisKind
ANALYSIS_KIND_FORECAST: AnalysisKind
ANOMALY_METHOD_UNSPECIFIED: AnomalyMethod
ANOMALY_METHOD_SEASONAL: AnomalyMethod
ANOMALY_METHOD_GLOBAL: AnomalyMethod
RESULT_STATUS_UNSPECIFIED: ResultStatus
RESULT_STATUS_PENDING: ResultStatus
RESULT_STATUS_RUNNING: ResultStatus
RESULT_STATUS_SUCCEEDED: ResultStatus
RESULT_STATUS_FAILED: ResultStatus
INSIGHT_STATUS_UNSPECIFIED: InsightStatus
INSIGHT_STATUS_PENDING: InsightStatus
INSIGHT_STATUS_READY: InsightStatus
INSIGHT_STATUS_UNAVAILABLE: InsightStatus

class AnalysisParameters(_message.Message):
    __slots__ = ("lookback_seconds", "window_start", "window_end", "quantile_levels", "histogram_bins", "moving_average_window", "ewma_alpha", "anomaly_threshold", "correlate_with_dataset_id", "anomaly_method", "seasonal_periods_seconds", "forecast_horizon")
    LOOKBACK_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    QUANTILE_LEVELS_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_BINS_FIELD_NUMBER: _ClassVar[int]
    MOVING_AVERAGE_WINDOW_FIELD_NUMBER: _ClassVar[int]
    EWMA_ALPHA_FIELD_NUMBER: _ClassVar[int]
    ANOMALY_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CORRELATE_WITH_DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    ANOMALY_METHOD_FIELD_NUMBER: _ClassVar[int]
    SEASONAL_PERIODS_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FORECAST_HORIZON_FIELD_NUMBER: _ClassVar[int]
    lookback_seconds: int
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    quantile_levels: _containers.RepeatedScalarFieldContainer[float]
    histogram_bins: int
    moving_average_window: int
    ewma_alpha: float
    anomaly_threshold: float
    correlate_with_dataset_id: str
    anomaly_method: AnomalyMethod
    seasonal_periods_seconds: _containers.RepeatedScalarFieldContainer[int]
    forecast_horizon: int
    def __init__(self, lookback_seconds: _Optional[int] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., quantile_levels: _Optional[_Iterable[float]] = ..., histogram_bins: _Optional[int] = ..., moving_average_window: _Optional[int] = ..., ewma_alpha: _Optional[float] = ..., anomaly_threshold: _Optional[float] = ..., correlate_with_dataset_id: _Optional[str] = ..., anomaly_method: _Optional[_Union[AnomalyMethod, str]] = ..., seasonal_periods_seconds: _Optional[_Iterable[int]] = ..., forecast_horizon: _Optional[int] = ...) -> None: ...

class Schedule(_message.Message):
    __slots__ = ("id", "dataset_id", "kind", "parameters", "interval_seconds", "cron", "time_zone", "enabled", "next_run_time", "last_run_time", "last_result_id", "dataset_name", "create_time", "update_time", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_RESULT_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: str
    dataset_id: str
    kind: AnalysisKind
    parameters: AnalysisParameters
    interval_seconds: int
    cron: str
    time_zone: str
    enabled: bool
    next_run_time: _timestamp_pb2.Timestamp
    last_run_time: _timestamp_pb2.Timestamp
    last_result_id: str
    dataset_name: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    error: str
    def __init__(self, id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., kind: _Optional[_Union[AnalysisKind, str]] = ..., parameters: _Optional[_Union[AnalysisParameters, _Mapping]] = ..., interval_seconds: _Optional[int] = ..., cron: _Optional[str] = ..., time_zone: _Optional[str] = ..., enabled: _Optional[bool] = ..., next_run_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_run_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_result_id: _Optional[str] = ..., dataset_name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class SummaryStatistics(_message.Message):
    __slots__ = ("count", "mean", "std", "min", "max")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    count: int
    mean: float
    std: float
    min: float
    max: float
    def __init__(self, count: _Optional[int] = ..., mean: _Optional[float] = ..., std: _Optional[float] = ..., min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class Quantile(_message.Message):
    __slots__ = ("level", "value")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    level: float
    value: float
    def __init__(self, level: _Optional[float] = ..., value: _Optional[float] = ...) -> None: ...

class Histogram(_message.Message):
    __slots__ = ("edges", "counts")
    EDGES_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    edges: _containers.RepeatedScalarFieldContainer[float]
    counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, edges: _Optional[_Iterable[float]] = ..., counts: _Optional[_Iterable[int]] = ...) -> None: ...

class Trend(_message.Message):
    __slots__ = ("slope_per_second", "intercept", "r_squared", "origin_time", "uncertainty")
    SLOPE_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    INTERCEPT_FIELD_NUMBER: _ClassVar[int]
    R_SQUARED_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_TIME_FIELD_NUMBER: _ClassVar[int]
    UNCERTAINTY_FIELD_NUMBER: _ClassVar[int]
    slope_per_second: float
    intercept: float
    r_squared: float
    origin_time: _timestamp_pb2.Timestamp
    uncertainty: TrendUncertainty
    def __init__(self, slope_per_second: _Optional[float] = ..., intercept: _Optional[float] = ..., r_squared: _Optional[float] = ..., origin_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., uncertainty: _Optional[_Union[TrendUncertainty, _Mapping]] = ...) -> None: ...

class TrendUncertainty(_message.Message):
    __slots__ = ("slope_std_error", "slope_ci_low", "slope_ci_high", "p_value", "significant", "hac_lags")
    SLOPE_STD_ERROR_FIELD_NUMBER: _ClassVar[int]
    SLOPE_CI_LOW_FIELD_NUMBER: _ClassVar[int]
    SLOPE_CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    SIGNIFICANT_FIELD_NUMBER: _ClassVar[int]
    HAC_LAGS_FIELD_NUMBER: _ClassVar[int]
    slope_std_error: float
    slope_ci_low: float
    slope_ci_high: float
    p_value: float
    significant: bool
    hac_lags: int
    def __init__(self, slope_std_error: _Optional[float] = ..., slope_ci_low: _Optional[float] = ..., slope_ci_high: _Optional[float] = ..., p_value: _Optional[float] = ..., significant: _Optional[bool] = ..., hac_lags: _Optional[int] = ...) -> None: ...

class Anomaly(_message.Message):
    __slots__ = ("timestamp_us", "value", "score", "expected")
    TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    timestamp_us: int
    value: float
    score: float
    expected: float
    def __init__(self, timestamp_us: _Optional[int] = ..., value: _Optional[float] = ..., score: _Optional[float] = ..., expected: _Optional[float] = ...) -> None: ...

class AnomalyEvent(_message.Message):
    __slots__ = ("start_us", "end_us", "peak_us", "peak_value", "expected", "lower", "upper", "score", "point_count")
    START_US_FIELD_NUMBER: _ClassVar[int]
    END_US_FIELD_NUMBER: _ClassVar[int]
    PEAK_US_FIELD_NUMBER: _ClassVar[int]
    PEAK_VALUE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    POINT_COUNT_FIELD_NUMBER: _ClassVar[int]
    start_us: int
    end_us: int
    peak_us: int
    peak_value: float
    expected: float
    lower: float
    upper: float
    score: float
    point_count: int
    def __init__(self, start_us: _Optional[int] = ..., end_us: _Optional[int] = ..., peak_us: _Optional[int] = ..., peak_value: _Optional[float] = ..., expected: _Optional[float] = ..., lower: _Optional[float] = ..., upper: _Optional[float] = ..., score: _Optional[float] = ..., point_count: _Optional[int] = ...) -> None: ...

class AnomalyReport(_message.Message):
    __slots__ = ("median", "mad", "threshold", "scale_method", "anomaly_count", "anomalies", "method", "periods_seconds", "periods_origin", "regularization", "flagged_point_count", "events", "fallback_reason", "omitted_event_count")
    MEDIAN_FIELD_NUMBER: _ClassVar[int]
    MAD_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SCALE_METHOD_FIELD_NUMBER: _ClassVar[int]
    ANOMALY_COUNT_FIELD_NUMBER: _ClassVar[int]
    ANOMALIES_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PERIODS_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PERIODS_ORIGIN_FIELD_NUMBER: _ClassVar[int]
    REGULARIZATION_FIELD_NUMBER: _ClassVar[int]
    FLAGGED_POINT_COUNT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    OMITTED_EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    median: float
    mad: float
    threshold: float
    scale_method: str
    anomaly_count: int
    anomalies: _containers.RepeatedCompositeFieldContainer[Anomaly]
    method: str
    periods_seconds: _containers.RepeatedScalarFieldContainer[int]
    periods_origin: str
    regularization: str
    flagged_point_count: int
    events: _containers.RepeatedCompositeFieldContainer[AnomalyEvent]
    fallback_reason: str
    omitted_event_count: int
    def __init__(self, median: _Optional[float] = ..., mad: _Optional[float] = ..., threshold: _Optional[float] = ..., scale_method: _Optional[str] = ..., anomaly_count: _Optional[int] = ..., anomalies: _Optional[_Iterable[_Union[Anomaly, _Mapping]]] = ..., method: _Optional[str] = ..., periods_seconds: _Optional[_Iterable[int]] = ..., periods_origin: _Optional[str] = ..., regularization: _Optional[str] = ..., flagged_point_count: _Optional[int] = ..., events: _Optional[_Iterable[_Union[AnomalyEvent, _Mapping]]] = ..., fallback_reason: _Optional[str] = ..., omitted_event_count: _Optional[int] = ...) -> None: ...

class Correlation(_message.Message):
    __slots__ = ("other_dataset_id", "other_dataset_name", "r", "aligned_count")
    OTHER_DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    OTHER_DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    R_FIELD_NUMBER: _ClassVar[int]
    ALIGNED_COUNT_FIELD_NUMBER: _ClassVar[int]
    other_dataset_id: str
    other_dataset_name: str
    r: float
    aligned_count: int
    def __init__(self, other_dataset_id: _Optional[str] = ..., other_dataset_name: _Optional[str] = ..., r: _Optional[float] = ..., aligned_count: _Optional[int] = ...) -> None: ...

class ResultOutput(_message.Message):
    __slots__ = ("summary", "quantiles", "histogram", "trend", "anomalies", "correlation", "forecast", "computation")
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_FIELD_NUMBER: _ClassVar[int]
    TREND_FIELD_NUMBER: _ClassVar[int]
    ANOMALIES_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_FIELD_NUMBER: _ClassVar[int]
    FORECAST_FIELD_NUMBER: _ClassVar[int]
    COMPUTATION_FIELD_NUMBER: _ClassVar[int]
    summary: SummaryStatistics
    quantiles: _containers.RepeatedCompositeFieldContainer[Quantile]
    histogram: Histogram
    trend: Trend
    anomalies: AnomalyReport
    correlation: Correlation
    forecast: Forecast
    computation: Computation
    def __init__(self, summary: _Optional[_Union[SummaryStatistics, _Mapping]] = ..., quantiles: _Optional[_Iterable[_Union[Quantile, _Mapping]]] = ..., histogram: _Optional[_Union[Histogram, _Mapping]] = ..., trend: _Optional[_Union[Trend, _Mapping]] = ..., anomalies: _Optional[_Union[AnomalyReport, _Mapping]] = ..., correlation: _Optional[_Union[Correlation, _Mapping]] = ..., forecast: _Optional[_Union[Forecast, _Mapping]] = ..., computation: _Optional[_Union[Computation, _Mapping]] = ...) -> None: ...

class ForecastPoint(_message.Message):
    __slots__ = ("timestamp_us", "value", "lower_80", "upper_80", "lower_95", "upper_95")
    TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LOWER_80_FIELD_NUMBER: _ClassVar[int]
    UPPER_80_FIELD_NUMBER: _ClassVar[int]
    LOWER_95_FIELD_NUMBER: _ClassVar[int]
    UPPER_95_FIELD_NUMBER: _ClassVar[int]
    timestamp_us: int
    value: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    def __init__(self, timestamp_us: _Optional[int] = ..., value: _Optional[float] = ..., lower_80: _Optional[float] = ..., upper_80: _Optional[float] = ..., lower_95: _Optional[float] = ..., upper_95: _Optional[float] = ...) -> None: ...

class ForecastCandidate(_message.Message):
    __slots__ = ("model", "holdout_mase", "error")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_MASE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    model: str
    holdout_mase: float
    error: str
    def __init__(self, model: _Optional[str] = ..., holdout_mase: _Optional[float] = ..., error: _Optional[str] = ...) -> None: ...

class Forecast(_message.Message):
    __slots__ = ("model", "holdout_mase", "holdout_points", "candidates", "step_us", "periods_seconds", "periods_origin", "regularization", "fallback_reason", "training_points", "points")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_MASE_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_POINTS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    STEP_US_FIELD_NUMBER: _ClassVar[int]
    PERIODS_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PERIODS_ORIGIN_FIELD_NUMBER: _ClassVar[int]
    REGULARIZATION_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    TRAINING_POINTS_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    model: str
    holdout_mase: float
    holdout_points: int
    candidates: _containers.RepeatedCompositeFieldContainer[ForecastCandidate]
    step_us: int
    periods_seconds: _containers.RepeatedScalarFieldContainer[int]
    periods_origin: str
    regularization: str
    fallback_reason: str
    training_points: int
    points: _containers.RepeatedCompositeFieldContainer[ForecastPoint]
    def __init__(self, model: _Optional[str] = ..., holdout_mase: _Optional[float] = ..., holdout_points: _Optional[int] = ..., candidates: _Optional[_Iterable[_Union[ForecastCandidate, _Mapping]]] = ..., step_us: _Optional[int] = ..., periods_seconds: _Optional[_Iterable[int]] = ..., periods_origin: _Optional[str] = ..., regularization: _Optional[str] = ..., fallback_reason: _Optional[str] = ..., training_points: _Optional[int] = ..., points: _Optional[_Iterable[_Union[ForecastPoint, _Mapping]]] = ...) -> None: ...

class Computation(_message.Message):
    __slots__ = ("mode", "exact", "approximate", "quantile_rank_error", "point_count", "batch_points", "passes", "parts", "note")
    MODE_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    APPROXIMATE_FIELD_NUMBER: _ClassVar[int]
    QUANTILE_RANK_ERROR_FIELD_NUMBER: _ClassVar[int]
    POINT_COUNT_FIELD_NUMBER: _ClassVar[int]
    BATCH_POINTS_FIELD_NUMBER: _ClassVar[int]
    PASSES_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    mode: str
    exact: bool
    approximate: _containers.RepeatedScalarFieldContainer[str]
    quantile_rank_error: float
    point_count: int
    batch_points: int
    passes: int
    parts: int
    note: str
    def __init__(self, mode: _Optional[str] = ..., exact: _Optional[bool] = ..., approximate: _Optional[_Iterable[str]] = ..., quantile_rank_error: _Optional[float] = ..., point_count: _Optional[int] = ..., batch_points: _Optional[int] = ..., passes: _Optional[int] = ..., parts: _Optional[int] = ..., note: _Optional[str] = ...) -> None: ...

class Insight(_message.Message):
    __slots__ = ("status", "text", "provider", "model", "error", "attempts", "update_time")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    status: InsightStatus
    text: str
    provider: str
    model: str
    error: str
    attempts: int
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, status: _Optional[_Union[InsightStatus, str]] = ..., text: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("id", "dataset_id", "dataset_name", "kind", "parameters", "status", "error", "schedule_id", "scheduled_time", "create_time", "start_time", "end_time", "window_start", "window_end", "anomaly_count", "output", "insight", "requested_by", "trace_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    ANOMALY_COUNT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    INSIGHT_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    dataset_id: str
    dataset_name: str
    kind: AnalysisKind
    parameters: AnalysisParameters
    status: ResultStatus
    error: str
    schedule_id: str
    scheduled_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    anomaly_count: int
    output: ResultOutput
    insight: Insight
    requested_by: str
    trace_id: str
    def __init__(self, id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., dataset_name: _Optional[str] = ..., kind: _Optional[_Union[AnalysisKind, str]] = ..., parameters: _Optional[_Union[AnalysisParameters, _Mapping]] = ..., status: _Optional[_Union[ResultStatus, str]] = ..., error: _Optional[str] = ..., schedule_id: _Optional[str] = ..., scheduled_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., anomaly_count: _Optional[int] = ..., output: _Optional[_Union[ResultOutput, _Mapping]] = ..., insight: _Optional[_Union[Insight, _Mapping]] = ..., requested_by: _Optional[str] = ..., trace_id: _Optional[str] = ...) -> None: ...

class ResultSeries(_message.Message):
    __slots__ = ("timestamps_us", "values", "trend", "moving_average", "ewma", "source_point_count")
    TIMESTAMPS_US_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    TREND_FIELD_NUMBER: _ClassVar[int]
    MOVING_AVERAGE_FIELD_NUMBER: _ClassVar[int]
    EWMA_FIELD_NUMBER: _ClassVar[int]
    SOURCE_POINT_COUNT_FIELD_NUMBER: _ClassVar[int]
    timestamps_us: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    trend: _containers.RepeatedScalarFieldContainer[float]
    moving_average: _containers.RepeatedScalarFieldContainer[float]
    ewma: _containers.RepeatedScalarFieldContainer[float]
    source_point_count: int
    def __init__(self, timestamps_us: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ..., trend: _Optional[_Iterable[float]] = ..., moving_average: _Optional[_Iterable[float]] = ..., ewma: _Optional[_Iterable[float]] = ..., source_point_count: _Optional[int] = ...) -> None: ...
