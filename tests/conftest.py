"""Session fixtures: one real local stack (PostgreSQL, NATS, mail catcher, the
three services, Envoy) on free ports, started once for the whole run.

The stack's processes are supervised by an event loop in a background
thread, so tests can be plain functions and use their own loops.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import httpx
import pytest

from mesh_cli.stack import Stack, StackSettings, resolve_ports

T = TypeVar("T")


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


@dataclass
class RunningStack:
    """Addresses of the running test stack."""

    stack: Stack
    runner: LoopThread

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


@pytest.fixture(scope="session")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The whole mesh (without the web app), started once per test session."""
    state = tmp_path_factory.mktemp("stack")
    zero = {name: 0 for name in StackSettings.__dataclass_fields__ if name.endswith("_port")}
    settings = resolve_ports(
        StackSettings(state_dir=state, web=False, log_format="json", fast_database=True, **zero)
    )
    runner = LoopThread()
    stack = Stack(settings, console=None)
    try:
        runner.run(stack.start(), timeout=300)
    except Exception:
        runner.close()
        raise
    yield RunningStack(stack, runner)
    runner.run(stack.stop(), timeout=120)
    runner.close()


@pytest.fixture(scope="session")
def web(mesh: RunningStack) -> str:
    """The web app, built for production and served against the test mesh."""
    mesh.runner.run(mesh.stack.start_web(), timeout=900)
    return mesh.web_url


@pytest.fixture
def rest(mesh: RunningStack) -> Iterator[httpx.Client]:
    """An HTTP client for the REST API through Envoy."""
    with httpx.Client(base_url=mesh.rest, timeout=10) as client:
        yield client


@pytest.fixture
def analytics_channel(mesh: RunningStack) -> Iterator[grpc.Channel]:
    """A gRPC channel straight to the analytics service."""
    with grpc.insecure_channel(mesh.analytics) as channel:
        yield channel
