import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mesh.analytics.v1 import analysis_pb2 as _analysis_pb2
from mesh.analytics.v1 import dataset_pb2 as _dataset_pb2
from mesh.analytics.v1 import points_pb2 as _points_pb2
from mesh.auth.v1 import access_pb2 as _access_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateDatasetRequest(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...

class CreateDatasetResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetDatasetResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets", "next_page_token", "total_size")
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[_dataset_pb2.Dataset]
    next_page_token: str
    total_size: int
    def __init__(self, datasets: _Optional[_Iterable[_Union[_dataset_pb2.Dataset, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class UpdateDatasetRequest(_message.Message):
    __slots__ = ("dataset", "update_mask")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateDatasetResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...

class DeleteDatasetRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteDatasetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RejectedPoint(_message.Message):
    __slots__ = ("index", "timestamp_us", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    timestamp_us: int
    reason: str
    def __init__(self, index: _Optional[int] = ..., timestamp_us: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class AppendPointsRequest(_message.Message):
    __slots__ = ("dataset_id", "timestamps_us", "values")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMPS_US_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    timestamps_us: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, dataset_id: _Optional[str] = ..., timestamps_us: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class AppendPointsResponse(_message.Message):
    __slots__ = ("accepted_count", "rejected_count", "rejected_points", "dataset")
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_POINTS_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    accepted_count: int
    rejected_count: int
    rejected_points: _containers.RepeatedCompositeFieldContainer[RejectedPoint]
    dataset: _dataset_pb2.Dataset
    def __init__(self, accepted_count: _Optional[int] = ..., rejected_count: _Optional[int] = ..., rejected_points: _Optional[_Iterable[_Union[RejectedPoint, _Mapping]]] = ..., dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...

class IngestPointsRequest(_message.Message):
    __slots__ = ("dataset_id", "timestamps_us", "values")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMPS_US_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    timestamps_us: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, dataset_id: _Optional[str] = ..., timestamps_us: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class IngestPointsResponse(_message.Message):
    __slots__ = ("accepted_count", "rejected_count", "rejected_points", "batch_count")
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_POINTS_FIELD_NUMBER: _ClassVar[int]
    BATCH_COUNT_FIELD_NUMBER: _ClassVar[int]
    accepted_count: int
    rejected_count: int
    rejected_points: _containers.RepeatedCompositeFieldContainer[RejectedPoint]
    batch_count: int
    def __init__(self, accepted_count: _Optional[int] = ..., rejected_count: _Optional[int] = ..., rejected_points: _Optional[_Iterable[_Union[RejectedPoint, _Mapping]]] = ..., batch_count: _Optional[int] = ...) -> None: ...

class ImportCsvRequest(_message.Message):
    __slots__ = ("dataset_id", "csv")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    CSV_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    csv: bytes
    def __init__(self, dataset_id: _Optional[str] = ..., csv: _Optional[bytes] = ...) -> None: ...

class RejectedCsvLine(_message.Message):
    __slots__ = ("line", "reason")
    LINE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    line: int
    reason: str
    def __init__(self, line: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class ImportCsvResponse(_message.Message):
    __slots__ = ("accepted_count", "rejected_count", "rejected_lines", "dataset", "header")
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_LINES_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    accepted_count: int
    rejected_count: int
    rejected_lines: _containers.RepeatedCompositeFieldContainer[RejectedCsvLine]
    dataset: _dataset_pb2.Dataset
    header: str
    def __init__(self, accepted_count: _Optional[int] = ..., rejected_count: _Optional[int] = ..., rejected_lines: _Optional[_Iterable[_Union[RejectedCsvLine, _Mapping]]] = ..., dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ..., header: _Optional[str] = ...) -> None: ...

class UploadCsvRequest(_message.Message):
    __slots__ = ("dataset_id", "csv")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    CSV_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    csv: _httpbody_pb2.HttpBody
    def __init__(self, dataset_id: _Optional[str] = ..., csv: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class UploadCsvResponse(_message.Message):
    __slots__ = ("accepted_count", "rejected_count", "rejected_lines", "dataset", "header")
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_LINES_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    accepted_count: int
    rejected_count: int
    rejected_lines: _containers.RepeatedCompositeFieldContainer[RejectedCsvLine]
    dataset: _dataset_pb2.Dataset
    header: str
    def __init__(self, accepted_count: _Optional[int] = ..., rejected_count: _Optional[int] = ..., rejected_lines: _Optional[_Iterable[_Union[RejectedCsvLine, _Mapping]]] = ..., dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ..., header: _Optional[str] = ...) -> None: ...

class QueryPointsRequest(_message.Message):
    __slots__ = ("dataset_id", "start_time", "end_time", "step", "aggregations", "origin", "page_size", "page_token")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    AGGREGATIONS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    step: _duration_pb2.Duration
    aggregations: _containers.RepeatedScalarFieldContainer[_points_pb2.Aggregation]
    origin: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, dataset_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., step: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., aggregations: _Optional[_Iterable[_Union[_points_pb2.Aggregation, str]]] = ..., origin: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class QueryPointsResponse(_message.Message):
    __slots__ = ("points", "buckets", "next_page_token")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    points: _points_pb2.PointSeries
    buckets: _points_pb2.PointBuckets
    next_page_token: str
    def __init__(self, points: _Optional[_Union[_points_pb2.PointSeries, _Mapping]] = ..., buckets: _Optional[_Union[_points_pb2.PointBuckets, _Mapping]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class BatchQueryPointsRequest(_message.Message):
    __slots__ = ("dataset_ids", "start_time", "end_time", "step", "aggregations", "origin")
    DATASET_IDS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    AGGREGATIONS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    dataset_ids: _containers.RepeatedScalarFieldContainer[str]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    step: _duration_pb2.Duration
    aggregations: _containers.RepeatedScalarFieldContainer[_points_pb2.Aggregation]
    origin: _timestamp_pb2.Timestamp
    def __init__(self, dataset_ids: _Optional[_Iterable[str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., step: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., aggregations: _Optional[_Iterable[_Union[_points_pb2.Aggregation, str]]] = ..., origin: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BatchQueryPointsResponse(_message.Message):
    __slots__ = ("datasets",)
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[_points_pb2.DatasetBuckets]
    def __init__(self, datasets: _Optional[_Iterable[_Union[_points_pb2.DatasetBuckets, _Mapping]]] = ...) -> None: ...

class ExportPointsRequest(_message.Message):
    __slots__ = ("dataset_id", "start_time", "end_time")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, dataset_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeletePointsRequest(_message.Message):
    __slots__ = ("dataset_id", "start_time", "end_time")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, dataset_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeletePointsResponse(_message.Message):
    __slots__ = ("deleted_count", "dataset")
    DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    deleted_count: int
    dataset: _dataset_pb2.Dataset
    def __init__(self, deleted_count: _Optional[int] = ..., dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...

class CreateScheduleRequest(_message.Message):
    __slots__ = ("schedule",)
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: _analysis_pb2.Schedule
    def __init__(self, schedule: _Optional[_Union[_analysis_pb2.Schedule, _Mapping]] = ...) -> None: ...

class CreateScheduleResponse(_message.Message):
    __slots__ = ("schedule",)
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: _analysis_pb2.Schedule
    def __init__(self, schedule: _Optional[_Union[_analysis_pb2.Schedule, _Mapping]] = ...) -> None: ...

class GetScheduleRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetScheduleResponse(_message.Message):
    __slots__ = ("schedule",)
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: _analysis_pb2.Schedule
    def __init__(self, schedule: _Optional[_Union[_analysis_pb2.Schedule, _Mapping]] = ...) -> None: ...

class ListSchedulesRequest(_message.Message):
    __slots__ = ("dataset_id", "page_size", "page_token")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    page_size: int
    page_token: str
    def __init__(self, dataset_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSchedulesResponse(_message.Message):
    __slots__ = ("schedules", "next_page_token")
    SCHEDULES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    schedules: _containers.RepeatedCompositeFieldContainer[_analysis_pb2.Schedule]
    next_page_token: str
    def __init__(self, schedules: _Optional[_Iterable[_Union[_analysis_pb2.Schedule, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateScheduleRequest(_message.Message):
    __slots__ = ("schedule", "update_mask")
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    schedule: _analysis_pb2.Schedule
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, schedule: _Optional[_Union[_analysis_pb2.Schedule, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateScheduleResponse(_message.Message):
    __slots__ = ("schedule",)
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: _analysis_pb2.Schedule
    def __init__(self, schedule: _Optional[_Union[_analysis_pb2.Schedule, _Mapping]] = ...) -> None: ...

class DeleteScheduleRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteScheduleResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RunAnalysisRequest(_message.Message):
    __slots__ = ("dataset_id", "kind", "parameters")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    kind: _analysis_pb2.AnalysisKind
    parameters: _analysis_pb2.AnalysisParameters
    def __init__(self, dataset_id: _Optional[str] = ..., kind: _Optional[_Union[_analysis_pb2.AnalysisKind, str]] = ..., parameters: _Optional[_Union[_analysis_pb2.AnalysisParameters, _Mapping]] = ...) -> None: ...

class RunAnalysisResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _analysis_pb2.Result
    def __init__(self, result: _Optional[_Union[_analysis_pb2.Result, _Mapping]] = ...) -> None: ...

class GetResultRequest(_message.Message):
    __slots__ = ("id", "series_points")
    ID_FIELD_NUMBER: _ClassVar[int]
    SERIES_POINTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    series_points: int
    def __init__(self, id: _Optional[str] = ..., series_points: _Optional[int] = ...) -> None: ...

class GetResultResponse(_message.Message):
    __slots__ = ("result", "series")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    result: _analysis_pb2.Result
    series: _analysis_pb2.ResultSeries
    def __init__(self, result: _Optional[_Union[_analysis_pb2.Result, _Mapping]] = ..., series: _Optional[_Union[_analysis_pb2.ResultSeries, _Mapping]] = ...) -> None: ...

class ListResultEventsRequest(_message.Message):
    __slots__ = ("result_id", "page_size", "page_token")
    RESULT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    result_id: str
    page_size: int
    page_token: str
    def __init__(self, result_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListResultEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token", "total_size", "first_rank")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    FIRST_RANK_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_analysis_pb2.AnomalyEvent]
    next_page_token: str
    total_size: int
    first_rank: int
    def __init__(self, events: _Optional[_Iterable[_Union[_analysis_pb2.AnomalyEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ..., first_rank: _Optional[int] = ...) -> None: ...

class ListResultsRequest(_message.Message):
    __slots__ = ("dataset_id", "kind", "status", "created_after", "created_before", "has_anomalies", "order_by", "page_size", "page_token")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    HAS_ANOMALIES_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    kind: _analysis_pb2.AnalysisKind
    status: _analysis_pb2.ResultStatus
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    has_anomalies: bool
    order_by: str
    page_size: int
    page_token: str
    def __init__(self, dataset_id: _Optional[str] = ..., kind: _Optional[_Union[_analysis_pb2.AnalysisKind, str]] = ..., status: _Optional[_Union[_analysis_pb2.ResultStatus, str]] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., has_anomalies: _Optional[bool] = ..., order_by: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListResultsResponse(_message.Message):
    __slots__ = ("results", "next_page_token")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[_analysis_pb2.Result]
    next_page_token: str
    def __init__(self, results: _Optional[_Iterable[_Union[_analysis_pb2.Result, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchResultsRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class WatchResultsResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _analysis_pb2.Result
    def __init__(self, result: _Optional[_Union[_analysis_pb2.Result, _Mapping]] = ...) -> None: ...

class AskAboutResultRequest(_message.Message):
    __slots__ = ("result_id", "question")
    RESULT_ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    result_id: str
    question: str
    def __init__(self, result_id: _Optional[str] = ..., question: _Optional[str] = ...) -> None: ...

class AskAboutResultResponse(_message.Message):
    __slots__ = ("text", "finish_reason", "provider", "model")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    text: str
    finish_reason: str
    provider: str
    model: str
    def __init__(self, text: _Optional[str] = ..., finish_reason: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...
