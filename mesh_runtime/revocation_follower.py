"""Keeps a service's token revocations current from NATS (services without
the analytics database: llm, notify).

The analytics service publishes each revocation (``mesh.auth.v1.TokenRevocation``)
through its transactional outbox to the ``AUTH_REVOCATIONS`` stream. A
follower reads the stream from its first message when it starts, so it knows
every revocation still in force, then receives new ones as they come, with an
ordered consumer (nats-py re-creates it after a gap or a reconnect). Until
NATS answers, the service checks signatures, roles and expiry only, and keeps
trying.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from mesh.auth.v1 import revocation_pb2
from mesh_runtime import streams
from mesh_runtime.auth import Revocation, Revocations

logger = logging.getLogger("mesh.auth")

RETRY_SECONDS = 2.0


def to_message(revocation: Revocation) -> revocation_pb2.TokenRevocation:
    """The wire form of a revocation."""
    message = revocation_pb2.TokenRevocation(key=revocation.key, min_generation=revocation.min_generation)
    message.expire_time.FromSeconds(int(revocation.expire_time))
    return message


def from_message(message: revocation_pb2.TokenRevocation) -> Revocation:
    """A revocation from its wire form."""
    return Revocation(message.key, message.min_generation, float(message.expire_time.seconds))


class RevocationFollower:
    """Fills ``revocations`` from the AUTH_REVOCATIONS stream at ``nats_url`` until closed."""

    def __init__(self, nats_url: str, revocations: Revocations, name: str) -> None:
        self.nats_url = nats_url
        self.revocations = revocations
        self.name = name
        self.following = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _received(self, msg: Msg) -> None:
        try:
            self.revocations.add(from_message(revocation_pb2.TokenRevocation.FromString(msg.data)))
        except Exception:  # noqa: BLE001 - a malformed message must not stop the others
            logger.warning("ignored a malformed token revocation", extra={"subject": msg.subject})

    async def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                nc = await streams.connect(self.nats_url, f"{self.name}-revocations", first_connect_timeout=5)
            except RuntimeError as exc:
                logger.warning("cannot follow token revocations yet; retrying", extra={"error": str(exc)})
                await self._sleep(RETRY_SECONDS)
                continue
            try:
                js = nc.jetstream()
                await streams.wait_for_streams(js, timeout=10)
                await js.subscribe(
                    streams.REVOCATION_SUBJECT,
                    cb=self._received,
                    ordered_consumer=True,
                    deliver_policy=DeliverPolicy.ALL,
                )
                self.following.set()
                await self._stop.wait()
            except Exception as exc:  # noqa: BLE001 - e.g. JetStream not ready: retried
                logger.warning("cannot follow token revocations yet; retrying", extra={"error": str(exc)})
                await self._sleep(RETRY_SECONDS)
            finally:
                self.following.clear()
                with contextlib.suppress(Exception):
                    await nc.close()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    def start(self) -> None:
        """Start following in the background."""
        self._task = asyncio.create_task(self._follow())

    async def close(self) -> None:
        """Stop following."""
        self._stop.set()
        if self._task is not None:
            await self._task
