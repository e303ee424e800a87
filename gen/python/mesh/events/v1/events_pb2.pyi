import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Event(_message.Message):
    __slots__ = ("event_id", "occur_time", "source", "result_succeeded", "result_failed", "anomaly_detected")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCUR_TIME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RESULT_SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    RESULT_FAILED_FIELD_NUMBER: _ClassVar[int]
    ANOMALY_DETECTED_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occur_time: _timestamp_pb2.Timestamp
    source: str
    result_succeeded: ResultSucceeded
    result_failed: ResultFailed
    anomaly_detected: AnomalyDetected
    def __init__(self, event_id: _Optional[str] = ..., occur_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source: _Optional[str] = ..., result_succeeded: _Optional[_Union[ResultSucceeded, _Mapping]] = ..., result_failed: _Optional[_Union[ResultFailed, _Mapping]] = ..., anomaly_detected: _Optional[_Union[AnomalyDetected, _Mapping]] = ...) -> None: ...

class ResultSucceeded(_message.Message):
    __slots__ = ("result_id", "dataset_id", "dataset_name", "kind", "key_numbers", "anomaly_count", "anomalies", "insight", "window_start", "window_end", "unit")
    RESULT_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    ANOMALY_COUNT_FIELD_NUMBER: _ClassVar[int]
    ANOMALIES_FIELD_NUMBER: _ClassVar[int]
    INSIGHT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    result_id: str
    dataset_id: str
    dataset_name: str
    kind: str
    key_numbers: _containers.RepeatedCompositeFieldContainer[KeyNumber]
    anomaly_count: int
    anomalies: _containers.RepeatedCompositeFieldContainer[AnomalyPoint]
    insight: str
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    unit: str
    def __init__(self, result_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., dataset_name: _Optional[str] = ..., kind: _Optional[str] = ..., key_numbers: _Optional[_Iterable[_Union[KeyNumber, _Mapping]]] = ..., anomaly_count: _Optional[int] = ..., anomalies: _Optional[_Iterable[_Union[AnomalyPoint, _Mapping]]] = ..., insight: _Optional[str] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., unit: _Optional[str] = ...) -> None: ...

class ResultFailed(_message.Message):
    __slots__ = ("result_id", "dataset_id", "dataset_name", "kind", "error")
    RESULT_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    result_id: str
    dataset_id: str
    dataset_name: str
    kind: str
    error: str
    def __init__(self, result_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., dataset_name: _Optional[str] = ..., kind: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class AnomalyDetected(_message.Message):
    __slots__ = ("result_id", "dataset_id", "dataset_name", "anomaly_count", "anomalies", "threshold", "kind", "insight", "unit")
    RESULT_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    ANOMALY_COUNT_FIELD_NUMBER: _ClassVar[int]
    ANOMALIES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    INSIGHT_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    result_id: str
    dataset_id: str
    dataset_name: str
    anomaly_count: int
    anomalies: _containers.RepeatedCompositeFieldContainer[AnomalyPoint]
    threshold: float
    kind: str
    insight: str
    unit: str
    def __init__(self, result_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., dataset_name: _Optional[str] = ..., anomaly_count: _Optional[int] = ..., anomalies: _Optional[_Iterable[_Union[AnomalyPoint, _Mapping]]] = ..., threshold: _Optional[float] = ..., kind: _Optional[str] = ..., insight: _Optional[str] = ..., unit: _Optional[str] = ...) -> None: ...

class KeyNumber(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...

class AnomalyPoint(_message.Message):
    __slots__ = ("timestamp_us", "value", "score", "expected", "start_us", "end_us")
    TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    START_US_FIELD_NUMBER: _ClassVar[int]
    END_US_FIELD_NUMBER: _ClassVar[int]
    timestamp_us: int
    value: float
    score: float
    expected: float
    start_us: int
    end_us: int
    def __init__(self, timestamp_us: _Optional[int] = ..., value: _Optional[float] = ..., score: _Optional[float] = ..., expected: _Optional[float] = ..., start_us: _Optional[int] = ..., end_us: _Optional[int] = ...) -> None: ...
