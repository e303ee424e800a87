"""Wire the analytics service: database, stores, accounts, servicers, gRPC server."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import grpc

from analytics_svc import schema
from analytics_svc.analyses.chunked import DEFAULT_ANALYSIS_MEMORY_MB, Budget
from analytics_svc.auth import store as auth_store
from analytics_svc.auth.accounts import Accounts
from analytics_svc.auth.api import AuthServicer
from analytics_svc.auth.revocations import RevocationFeed
from analytics_svc.auth.throttle import LoginThrottle, ThrottlePolicy
from analytics_svc.config import AnalyticsSettings
from analytics_svc.datasets.api import DatasetsApi
from analytics_svc.points.api import PointsApi
from analytics_svc.points.query_api import PointQueriesApi
from analytics_svc.results.api import ResultsApi
from analytics_svc.results.watch import ResultHub
from analytics_svc.schedules.api import DEFAULT_MIN_SCHEDULE_INTERVAL_SECONDS, SchedulesApi
from mesh.analytics.v1 import analytics_service_pb2_grpc
from mesh.auth.v1 import access_pb2, auth_service_pb2_grpc
from mesh_runtime import contracts
from mesh_runtime.auth import verifier_from_settings
from mesh_runtime.auth_keys import TokenSigner
from mesh_runtime.clients import open_channel
from mesh_runtime.config import ConfigError
from mesh_runtime.database import BlockingRunner
from mesh_runtime.errors import AlreadyExists
from mesh_runtime.server import ServiceBinding
from mesh_runtime.service_main import Built, start_database_service

logger = logging.getLogger("analytics")

SERVICE_NAME = contracts.ANALYTICS_SERVICE
AUTH_SERVICE_NAME = contracts.AUTH_SERVICE



class AnalyticsServicer(
    DatasetsApi,
    PointsApi,
    PointQueriesApi,
    SchedulesApi,
    ResultsApi,
    analytics_service_pb2_grpc.AnalyticsServiceServicer,
):
    """AnalyticsService: one servicer made of each capability's RPCs (``<capability>/api.py``,
    and ``points/query_api.py`` for reading points)."""

    def __init__(
        self,
        runner: BlockingRunner,
        hub: ResultHub,
        llm_channel: grpc.aio.Channel | None,
        min_schedule_interval_seconds: int = DEFAULT_MIN_SCHEDULE_INTERVAL_SECONDS,
        analysis_memory_mb: int = DEFAULT_ANALYSIS_MEMORY_MB,
    ) -> None:
        self.runner = runner
        self.hub = hub
        self.llm_channel = llm_channel
        self.min_schedule_interval_seconds = min_schedule_interval_seconds
        self.chart_budget = Budget.of(analysis_memory_mb)


def accounts_from_settings(settings: AnalyticsSettings) -> Accounts:
    """Accounts signing with the configured key; ConfigError naming the variable if unusable."""
    if not settings.signing_key_file:
        raise ConfigError("AUTH_SIGNING_KEY_FILE: not set; point it at the private signing key")
    try:
        signer = TokenSigner.from_file(Path(settings.signing_key_file), settings.issuer, settings.audience)
    except ValueError as exc:
        raise ConfigError(f"AUTH_SIGNING_KEY_FILE: {exc}") from None
    throttle = LoginThrottle(
        ThrottlePolicy(
            window=dt.timedelta(seconds=settings.login_failure_window_seconds),
            account_free_failures=settings.login_account_free_failures,
            address_free_failures=settings.login_address_free_failures,
            first_delay=dt.timedelta(seconds=settings.login_first_delay_seconds),
            max_delay=dt.timedelta(seconds=settings.login_max_delay_seconds),
        )
    )
    return Accounts(
        signer,
        dt.timedelta(seconds=settings.access_token_ttl_seconds),
        dt.timedelta(seconds=settings.refresh_token_ttl_seconds),
        throttle=throttle,
        refresh_grace=dt.timedelta(seconds=settings.refresh_reuse_grace_seconds),
        max_token_ttl=dt.timedelta(seconds=settings.max_token_ttl_seconds),
    )


def bootstrap_admin(accounts: Accounts, username: str, password: str) -> None:
    """Create the first admin from the environment when there is no admin yet."""
    if not username or auth_store.count_admins() > 0:
        return
    if len(password) < 12:
        raise ConfigError("AUTH_BOOTSTRAP_ADMIN_PASSWORD: needs at least 12 characters")
    try:
        accounts.create_user(username, password, access_pb2.ROLE_ADMIN)
        logger.info("created the first admin", extra={"username": username})
    except AlreadyExists:
        raise ConfigError(
            f"AUTH_BOOTSTRAP_ADMIN_USERNAME: {username!r} exists but is not an enabled admin"
        ) from None


async def build(settings: AnalyticsSettings) -> Built:
    """Open (and migrate) the database, start the server; return it and its cleanup."""
    verifier = verifier_from_settings(settings.jwks_file, settings.issuer, settings.audience)
    accounts = accounts_from_settings(settings)
    llm_channel = open_channel(settings.llm_addr) if settings.llm_addr else None
    hubs: list[ResultHub] = []

    runners: list[BlockingRunner] = []

    def bindings(runner: BlockingRunner) -> list[ServiceBinding]:
        runners.append(runner)
        hubs.append(
            ResultHub(
                runner,
                settings.database_url,
                result_cache_bytes=settings.result_cache_mb * 1024 * 1024,
                page_cache_bytes=settings.page_cache_mb * 1024 * 1024,
            )
        )
        return [
            ServiceBinding(
                SERVICE_NAME,
                analytics_service_pb2_grpc.add_AnalyticsServiceServicer_to_server,
                AnalyticsServicer(
                    runner, hubs[0], llm_channel, settings.min_schedule_interval_seconds,
                    settings.analysis_memory_mb,
                ),  # fmt: skip
            ),
            ServiceBinding(
                AUTH_SERVICE_NAME,
                auth_service_pb2_grpc.add_AuthServiceServicer_to_server,
                AuthServicer(runner, accounts, settings.trusted_proxies),
            ),
        ]

    running, close_database = await start_database_service(
        address=f"{settings.grpc_host}:{settings.grpc_port}",
        database_url=settings.database_url,
        setting_name="ANALYTICS_DATABASE_URL",
        migrations=schema.MIGRATIONS,
        bind_store=schema.bind,
        bindings=bindings,
        pool_size=settings.db_pool_size,
        reflection_enabled=settings.reflection,
        thread_name="analytics-db",
        verifier=verifier,
        prepare=lambda: bootstrap_admin(
            accounts, settings.bootstrap_admin_username, settings.bootstrap_admin_password.reveal()
        ),
    )
    # The service reads fresh (and watches see every change) only while the hub listens.
    await hubs[0].start(lambda up: running.set_service_serving(SERVICE_NAME, up))
    revocation_feed = RevocationFeed(runners[0], settings.database_url, verifier.revocations)
    await revocation_feed.start()

    async def cleanup() -> None:
        await revocation_feed.close()
        await hubs[0].close()
        if llm_channel is not None:
            await llm_channel.close()
        close_database()

    return running, cleanup
