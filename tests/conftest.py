"""Session fixtures: one real local stack (PostgreSQL, NATS, mail catcher, the
three services, Envoy) on free ports, started once for the whole run.

The stack's processes are supervised by an event loop in a background
thread, so tests can be plain functions and use their own loops.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import httpx
import pytest

from gateway.envoy_config import EdgeLimits, RateLimit
from local_stack.ports import free_port
from local_stack.stack import Stack, StackSettings, resolve_ports
from mesh.auth.v1 import auth_service_pb2 as auth_pb2
from mesh.auth.v1 import auth_service_pb2_grpc as auth_pb2_grpc
from mesh.auth.v1 import principal_pb2
from mesh_runtime.auth import ROLES_BY_NAME
from mesh_runtime.auth_keys import KeyFolder
from tests.clients import authed_channel
from tests.otlp_receiver import OtlpReceiver
from tests.web.proxy import RoundRobinProxy

T = TypeVar("T")

# `./mesh` commands the tests run never read the developer's .env.
os.environ["MESH_ENV_FILE"] = os.devnull

# The stacks tests start (this one and the rigs') fire schedules every second,
# so a test sees several ticks; the product's minimum is a minute.
os.environ.setdefault("ANALYTICS_MIN_SCHEDULE_INTERVAL_SECONDS", "1")
# Every test signs in from 127.0.0.1, and the fuzzers fail sign-ins on purpose:
# that address is not throttled here (tests of the address limit name addresses
# of their own). A throttled account waits long enough for a loaded machine to
# see the wait.
os.environ.setdefault("AUTH_LOGIN_ADDRESS_FREE_FAILURES", "100000")
os.environ.setdefault("AUTH_LOGIN_FIRST_DELAY_SECONDS", "30")


class LoopThread:
    """An event loop running in a daemon thread, for supervising processes."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="stack-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


ROLES = ("admin", "analyst", "viewer")


@dataclass
class RunningStack:
    """Addresses, users and tokens of the running test stack."""

    stack: Stack
    runner: LoopThread
    credentials: dict[str, tuple[str, str]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self) -> StackSettings:
        return self.stack.settings

    @property
    def analytics(self) -> str:
        return f"127.0.0.1:{self.settings.analytics_port}"

    @property
    def llm(self) -> str:
        return f"127.0.0.1:{self.settings.llm_port}"

    @property
    def notify(self) -> str:
        return f"127.0.0.1:{self.settings.notify_port}"

    @property
    def envoy(self) -> str:
        return f"127.0.0.1:{self.settings.envoy_port}"

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.settings.envoy_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    @property
    def mail_api(self) -> str:
        return f"http://127.0.0.1:{self.settings.mail_http_port}"

    def logs(self) -> Path:
        return self.settings.state_dir / "logs"

    def database_url(self, database: str = "postgres") -> str:
        """URL of ``database`` on the stack's PostgreSQL, as its superuser (with its password)."""
        return self.stack.database_url(database)

    @property
    def nats_url(self) -> str:
        """URL of the stack's NATS, with its login."""
        return self.stack.nats_url

    @property
    def keys(self) -> KeyFolder:
        return self.stack.keys

    def channel(self, address: str, role: str = "admin") -> grpc.Channel:
        """A channel to ``address`` signed in as the test user with ``role``."""
        return authed_channel(address, self.tokens[role])

    def login(self, role: str) -> str:
        """A fresh access token for the test user with ``role``, through Login."""
        username, password = self.credentials[role]
        with grpc.insecure_channel(self.analytics) as channel:
            reply = auth_pb2_grpc.AuthServiceStub(channel).Login(
                auth_pb2.LoginRequest(username=username, password=password), timeout=10
            )
        return str(reply.session.access_token)


def _create_users(running: RunningStack) -> None:
    running.tokens["admin"] = running.login("admin")
    with running.channel(running.analytics, "admin") as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        for role in ("analyst", "viewer"):
            username, password = f"test-{role}", secrets.token_urlsafe(16)
            stub.CreateUser(
                auth_pb2.CreateUserRequest(
                    user=principal_pb2.User(username=username, role=ROLES_BY_NAME[role]), password=password
                ),
                timeout=10,
            )
            running.credentials[role] = (username, password)
            running.tokens[role] = running.login(role)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the session stack (directly or through
    another fixture), so ``-m "not stack"`` runs the quick ones alone."""
    for item in items:
        if "mesh" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stack)


# Where the test session's web app links a result's trace (tests/web/test_result_trace_link.py).
WEB_TRACE_URL = "http://127.0.0.1:16686/trace/{trace_id}"


@pytest.fixture(scope="session")
def otlp() -> Iterator[OtlpReceiver]:
    """The in-process OTLP receiver the session stack sends its spans to."""
    receiver = OtlpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def mesh(tmp_path_factory: pytest.TempPathFactory, otlp: OtlpReceiver) -> Iterator[RunningStack]:
    """The whole mesh (without the web app), started once per test session,
    tracing on and exporting to the ``otlp`` receiver."""
    state = tmp_path_factory.mktemp("stack")
    zero = {name: 0 for name in StackSettings.__dataclass_fields__ if name.endswith("_port")}
    settings = resolve_ports(
        StackSettings(
            state_dir=state,
            web=False,
            log_format="json",
            fast_database=True,
            # Two of each, always: every test runs against replicas sharing the work.
            analytics_workers=2,
            analytics_schedulers=2,
            # Spans go to the in-process receiver (``otlp``), not a viewer.
            trace_viewer=False,
            # Every test and fuzzer signs in from 127.0.0.1: Envoy's buckets would
            # make them throttle each other. tests/gateway/test_edge_limits.py tests
            # the buckets on Envoys of its own.
            envoy_limits=EdgeLimits(
                sign_in=RateLimit(burst=100_000, per_minute=60_000, key="client_address"),
                llm=RateLimit(burst=100_000, per_minute=60_000, key="subject"),
            ),
            **zero,
        )
    )
    admin = ("test-admin", secrets.token_urlsafe(16))
    stack = Stack(
        settings,
        console=None,
        extra_env={
            "AUTH_BOOTSTRAP_ADMIN_USERNAME": admin[0],
            "AUTH_BOOTSTRAP_ADMIN_PASSWORD": admin[1],
            "AUTH_ACCESS_TOKEN_TTL_SECONDS": "7200",
            # The offline provider, whatever the developer's shell exports.
            "OPENROUTER_API_KEY": "",
            "LLM_BASE_URL": "",
            "LLM_API_KEY": "",
            "OTEL_SDK_DISABLED": "false",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            # Spans reach the receiver within a fifth of a second.
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "WEB_TRACE_URL": WEB_TRACE_URL,
        },
    )
    # Two keys: tokens signed with the older one must keep working (rotation).
    stack.keys.ensure()
    stack.keys.rotate()
    runner = LoopThread()
    try:
        runner.run(stack.start(), timeout=300)
        running = RunningStack(stack, runner, credentials={"admin": admin})
        _create_users(running)
    except Exception:
        runner.run(stack.stop(), timeout=120)
        runner.close()
        raise
    yield running
    runner.run(stack.stop(), timeout=120)
    runner.close()


@dataclass
class WebReplicas:
    """The web app's replicas behind the one origin the browser tests use."""

    proxy: RoundRobinProxy
    ports: list[int]
    names: list[str]


WEB_REPLICAS = 2


@pytest.fixture(scope="session")
def web_replicas(mesh: RunningStack) -> Iterator[WebReplicas]:
    """The web app, built for production and served against the test mesh as
    two replicas sharing their sessions (Valkey) behind one origin, the web
    port, where a round-robin proxy sends each connection to the next one."""
    ports = [free_port() for _ in range(WEB_REPLICAS)]
    names = ["web", *(f"web-{i + 1}" for i in range(1, WEB_REPLICAS))]
    proxy = RoundRobinProxy(ports)
    mesh.runner.run(proxy.start(mesh.settings.web_port), timeout=10)
    # One after the other: the first builds the frontend, the next finds it built.
    for port, name in zip(ports, names, strict=True):
        mesh.runner.run(mesh.stack.start_web(port=port, name=name), timeout=900)
    yield WebReplicas(proxy, ports, names)
    mesh.runner.run(proxy.stop(), timeout=10)


@pytest.fixture(scope="session")
def web(mesh: RunningStack, web_replicas: WebReplicas) -> str:
    """The web app's one origin (two replicas behind it)."""
    return mesh.web_url


@pytest.fixture
def rest(mesh: RunningStack) -> Iterator[httpx.Client]:
    """An HTTP client for the REST API through Envoy, signed in as an analyst."""
    headers = {"authorization": f"Bearer {mesh.tokens['analyst']}"}
    with httpx.Client(base_url=mesh.rest, timeout=10, headers=headers) as client:
        yield client


@pytest.fixture
def analytics_channel(mesh: RunningStack) -> Iterator[grpc.Channel]:
    """A gRPC channel straight to the analytics service, signed in as an analyst."""
    with mesh.channel(mesh.analytics, "analyst") as channel:
        yield channel
