"""Analysis jobs and events: what goes into the outbox, built in one place.

A job message's body is the result id; its Nats-Msg-Id is the result id for
the first enqueue and ``<result id>:<n>`` for the n-th re-enqueue by the
sweeper. An event's id is derived from the result id and the event type, so
the same fact always has the same id.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from analytics_svc.analyses import compute
from analytics_svc.conversions import parameters_to_json
from analytics_svc.datasets.store import DatasetRow
from analytics_svc.jobs import outbox
from analytics_svc.results import store as result_store
from analytics_svc.schema import database_proxy
from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.events.v1 import events_pb2
from mesh_runtime.database import utc_now
from mesh_runtime.streams import JOB_SUBJECT, event_subject
from mesh_runtime.telemetry import current_ids
from mesh_runtime.wire import us_to_timestamp

_EVENT_NAMESPACE = uuid.UUID("6f1d7c1e-5d2b-4c55-9a0e-3c1f7e0b9a41")
SOURCE = "analytics"


def job_message(result_id: uuid.UUID, enqueue_number: int = 0) -> outbox.OutgoingMessage:
    """The work-queue message that asks a worker to run result ``result_id``."""
    message_id = str(result_id) if enqueue_number == 0 else f"{result_id}:{enqueue_number}"
    return outbox.OutgoingMessage(JOB_SUBJECT, message_id, str(result_id).encode())


def request_analysis(
    dataset: DatasetRow,
    kind: int,
    parameters: apb.AnalysisParameters,
    requested_by: str,
    schedule_id: uuid.UUID | None = None,
    scheduled_time: dt.datetime | None = None,
) -> result_store.ResultRow | None:
    """Create a pending result and its job in the caller's transaction (or a new
    one). None when a schedule tick already has its result."""
    with database_proxy.atomic():
        row = result_store.insert_result(
            {
                "dataset": dataset.id,
                "dataset_name": dataset.name,
                "kind": kind,
                "parameters": parameters_to_json(parameters),
                "requested_by": requested_by,
                "schedule": schedule_id,
                "scheduled_time": scheduled_time,
                "enqueue_time": utc_now(),
                "trace_id": current_ids()[0],
            }
        )
        if row is not None:
            outbox.add_to_outbox([job_message(row.id)])
    return row


def _event(result_id: uuid.UUID, occur_time: dt.datetime, **payload: Any) -> events_pb2.Event:
    (name,) = payload
    event = events_pb2.Event(
        event_id=str(uuid.uuid5(_EVENT_NAMESPACE, f"{result_id}/{name}")), source=SOURCE, **payload
    )
    event.occur_time.FromDatetime(occur_time)
    return event


def success_events(
    row: result_store.ResultRow, outcome: compute.Outcome, unit: str, insight: str, occur_time: dt.datetime
) -> list[events_pb2.Event]:
    """ResultSucceeded, plus AnomalyDetected when the analysis found anomalies."""
    kind = compute.kind_name(row.kind)
    anomalies = compute.top_anomalies(outcome.output)
    succeeded = events_pb2.ResultSucceeded(
        result_id=str(row.id),
        dataset_id=str(row.dataset_id),
        dataset_name=row.dataset_name,
        kind=kind,
        key_numbers=compute.key_numbers(outcome.output),
        anomaly_count=outcome.anomaly_count,
        anomalies=anomalies,
        insight=insight,
        unit=unit,
    )
    succeeded.window_start.CopyFrom(us_to_timestamp(outcome.window_start_us))
    succeeded.window_end.CopyFrom(us_to_timestamp(outcome.window_end_us))
    events = [_event(row.id, occur_time, result_succeeded=succeeded)]
    if outcome.anomaly_count > 0:
        detected = events_pb2.AnomalyDetected(
            result_id=str(row.id),
            dataset_id=str(row.dataset_id),
            dataset_name=row.dataset_name,
            anomaly_count=min(outcome.anomaly_count, 2**31 - 1),
            anomalies=anomalies,
            threshold=outcome.output.anomalies.threshold,
            kind=kind,
            insight=insight,
            unit=unit,
        )
        events.append(_event(row.id, occur_time, anomaly_detected=detected))
    return events


def failure_event(row: result_store.ResultRow, error: str, occur_time: dt.datetime) -> events_pb2.Event:
    """ResultFailed for a result that could not be computed."""
    failed = events_pb2.ResultFailed(
        result_id=str(row.id),
        dataset_id=str(row.dataset_id),
        dataset_name=row.dataset_name,
        kind=compute.kind_name(row.kind),
        error=error,
    )
    return _event(row.id, occur_time, result_failed=failed)


def outgoing(events: list[events_pb2.Event]) -> list[outbox.OutgoingMessage]:
    """Outbox messages of events, each with its event id as Nats-Msg-Id."""
    return [outbox.OutgoingMessage(event_subject(e), e.event_id, e.SerializeToString()) for e in events]
