"""The analytics scheduler: ``python -m analytics_svc.jobs.scheduler``.

Four loops in one process, each safe to run in several replicas at once:

- **ticks**: due schedules are taken with ``FOR UPDATE SKIP LOCKED`` and each
  due time gets one result (unique per schedule and due time) plus its job in
  the outbox, in the transaction that advances the schedule — so a tick fires
  exactly once however many schedulers run;
- **relay**: publishes the outbox to JetStream (see relay.py);
- **sweeper**: re-queues results whose job looks lost (worker stopped
  heartbeating, or still pending long after it was queued), and fails a
  result once ``ANALYTICS_JOB_MAX_ATTEMPTS`` workers were lost on it;
- **retention**: deletes the points older than their dataset's retention
  (``drop_points_before``: whole old chunks), every
  ``ANALYTICS_RETENTION_INTERVAL_SECONDS``; a second replica finds nothing
  left to delete.

With METRICS_PORT set, a fifth refreshes the outbox gauges (backlog, age of
the oldest due row) every few seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import peewee

from analytics_svc import conversions, schema
from analytics_svc import metrics as analysis_metrics
from analytics_svc.config import SchedulerSettings
from analytics_svc.datasets import store as dataset_store
from analytics_svc.jobs import leases, messages, outbox
from analytics_svc.jobs.relay import OutboxRelay
from analytics_svc.points import store as point_store
from analytics_svc.results import store as result_store
from analytics_svc.schedules import store as schedule_store
from analytics_svc.schedules import timing
from mesh_runtime import streams
from mesh_runtime.background import Health, run_background
from mesh_runtime.database import BlockingRunner, open_database, utc_now
from mesh_runtime.errors import MeshError, NotFound, Unavailable
from mesh_runtime.metrics import metrics_enabled, refresh_every
from mesh_runtime.pg_listen import PgListener
from mesh_runtime.wire import datetime_to_us

logger = logging.getLogger("analytics.scheduler")

BATCH = 100
SWEEP_SECONDS = 5.0


def _fire(schedule: schedule_store.ScheduleRow, now: dt.datetime) -> None:
    """Queue the schedule's analysis for its due tick and move it to the next one."""
    tick = schedule.next_run_time
    trigger = timing.validate(timing.Trigger(schedule.interval_seconds, schedule.cron, schedule.time_zone))
    result = messages.request_analysis(
        schedule.dataset,
        schedule.kind,
        conversions.parameters_from_json(schedule.parameters),
        "scheduler",
        schedule_id=schedule.id,
        scheduled_time=tick,
    )
    schedule.last_run_time = tick
    if result is not None:
        schedule.last_result_id = result.id
    schedule.next_run_time = timing.next_run(trigger, tick, now)
    schedule.save()


def _reason(exc: Exception) -> str:
    if isinstance(exc, MeshError):
        return exc.message
    return f"the scheduler could not fire it ({type(exc).__name__}: {exc})"


def fire_due_schedules(now: dt.datetime | None = None) -> int:
    """Fire every schedule due at ``now`` that no other scheduler holds; return how many fired.

    Each schedule fires in a savepoint of its own: one that cannot fire (a
    trigger stored before today's rules, a dataset gone bad) is disabled with
    its error and the others fire as usual.
    """
    now = now or utc_now()
    fired = 0
    with schema.database_proxy.atomic():
        due = schedule_store.due_schedules(now, BATCH)
        for schedule in due:
            try:
                with schema.database_proxy.atomic():
                    _fire(schedule, now)
                fired += 1
            except (Unavailable, peewee.OperationalError, peewee.InterfaceError):
                raise  # the database, not the schedule: the next round retries
            except Exception as exc:  # noqa: BLE001 - one bad schedule never stops the others
                reason = _reason(exc)
                logger.error("schedule disabled", extra={"schedule_id": str(schedule.id), "error": reason})
                schedule_store.fail_schedule(schedule.id, reason)
    if fired:
        logger.info("fired schedules", extra={"count": fired})
    return fired


def sweep_lost_jobs(lease: dt.timedelta, requeue_after: dt.timedelta, max_attempts: int) -> int:
    """Re-queue (or, after ``max_attempts`` lost workers, fail) results whose job looks lost."""
    now = utc_now()
    with schema.database_proxy.atomic():
        stale = leases.stale_unfinished(lease, requeue_after, BATCH)
        for row in stale:
            if row.status == result_store.RUNNING and row.attempts >= max_attempts:
                error = f"the workers running this analysis stopped {row.attempts} times; giving up"
                result_store.set_result(
                    row.id, status=result_store.FAILED, error=error, end_time=now, heartbeat_time=None
                )
                outbox.add_to_outbox(messages.outgoing([messages.failure_event(row, error, now)]), result_id=row.id)
                continue
            result_store.set_result(row.id, status=result_store.PENDING, enqueue_time=now, heartbeat_time=None)
            outbox.add_to_outbox([messages.job_message(row.id, int(now.timestamp() * 1000))])
    if stale:
        logger.warning("re-queued lost analysis jobs", extra={"count": len(stale)})
    return len(stale)


def apply_retention(now: dt.datetime | None = None) -> int:
    """Delete every point older than its dataset's retention at ``now``; return how many."""
    now_us = datetime_to_us(now or utc_now())
    removed = 0
    for dataset_id, retention_us in dataset_store.retained_datasets():
        try:
            removed += point_store.drop_points_before(dataset_id, now_us - retention_us)
        except NotFound:
            continue  # deleted since it was listed
    if removed:
        logger.info("deleted points past their retention", extra={"count": removed})
    return removed


async def _every(stop: asyncio.Event, seconds: float, what: str, run: object) -> None:
    assert callable(run)
    while not stop.is_set():
        try:
            await run()
        except Exception as exc:  # noqa: BLE001 - a failed round is retried next round
            logger.warning(f"{what} failed; retrying", extra={"error": str(exc)})
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            pass


async def main(settings: SchedulerSettings, stop: asyncio.Event, health: Health) -> None:
    """Run ticks, relay and sweeper until ``stop``."""
    db = await asyncio.to_thread(
        open_database,
        settings.database_url,
        schema.MIGRATIONS,
        setting_name="ANALYTICS_DATABASE_URL",
        pool_size=3,
        bind=schema.bind,
    )
    runner = BlockingRunner(db, workers=3, name="scheduler-db")
    nc = await streams.connect(settings.nats_url, "analytics-scheduler")
    try:
        js = nc.jetstream()
        await streams.wait_for_streams(js)
        relay = OutboxRelay(runner, js)
        listener = PgListener(
            settings.database_url, [outbox.OUTBOX_CHANNEL], lambda _c, _p: relay.wake(), on_connect=relay.wake
        )
        lease = dt.timedelta(seconds=settings.job_lease_seconds)
        requeue = dt.timedelta(seconds=settings.requeue_after_seconds)

        async def tick() -> None:
            await runner.run(fire_due_schedules)

        async def sweep() -> None:
            await runner.run(sweep_lost_jobs, lease, requeue, settings.max_job_attempts)

        async def retain() -> None:
            await runner.run(apply_retention)

        tasks = [
            asyncio.create_task(relay.run(stop)),
            asyncio.create_task(listener.run(stop)),
            asyncio.create_task(_every(stop, settings.tick_seconds, "firing schedules", tick)),
            asyncio.create_task(_every(stop, SWEEP_SECONDS, "sweeping lost jobs", sweep)),
            asyncio.create_task(_every(stop, settings.retention_interval_seconds, "applying retention", retain)),
        ]
        if metrics_enabled():

            async def outbox_gauges() -> None:
                await runner.run(analysis_metrics.refresh_outbox_gauges)

            tasks.append(asyncio.create_task(refresh_every(stop, outbox_gauges, "the outbox gauges")))
        await health.set(True)
        await stop.wait()
        await health.set(False)
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await nc.close()
        runner.close()


if __name__ == "__main__":
    run_background("analytics-scheduler", SchedulerSettings, main)
