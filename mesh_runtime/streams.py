"""The NATS JetStream streams of the mesh, declared once for every producer and consumer.

- ``MESH_EVENTS`` keeps ``mesh.events.v1.*`` events (protobuf ``mesh.events.v1.Event``)
  for a week; consumers (notify) read them through durable consumers.
- ``ANALYSIS_JOBS`` is a work queue of analysis jobs: each message is taken by
  exactly one worker of the shared durable consumer and removed when acked.
- ``AUTH_REVOCATIONS`` keeps access-token revocations (protobuf
  ``mesh.auth.v1.TokenRevocation``) for a week; every service reads the whole
  stream when it starts and follows it (mesh_runtime/revocation_follower.py).

Every message is published with ``Nats-Msg-Id`` set to its id (the event id,
or the result id of a job), so a message published twice within the duplicate
window is stored once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from mesh.events.v1 import events_pb2
from mesh_runtime.config import redact_url

logger = logging.getLogger("mesh.streams")

EVENTS_STREAM = "MESH_EVENTS"
EVENT_SUBJECT_PREFIX = "mesh.events.v1."
JOBS_STREAM = "ANALYSIS_JOBS"
JOB_SUBJECT = "mesh.jobs.v1.analysis"
# Durable consumer every analysis worker shares.
JOBS_CONSUMER = "analysis-workers"
# A message republished within this window (e.g. by an outbox relay that
# crashed between publishing and marking the row) is stored once.
DUPLICATE_WINDOW_SECONDS = 600.0
WEEK_SECONDS = 7 * 24 * 3600.0
REVOCATIONS_STREAM = "AUTH_REVOCATIONS"
REVOCATION_SUBJECT = "mesh.auth.v1.revocations"

STREAMS = (
    StreamConfig(
        name=EVENTS_STREAM,
        description="Analysis events (mesh.events.v1.Event protobuf messages)",
        subjects=[f"{EVENT_SUBJECT_PREFIX}>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=WEEK_SECONDS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        discard=DiscardPolicy.OLD,
    ),
    StreamConfig(
        name=JOBS_STREAM,
        description="Analysis jobs; each is taken by one worker",
        subjects=[JOB_SUBJECT],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        max_age=WEEK_SECONDS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
    ),
    StreamConfig(
        name=REVOCATIONS_STREAM,
        description="Access-token revocations (mesh.auth.v1.TokenRevocation protobuf messages)",
        subjects=[REVOCATION_SUBJECT],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        # Longer than any token lives (AUTH_MAX_TOKEN_TTL_SECONDS, a day by default).
        max_age=WEEK_SECONDS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        discard=DiscardPolicy.OLD,
    ),
)


def event_subject(event: events_pb2.Event) -> str:
    """The subject an event goes to: the prefix plus its payload's field name."""
    kind = event.WhichOneof("payload")
    if kind is None:
        raise ValueError("event has no payload")
    return EVENT_SUBJECT_PREFIX + kind


async def ensure_streams(js: JetStreamContext) -> None:
    """Create the mesh's streams, or bring their settings up to date."""
    for config in STREAMS:
        try:
            await js.add_stream(config)
        except BadRequestError:
            # Exists with other settings (e.g. an older version): update in place.
            await js.update_stream(config)


async def stream_exists(js: JetStreamContext, name: str) -> bool:
    """Whether the stream ``name`` exists."""
    try:
        await js.stream_info(name)
    except NotFoundError:
        return False
    return True


async def connect(
    url: str,
    name: str,
    on_state: Callable[[bool], Awaitable[None] | None] | None = None,
    first_connect_timeout: float = 30.0,
) -> NatsClient:
    """Connect to NATS, reconnecting forever when the server goes away.

    The first connection is retried for ``first_connect_timeout`` seconds,
    then fails with a message naming NATS_URL; ``on_state(connected)`` is
    told about each disconnect and reconnect.
    """

    async def notify(connected: bool) -> None:
        logger.warning("NATS %s", "reconnected" if connected else "disconnected")
        if on_state is not None:
            outcome = on_state(connected)
            if isinstance(outcome, Awaitable):
                await outcome

    async def disconnected() -> None:
        await notify(False)

    async def reconnected() -> None:
        await notify(True)

    async def error(exc: Exception) -> None:
        logger.warning("NATS error: %s", exc)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + first_connect_timeout
    while True:
        try:
            return await nats.connect(
                servers=[u.strip() for u in url.split(",")],
                name=name,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                connect_timeout=2,
                allow_reconnect=True,
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
                error_cb=error,
            )
        except (OSError, nats.errors.Error) as exc:
            if loop.time() > deadline:
                shown = ",".join(redact_url(u.strip()) for u in url.split(","))
                raise RuntimeError(f"cannot reach NATS at NATS_URL ({shown}): {exc}") from None
            await asyncio.sleep(0.5)


async def wait_for_streams(js: JetStreamContext, timeout: float = 30.0) -> None:
    """Create the streams, retrying while JetStream is not ready yet."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await ensure_streams(js)
            return
        except Exception as exc:  # noqa: BLE001 - JetStream may still be starting
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"NATS JetStream is not available: {exc}") from exc
            await asyncio.sleep(0.5)
