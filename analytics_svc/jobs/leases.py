"""The worker lease protocol on result rows: claim, heartbeat, finish, and the
sweeps that find lost jobs and due insights.

A worker claims a result (pending -> running) with a conditional update, so
two workers never run it at once; a result whose worker stopped heartbeating
is handed back to the queue by the sweeper. Finishing a result writes its
outcome, its events and a ``pg_notify`` (for WatchResults) in one
transaction. All functions here block; callers run them through a
BlockingRunner or a thread.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import peewee

from analytics_svc.jobs.outbox import OutgoingMessage, add_to_outbox
from analytics_svc.results.store import INSIGHT_PENDING, PENDING, RUNNING, ResultRow, notify_result_changed
from analytics_svc.schema import database_proxy
from mesh_runtime.database import utc_now
from mesh_runtime.telemetry import current_ids


def claim_result(result_id: str, lease: dt.timedelta) -> ResultRow | None:
    """Mark a result running for the calling worker: only a pending result, or
    a running one whose worker stopped heartbeating for ``lease``. None when
    another worker has it or it is finished (or gone)."""
    now = utc_now()
    try:
        key = uuid.UUID(result_id)
    except ValueError:
        return None
    changes: dict[Any, Any] = {
        ResultRow.status: RUNNING,
        ResultRow.start_time: now,
        ResultRow.heartbeat_time: now,
        ResultRow.attempts: ResultRow.attempts + 1,
    }
    trace_id, _ = current_ids()
    if trace_id:
        # A scheduled result had no trace until a worker ran it: the run's trace is kept.
        changes[ResultRow.trace_id] = peewee.Case(None, [(ResultRow.trace_id == "", trace_id)], ResultRow.trace_id)
    with database_proxy.atomic():
        updated = (
            ResultRow.update(changes)
            .where(
                (ResultRow.id == key)
                & (
                    (ResultRow.status == PENDING)
                    | ((ResultRow.status == RUNNING) & (ResultRow.heartbeat_time < now - lease))
                )
            )
            .execute()
        )
        if not updated:
            return None
        notify_result_changed(key)
    return ResultRow.get_by_id(key)


def heartbeat(result_id: uuid.UUID) -> None:
    """Tell the sweeper the worker of a running result is alive."""
    ResultRow.update(heartbeat_time=utc_now()).where(
        (ResultRow.id == result_id) & (ResultRow.status == RUNNING)
    ).execute()


def finish_result(
    result_id: uuid.UUID,
    values: dict[str, Any],
    events: Sequence[OutgoingMessage],
    events_delay: dt.timedelta | None,
) -> bool:
    """Store a running result's outcome and its events in one transaction.

    False (nothing written) when the result is no longer running for us —
    e.g. the sweeper handed it to another worker after our lease expired.
    """
    with database_proxy.atomic():
        updated = (
            ResultRow.update(**values, end_time=utc_now(), heartbeat_time=None)
            .where((ResultRow.id == result_id) & (ResultRow.status == RUNNING))
            .execute()
        )
        if not updated:
            return False
        add_to_outbox(events, result_id=result_id, delay=events_delay)
        notify_result_changed(result_id)
    return True


def stale_unfinished(lease: dt.timedelta, requeue_after: dt.timedelta, limit: int) -> list[ResultRow]:
    """Results whose job looks lost: running without a heartbeat for ``lease``,
    or pending and not (re-)enqueued for ``requeue_after``. Locked for the caller."""
    now = utc_now()
    query = (
        ResultRow.select()
        .where(
            ((ResultRow.status == RUNNING) & (ResultRow.heartbeat_time < now - lease))
            | ((ResultRow.status == PENDING) & (ResultRow.enqueue_time < now - requeue_after))
        )
        .limit(limit)
        .for_update(skip_locked=True)
    )
    return list(query)


def due_insights(now: dt.datetime, lease: dt.timedelta, limit: int) -> list[ResultRow]:
    """Results whose insight is due to be (re)written, claimed for ``lease``."""
    with database_proxy.atomic():
        rows = list(
            ResultRow.select()
            .where((ResultRow.insight_status == INSIGHT_PENDING) & (ResultRow.insight_next_attempt <= now))
            .order_by(ResultRow.insight_next_attempt)
            .limit(limit)
            .for_update(skip_locked=True)
        )
        if rows:
            ResultRow.update(insight_next_attempt=now + lease).where(ResultRow.id.in_([r.id for r in rows])).execute()
    return rows
