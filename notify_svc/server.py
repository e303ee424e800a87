"""Wire the notify service: database, store, servicer, gRPC server, and the
two background loops (the JetStream event consumer and the e-mail dispatcher)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid

from mesh.notify.v1 import notify_service_pb2_grpc
from mesh_runtime import contracts, streams
from mesh_runtime.auth import verifier_from_settings
from mesh_runtime.config import ConfigError
from mesh_runtime.database import BlockingRunner
from mesh_runtime.metrics import metrics_enabled, refresh_every
from mesh_runtime.revocation_follower import RevocationFollower
from mesh_runtime.server import ServiceBinding
from mesh_runtime.service_main import Built, start_database_service
from notify_svc import email_message, store
from notify_svc.api import NotifyServicer
from notify_svc.config import NotifySettings
from notify_svc.delivery import DeliveryPolicy, Dispatcher
from notify_svc.events import ConsumerPolicy, EventConsumer
from notify_svc.mailer import Mailer, SmtpConfig

SERVICE_NAME = contracts.NOTIFY_SERVICE

logger = logging.getLogger("notify.server")

_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def check_settings(settings: NotifySettings) -> None:
    """Refuse settings the service cannot run with (ConfigError names the variable)."""
    if not settings.link_secret:
        raise ConfigError(
            "NOTIFY_LINK_SECRET: not set; it signs the unsubscribe links "
            "(`./mesh up` makes one; elsewhere use 32+ random characters)"
        )
    if settings.retention_days * 86400 <= streams.WEEK_SECONDS:
        raise ConfigError("NOTIFY_RETENTION_DAYS: must be more than the events stream's 7 days")
    if settings.lease_seconds < 1:
        raise ConfigError("NOTIFY_LEASE_SECONDS: must be at least 1 (it is renewed every third of it)")
    if settings.max_deliver <= len(settings.redelivery_backoff):
        raise ConfigError(
            "NOTIFY_MAX_DELIVER: must be larger than the number of NOTIFY_REDELIVERY_BACKOFF_SECONDS steps"
        )
    if bool(settings.smtp_username) != bool(settings.smtp_password):
        raise ConfigError("SMTP_USERNAME and SMTP_PASSWORD: set both or neither")
    if settings.smtp_username and settings.smtp_security == "none" and settings.smtp_host not in _LOOPBACK:
        raise ConfigError(
            "SMTP_SECURITY: is none, so the SMTP password would cross the network in clear; use starttls or tls"
        )


def _policies(settings: NotifySettings) -> tuple[DeliveryPolicy, ConsumerPolicy, SmtpConfig]:
    delivery = DeliveryPolicy(
        owner=f"{socket.gethostname()}/{uuid.uuid4().hex[:12]}",
        sender=email_message.sender_address(settings.sender),
        web_base_url=settings.web_base_url,
        rest_base_url=settings.rest_base_url,
        link_secret=settings.link_secret.reveal(),
        connections=settings.smtp_connections,
        max_attempts=settings.max_attempts,
        retry_base=settings.retry_base,
        retry_max=settings.retry_max,
        lease_seconds=settings.lease_seconds,
        poll_seconds=settings.poll_seconds,
        retention_days=settings.retention_days,
    )
    consumer = ConsumerPolicy(
        name=settings.consumer_name,
        max_deliver=settings.max_deliver,
        backoff=settings.redelivery_backoff,
        fetch_batch=settings.fetch_batch,
    )
    smtp = SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=settings.smtp_password.reveal(),
        timeout=settings.smtp_timeout,
        ca_file=settings.smtp_ca_file,
    )
    return delivery, consumer, smtp


async def build(settings: NotifySettings) -> Built:
    """Open (and migrate) the database, start the server and the background
    loops; return the server and its cleanup."""
    verifier = verifier_from_settings(settings.jwks_file, settings.issuer, settings.audience)
    check_settings(settings)
    delivery_policy, consumer_policy, smtp = _policies(settings)
    mailer = Mailer(smtp, settings.smtp_connections)
    wired: dict[str, object] = {}

    def bindings(runner: BlockingRunner) -> list[ServiceBinding]:
        dispatcher = Dispatcher(runner, mailer, delivery_policy)
        wired.update(runner=runner, dispatcher=dispatcher)
        return [
            ServiceBinding(
                SERVICE_NAME,
                notify_service_pb2_grpc.add_NotifyServiceServicer_to_server,
                NotifyServicer(runner, dispatcher, settings.link_secret.reveal()),
            )
        ]

    running, close_database = await start_database_service(
        address=f"{settings.grpc_host}:{settings.grpc_port}",
        database_url=settings.database_url,
        setting_name="NOTIFY_DATABASE_URL",
        migrations=store.MIGRATIONS,
        bind_store=store.bind,
        bindings=bindings,
        pool_size=settings.db_pool_size,
        reflection_enabled=settings.reflection,
        thread_name="notify-db",
        verifier=verifier,
    )
    runner = wired["runner"]
    dispatcher = wired["dispatcher"]
    assert isinstance(runner, BlockingRunner) and isinstance(dispatcher, Dispatcher)
    consumer = EventConsumer(runner, settings.nats_url, consumer_policy, on_queued=dispatcher.wake)
    revocations = RevocationFollower(settings.nats_url, verifier.revocations, "notify")
    revocations.start()
    stop = asyncio.Event()
    loops = [
        asyncio.create_task(consumer.run(stop), name="notify-consumer"),
        asyncio.create_task(dispatcher.run(stop), name="notify-dispatcher"),
    ]
    if metrics_enabled():
        loops.append(
            asyncio.create_task(
                refresh_every(stop, consumer.refresh_gauges, "the event consumer's gauges"), name="notify-gauges"
            )
        )
    logger.info(
        "notify loops started",
        extra={"consumer": consumer_policy.name, "owner": delivery_policy.owner, "smtp": f"{smtp.host}:{smtp.port}"},
    )

    async def cleanup() -> None:
        stop.set()
        # The loops finish what they hold (an attempt in flight is recorded);
        # one stuck on an unreachable NATS or database is cancelled.
        _, stuck = await asyncio.wait(loops, timeout=settings.shutdown_grace_seconds)
        for task in stuck:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*loops, return_exceptions=True)
        await asyncio.to_thread(mailer.close)
        await revocations.close()
        close_database()

    return running, cleanup
