"""Conversions between stored rows and proto messages, in one place.

Stores speak peewee rows and plain values; servicers, the worker and the
scheduler speak protos. Everything that turns one into the other is here.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from analytics_svc.datasets import store as dataset_store
from analytics_svc.results import store as result_store
from analytics_svc.schedules import store as schedule_store
from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import dataset_pb2
from mesh_runtime.wire import timestamp_or_none as _timestamp


def parameters_to_json(parameters: apb.AnalysisParameters) -> dict[str, Any]:
    """Parameters as stored (proto3 JSON)."""
    return json_format.MessageToDict(parameters)


def parameters_from_json(stored: dict[str, Any] | None) -> apb.AnalysisParameters:
    """Parameters as stored, back as a message."""
    if not stored:  # the common case: all defaults, no parsing
        return apb.AnalysisParameters()
    return json_format.ParseDict(stored, apb.AnalysisParameters())


def dataset_to_proto(row: dataset_store.DatasetRow) -> dataset_pb2.Dataset:
    """The wire form of a stored dataset."""
    return dataset_pb2.Dataset(
        id=str(row.id),
        name=row.name,
        description=row.description,
        unit=row.unit,
        labels=row.labels,
        point_count=row.point_count,
        first_point_time=_timestamp(row.first_point_time),
        last_point_time=_timestamp(row.last_point_time),
        create_time=_timestamp(row.create_time),
        update_time=_timestamp(row.update_time),
    )


def schedule_to_proto(row: schedule_store.ScheduleRow) -> apb.Schedule:
    """The wire form of a stored schedule."""
    message = apb.Schedule(
        id=str(row.id),
        dataset_id=str(row.dataset_id),
        dataset_name=row.dataset.name,
        kind=apb.AnalysisKind.ValueType(row.kind),
        parameters=parameters_from_json(row.parameters),
        time_zone=row.time_zone,
        enabled=row.enabled,
        next_run_time=_timestamp(row.next_run_time if row.enabled else None),
        last_run_time=_timestamp(row.last_run_time),
        last_result_id=str(row.last_result_id) if row.last_result_id else "",
        create_time=_timestamp(row.create_time),
        update_time=_timestamp(row.update_time),
        error=row.error,
    )
    if row.cron is not None:
        message.cron = row.cron
    elif row.interval_seconds is not None:
        message.interval_seconds = row.interval_seconds
    return message


def result_to_proto(row: result_store.ResultRow | result_store.StoredResult, with_anomalies: bool = True) -> apb.Result:
    """The wire form of a stored result (the anomaly list only when asked)."""
    message = apb.Result(
        id=str(row.id),
        dataset_id=str(row.dataset_id),
        dataset_name=row.dataset_name,
        kind=apb.AnalysisKind.ValueType(row.kind),
        parameters=parameters_from_json(row.parameters),
        status=apb.ResultStatus.ValueType(row.status),
        error=row.error,
        schedule_id=str(row.schedule_id) if row.schedule_id else "",
        scheduled_time=_timestamp(row.scheduled_time),
        create_time=_timestamp(row.create_time),
        start_time=_timestamp(row.start_time),
        end_time=_timestamp(row.end_time),
        window_start=_timestamp(row.window_start),
        window_end=_timestamp(row.window_end),
        anomaly_count=row.anomaly_count,
        requested_by=row.requested_by,
        insight=apb.Insight(
            status=apb.InsightStatus.ValueType(row.insight_status),
            text=row.insight_text,
            provider=row.insight_provider,
            model=row.insight_model,
            error=row.insight_error,
            attempts=row.insight_attempts,
            update_time=_timestamp(row.insight_update_time),
        ),
    )
    output = row.output
    if output:
        message.output.ParseFromString(bytes(output))
        if not with_anomalies:
            del message.output.anomalies.anomalies[:]
    return message


def output_to_stored(output: apb.ResultOutput) -> bytes:
    """A result's numbers as stored (serialized ResultOutput)."""
    return output.SerializeToString()
