"""Conversions between stored rows and proto messages, in one place.

Stores speak peewee rows and plain values; servicers, the worker and the
scheduler speak protos. Everything that turns one into the other is here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf import json_format

from analytics_svc.auth.accounts import Session
from analytics_svc.auth.store import ApiKeyRow, UserRow
from analytics_svc.datasets import store as dataset_store
from analytics_svc.points import ingest
from analytics_svc.points import query as point_query
from analytics_svc.points import store as point_store
from analytics_svc.results import store as result_store
from analytics_svc.schedules import store as schedule_store
from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import dataset_pb2
from mesh.analytics.v1 import points_pb2 as ppb
from mesh.auth.v1 import auth_service_pb2, principal_pb2
from mesh_runtime.auth import Principal
from mesh_runtime.wire import duration_to_us, us_to_duration
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
        retention=us_to_duration(row.retention_us) if row.retention_us is not None else None,
        seasonal_periods_seconds=sorted(row.seasonal_periods_s or []),
    )


def retention_us(dataset: dataset_pb2.Dataset) -> int | None:
    """A dataset message's retention in microseconds; None when unset (points kept until deleted)."""
    return duration_to_us(dataset.retention) if dataset.HasField("retention") else None


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


# Anomaly events a result message carries inline (the largest); ListResultEvents pages through all.
INLINE_EVENTS = 100


def result_to_proto(row: result_store.ResultRow | result_store.StoredResult, with_anomalies: bool = True) -> apb.Result:
    """The wire form of a stored result (the anomaly events and points only when asked:
    the top INLINE_EVENTS, saying how many more there are)."""
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
        trace_id=row.trace_id,
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
        # Only a result with an anomaly report gets one (setting a field of the
        # sub-message would make an empty report appear on every other kind).
        if message.output.HasField("anomalies"):
            report = message.output.anomalies
            keep = INLINE_EVENTS if with_anomalies else 0
            report.omitted_event_count = max(0, len(report.events) - keep)
            del report.anomalies[keep:]
            del report.events[keep:]
    return message


def result_events(row: result_store.ResultRow | result_store.StoredResult) -> list[apb.AnomalyEvent]:
    """Every anomaly event a stored result keeps, ranked (largest |score| first); none without anomalies."""
    if not row.output:
        return []
    output = apb.ResultOutput.FromString(bytes(row.output))
    return list(output.anomalies.events)


def output_to_stored(output: apb.ResultOutput) -> bytes:
    """A result's numbers as stored (serialized ResultOutput)."""
    return output.SerializeToString()


# Which array of PointBuckets each aggregation fills, and from what.
_AGGREGATES: dict[int, tuple[str, Callable[[point_store.Buckets], Any]]] = {
    ppb.AGGREGATION_COUNT: ("count", lambda b: b.count),
    ppb.AGGREGATION_MIN: ("min", lambda b: b.min),
    ppb.AGGREGATION_MAX: ("max", lambda b: b.max),
    ppb.AGGREGATION_MEAN: ("mean", lambda b: point_query.mean(b.sum, b.count)),
    ppb.AGGREGATION_SUM: ("sum", lambda b: b.sum),
    ppb.AGGREGATION_FIRST: ("first", lambda b: b.first),
    ppb.AGGREGATION_LAST: ("last", lambda b: b.last),
}


def buckets_to_proto(buckets: point_store.Buckets, aggregations: Sequence[int]) -> ppb.PointBuckets:
    """The wire form of a query's buckets: the start times and the requested aggregates."""
    message = ppb.PointBuckets(start_times_us=buckets.start_us.tolist())
    for aggregation in aggregations:
        name, pick = _AGGREGATES[aggregation]
        getattr(message, name).extend(pick(buckets).tolist())
    return message


def rejections_to_proto(rejections: list[ingest.Rejection]) -> list[pb.RejectedPoint]:
    """The wire form of screened-out points, at most MAX_REPORTED_REJECTIONS of them."""
    return [
        pb.RejectedPoint(index=r.index, timestamp_us=r.timestamp_us, reason=r.reason)
        for r in rejections[: ingest.MAX_REPORTED_REJECTIONS]
    ]


def principal_to_proto(principal: Principal) -> auth_service_pb2.Principal:
    """The wire form of a principal."""
    return auth_service_pb2.Principal(
        id=principal.id,
        name=principal.name,
        role=principal.role,  # type: ignore[arg-type]
        service_account=principal.service_account,
    )


def session_to_proto(session: Session) -> auth_service_pb2.Session:
    """The wire form of a session."""
    return auth_service_pb2.Session(
        access_token=session.access.token,
        access_token_expire_time=_timestamp(session.access.expires),
        refresh_token=session.refresh_token,
        principal=principal_to_proto(session.principal),
    )


def user_to_proto(row: UserRow) -> principal_pb2.User:
    """The wire form of a user (never the password hash)."""
    return principal_pb2.User(
        id=str(row.id),
        username=row.username,
        role=row.role,  # type: ignore[arg-type]
        disabled=row.disabled,
        create_time=_timestamp(row.create_time),
    )


def api_key_to_proto(row: ApiKeyRow) -> principal_pb2.ApiKey:
    """The wire form of an API key (never its secret)."""
    return principal_pb2.ApiKey(
        id=str(row.id),
        name=row.name,
        role=row.role,  # type: ignore[arg-type]
        prefix=row.prefix,
        revoked=row.revoked,
        create_time=_timestamp(row.create_time),
    )
