"""An analytics worker: ``python -m analytics_svc.jobs.worker``.

Workers share one durable pull consumer of the ``ANALYSIS_JOBS`` work queue,
so each job message goes to one worker. Before running, a worker claims the
result in PostgreSQL (pending -> running); a claim that fails means another
worker has it or it is done, and the message is just acknowledged. While an
analysis runs the worker heartbeats (database) and signals progress (NATS);
the outcome, its events and the watchers' notification commit together, and
only then is the message acknowledged.

After a success the worker asks the LLM service for the result's insight.
The result is already visible as succeeded; its events wait in the outbox
until the first insight attempt ends (so e-mails can include the insight),
at most ``ANALYTICS_INSIGHT_TIMEOUT_SECONDS``. Failed insights are retried
with backoff by every worker's insight loop, never holding up an analysis.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from pathlib import Path

import grpc
import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from analytics_svc import conversions, schema
from analytics_svc import metrics as analysis_metrics
from analytics_svc.analyses import chunked, compute
from analytics_svc.analyses.distributed import DaskCluster
from analytics_svc.config import WorkerSettings
from analytics_svc.conversions import output_to_stored, result_to_proto
from analytics_svc.datasets import store as dataset_store
from analytics_svc.jobs import insights, leases, messages, outbox
from analytics_svc.results import store as result_store
from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.auth.v1 import access_pb2
from mesh_runtime import streams
from mesh_runtime.auth import Principal
from mesh_runtime.auth_keys import TokenSigner
from mesh_runtime.background import Health, run_background
from mesh_runtime.backoff import backoff_seconds
from mesh_runtime.clients import open_channel
from mesh_runtime.config import ConfigError
from mesh_runtime.database import BlockingRunner, open_database, utc_now
from mesh_runtime.errors import MeshError, NotFound, Unavailable
from mesh_runtime.metrics import count_redelivery, metrics_enabled, refresh_consumer_gauges, refresh_every
from mesh_runtime.telemetry import consumer_span
from mesh_runtime.wire import MIN_TIMESTAMP_US, datetime_to_us, timestamp_to_us, us_to_datetime

logger = logging.getLogger("analytics.worker")

MAX_HEARTBEAT_SECONDS = 5.0
FETCH_TIMEOUT_SECONDS = 2.0
INSIGHT_SWEEP_SECONDS = 2.0
SERVICE_TOKEN_TTL = dt.timedelta(minutes=10)


def _bounds(parameters: apb.AnalysisParameters, now: dt.datetime) -> tuple[int | None, int | None]:
    """The [start, end) of the points to analyse, in epoch microseconds (None: open)."""

    start = end = None
    if parameters.HasField("window_start"):
        start = timestamp_to_us(parameters.window_start)
    elif parameters.lookback_seconds:
        start = max(datetime_to_us(now) - parameters.lookback_seconds * 1_000_000, MIN_TIMESTAMP_US)
    if parameters.HasField("window_end"):
        end = timestamp_to_us(parameters.window_end)
    return start, end


def execute(row: result_store.ResultRow, budget: chunked.Budget) -> compute.Outcome:
    """Compute the result's window within the memory budget (blocking; a database thread)."""
    parameters = conversions.parameters_from_json(row.parameters)
    start, end = _bounds(parameters, row.start_time or utc_now())
    try:
        dataset_periods = list(dataset_store.get_dataset(str(row.dataset_id)).seasonal_periods_s or [])
    except MeshError:
        raise compute.AnalysisFailed("the dataset no longer exists") from None
    other = None
    if parameters.correlate_with_dataset_id:
        try:
            other_row = dataset_store.get_dataset(parameters.correlate_with_dataset_id)
        except MeshError:
            raise compute.AnalysisFailed("the dataset to correlate with no longer exists") from None
        other = (str(other_row.id), other_row.name)
    try:
        return chunked.execute(
            row.kind, parameters, str(row.dataset_id), start, end, other, budget, dataset_periods
        )
    except MeshError as exc:  # InvalidArgument from the analyses: the data cannot be analysed
        if isinstance(exc, Unavailable | NotFound):
            raise
        raise compute.AnalysisFailed(exc.message) from None


def _retry_delay(msg: Msg) -> float:
    """Seconds before a job that failed on the database is offered again:
    2 s, doubling with each delivery, at most 30 s."""
    try:
        delivered = int(msg.metadata.num_delivered or 1)
    except Exception:  # noqa: BLE001 - a message without JetStream metadata
        delivered = 1
    return min(30.0, 2.0 * 2 ** (delivered - 1))


class Worker:
    """Runs analysis jobs and writes insights."""

    def __init__(self, settings: WorkerSettings, runner: BlockingRunner, signer: TokenSigner | None) -> None:
        self.settings = settings
        self.runner = runner
        self.signer = signer
        self.lease = dt.timedelta(seconds=settings.job_lease_seconds)
        self.llm = open_channel(settings.llm_addr) if settings.llm_addr and signer else None
        self.cluster = DaskCluster(settings.dask_scheduler) if settings.dask_scheduler else None
        self.budget = chunked.Budget.of(settings.analysis_memory_mb, self.cluster)
        self.completed = 0
        self._failing_on_database: set[str] = set()  # jobs whose last attempt failed on the database

    def _service_token(self) -> str:
        assert self.signer is not None
        principal = Principal("service:analytics-worker", "analytics-worker", access_pb2.ROLE_ANALYST, True)
        return self.signer.mint(principal, SERVICE_TOKEN_TTL).token

    async def handle(self, msg: Msg) -> None:
        """Run the job in ``msg`` (a result id) unless another worker has it,
        in a span of the trace that queued it (the message's headers)."""
        count_redelivery(msg, streams.JOBS_STREAM, streams.JOBS_CONSUMER)
        attributes = {"messaging.system": "nats", "messaging.destination.name": msg.subject}
        with consumer_span("analysis job", msg.headers, attributes):
            await self._handle(msg)

    async def _handle(self, msg: Msg) -> None:
        result_id = msg.data.decode(errors="replace")
        try:
            uuid.UUID(result_id)
        except ValueError:
            logger.error("malformed job message dropped", extra={"payload": result_id[:100]})
            await msg.term()
            return
        try:
            row = await self.runner.run(leases.claim_result, result_id, self.lease)
            if row is None:
                await msg.ack()
                self._failing_on_database.discard(result_id)
                return
            finished = await self._run_claimed(row, msg)
        except (Unavailable, OSError) as exc:
            # Held by us until the lease runs out (the database may not have
            # heard otherwise); retried later, backing off while it stays away.
            delay = _retry_delay(msg)
            if result_id not in self._failing_on_database:  # one line per job and outage
                self._failing_on_database.add(result_id)
                logger.warning(
                    "job failed on the database; it will be retried",
                    extra={"result_id": result_id, "error": str(exc), "retry_in": delay},
                )
            await msg.nak(delay=delay)
            return
        self._failing_on_database.discard(result_id)
        await msg.ack()
        if finished and self.llm is not None:
            await self.write_insight(row.id, first=True)

    async def _run_claimed(self, row: result_store.ResultRow, msg: Msg) -> bool:
        with analysis_metrics.running(compute.kind_name(row.kind)) as measured:
            finished, succeeded = await self._run_measured(row, msg)
            if finished:
                measured.finished(succeeded)
        return finished and succeeded

    async def _run_measured(self, row: result_store.ResultRow, msg: Msg) -> tuple[bool, bool]:
        """Run a claimed job; return whether its outcome was stored by this
        worker, and whether it succeeded."""
        beating = asyncio.create_task(self._heartbeat(row.id, msg))
        log = {"result_id": str(row.id), "dataset_id": str(row.dataset_id), "kind": row.kind}
        try:
            outcome = await self.runner.run(execute, row, self.budget)
            error = ""
        except compute.AnalysisFailed as exc:
            outcome, error = None, str(exc)
        except MeshError as exc:
            if isinstance(exc, Unavailable):
                raise
            outcome, error = None, exc.message
        except Exception:
            logger.exception("analysis crashed", extra=log)  # a bug: the traceback is the point
            outcome, error = None, f"internal error while analysing (result {row.id}); see the worker log"
        finally:
            beating.cancel()
        unit = ""
        if outcome is not None:
            try:
                unit = await self.runner.run(lambda: dataset_store.get_dataset(str(row.dataset_id)).unit)
            except NotFound:
                logger.info("analysis dropped: its dataset was deleted while it ran", extra=log)
                return False, False
        now = utc_now()
        if outcome is None:
            values = {"status": result_store.FAILED, "error": error}
            events = messages.outgoing([messages.failure_event(row, error, now)])
            hold = None
        else:
            values = {
                "status": result_store.SUCCEEDED,
                "output": output_to_stored(outcome.output),
                "anomaly_count": outcome.anomaly_count,
                "window_start": us_to_datetime(outcome.window_start_us),
                "window_end": us_to_datetime(outcome.window_end_us),
                "insight_status": result_store.INSIGHT_PENDING if self.llm is not None else result_store.INSIGHT_NONE,
                "insight_next_attempt": now + dt.timedelta(seconds=self.settings.insight_timeout_seconds + 5),
            }
            events = messages.outgoing(messages.success_events(row, outcome, unit, "", now))
            # Events wait for the first insight attempt, at most its deadline (plus slack).
            hold = dt.timedelta(seconds=self.settings.insight_timeout_seconds + 5) if self.llm else None
        finished = await self.runner.run(leases.finish_result, row.id, values, events, hold)
        if finished:
            logger.info("analysis finished", extra={**log, "status": values["status"], "error": error or None})
        elif await self.runner.run(result_store.get_results, [str(row.id)]):
            logger.info("analysis outcome dropped: another worker took the job over after the lease", extra=log)
        else:
            logger.info("analysis dropped: its dataset was deleted while it ran", extra=log)
        self.completed += 1
        return finished, outcome is not None

    async def _heartbeat(self, result_id: uuid.UUID, msg: Msg) -> None:
        # Three beats per lease: one late beat never makes a live worker look lost.
        interval = min(MAX_HEARTBEAT_SECONDS, self.settings.job_lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await msg.in_progress()
            with contextlib.suppress(Exception):
                await self.runner.run(leases.heartbeat, result_id)

    async def write_insight(self, result_id: uuid.UUID, first: bool = False) -> None:
        """One insight attempt for a succeeded result; releases its held events."""
        try:
            await self._write_insight(result_id, first)
        except NotFound:
            logger.info("insight skipped: the result was deleted with its dataset", extra={"result_id": str(result_id)})

    async def _write_insight(self, result_id: uuid.UUID, first: bool) -> None:
        assert self.llm is not None
        row = await self.runner.run(result_store.get_result, str(result_id))
        if row.insight_status != result_store.INSIGHT_PENDING:
            return
        result = result_to_proto(row)
        unit = await self.runner.run(lambda: dataset_store.get_dataset(str(row.dataset_id)).unit)
        attempts = row.insight_attempts + 1
        now = utc_now()
        try:
            reply = await insights.write_insight(
                self.llm, self._service_token(), result, unit, self.settings.insight_timeout_seconds
            )
        except grpc.RpcError as exc:
            error = f"{exc.code().name}: {exc.details()}"  # type: ignore[attr-defined]
            gave_up = attempts >= self.settings.insight_max_attempts
            logger.warning("insight failed", extra={"result_id": str(result_id), "error": error, "gave_up": gave_up})
            changes = {
                "insight_status": result_store.INSIGHT_UNAVAILABLE if gave_up else result_store.INSIGHT_PENDING,
                "insight_error": error,
                "insight_attempts": attempts,
                "insight_update_time": now,
                "insight_next_attempt": None if gave_up else now + self._retry_delay(attempts),
            }
            await self.runner.run(self._store_insight, row, changes, "" if first or gave_up else None, unit)
            return
        changes = {
            "insight_status": result_store.INSIGHT_READY,
            "insight_text": reply.text,
            "insight_provider": reply.provider,
            "insight_model": reply.model,
            "insight_error": "",
            "insight_attempts": attempts,
            "insight_update_time": now,
            "insight_next_attempt": None,
        }
        await self.runner.run(self._store_insight, row, changes, reply.text, unit)

    def _retry_delay(self, attempts: int) -> dt.timedelta:
        return dt.timedelta(seconds=backoff_seconds(attempts - 1, self.settings.insight_retry_seconds, 600.0))

    @staticmethod
    def _store_insight(row: result_store.ResultRow, changes: dict[str, object], insight: str | None, unit: str) -> None:
        """Store the insight; with ``insight`` not None, let the result's events go
        (carrying the insight when there is one)."""
        with schema.database_proxy.atomic():
            result_store.set_result(row.id, **changes)
            if insight is None:
                return
            stored = result_to_proto(result_store.get_result(str(row.id)))
            outcome = compute.Outcome(
                stored.output,
                stored.anomaly_count,
                stored.window_start.seconds * 1_000_000 + stored.window_start.nanos // 1000,
                stored.window_end.seconds * 1_000_000 + stored.window_end.nanos // 1000,
            )
            events = messages.success_events(row, outcome, unit, insight, row.end_time or utc_now())
            outbox.release_events(row.id, {e.event_id: e.SerializeToString() for e in events})

    async def insight_loop(self, stop: asyncio.Event) -> None:
        """Retry due insights (after LLM errors, or a worker lost mid-insight)."""
        lease = dt.timedelta(seconds=self.settings.insight_timeout_seconds + 5)
        while not stop.is_set():
            try:
                due = await self.runner.run(leases.due_insights, utc_now(), lease, 10)
                for row in due:
                    await self.write_insight(row.id)
            except Exception as exc:  # noqa: BLE001 - retried next round
                logger.warning("insight retry round failed", extra={"error": str(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), INSIGHT_SWEEP_SECONDS)


async def _consume(worker: Worker, js: JetStreamContext, stop: asyncio.Event, lane: int) -> None:
    subscription = None
    while not stop.is_set():
        try:
            if subscription is None:
                subscription = await js.pull_subscribe(
                    streams.JOB_SUBJECT,
                    durable=streams.JOBS_CONSUMER,
                    stream=streams.JOBS_STREAM,
                    config=ConsumerConfig(
                        ack_policy=AckPolicy.EXPLICIT,
                        deliver_policy=DeliverPolicy.ALL,
                        ack_wait=worker.settings.job_lease_seconds,
                        max_deliver=-1,
                        max_ack_pending=1000,
                    ),
                )
            messages = await subscription.fetch(1, timeout=FETCH_TIMEOUT_SECONDS)
        except (TimeoutError, nats.errors.TimeoutError):
            continue
        except (nats.errors.Error, nats.js.errors.Error, OSError) as exc:
            logger.warning("cannot fetch jobs; retrying", extra={"error": str(exc), "lane": lane})
            subscription = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            continue
        for msg in messages:
            try:
                await worker.handle(msg)
            except Exception:
                # A bug must not end the lane: the job comes back after a pause.
                logger.exception("job handling failed", extra={"lane": lane})
                with contextlib.suppress(Exception):
                    await msg.nak(delay=5)


def _signer(settings: WorkerSettings) -> TokenSigner | None:
    if not settings.llm_addr:
        return None
    if not settings.signing_key_file:
        raise ConfigError("AUTH_SIGNING_KEY_FILE: not set; workers sign their calls to the LLM service with it")
    try:
        return TokenSigner.from_file(Path(settings.signing_key_file), settings.issuer, settings.audience)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"AUTH_SIGNING_KEY_FILE: {exc}") from None


async def main(settings: WorkerSettings, stop: asyncio.Event, health: Health) -> None:
    """Consume jobs with ``concurrency`` lanes until ``stop``."""
    signer = _signer(settings)
    db = await asyncio.to_thread(
        open_database,
        settings.database_url,
        schema.MIGRATIONS,
        setting_name="ANALYTICS_DATABASE_URL",
        pool_size=settings.concurrency + 2,
        bind=schema.bind,
    )
    runner = BlockingRunner(db, workers=settings.concurrency + 2, name="worker-db")
    nc = await streams.connect(settings.nats_url, "analytics-worker")
    worker = Worker(settings, runner, signer)
    try:
        js = nc.jetstream()
        await streams.wait_for_streams(js)
        lanes = [asyncio.create_task(_consume(worker, js, stop, i)) for i in range(settings.concurrency)]
        if worker.llm is not None:
            lanes.append(asyncio.create_task(worker.insight_loop(stop)))
        if metrics_enabled():
            lanes.append(
                asyncio.create_task(
                    refresh_every(
                        stop,
                        lambda: refresh_consumer_gauges(js, streams.JOBS_STREAM, streams.JOBS_CONSUMER),
                        "the job queue's consumer gauges",
                    )
                )
            )
        await health.set(True)
        await stop.wait()
        await health.set(False)
        # Lanes finish the job in hand (its outcome commits before the ack).
        await asyncio.gather(*lanes, return_exceptions=True)
    finally:
        await nc.close()
        if worker.llm is not None:
            await worker.llm.close()
        if worker.cluster is not None:
            await asyncio.to_thread(worker.cluster.close)
        runner.close()


if __name__ == "__main__":
    run_background("analytics-worker", WorkerSettings, main)
