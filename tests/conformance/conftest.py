"""Fixtures of the gRPC/REST conformance tests: stubs straight to each service,
REST clients through Envoy, and the print options Envoy's transcoder runs with."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import httpx
import pytest

from mesh.analytics.v1 import analytics_service_pb2_grpc as analytics_grpc
from mesh.llm.v1 import llm_service_pb2_grpc as llm_grpc
from mesh.notify.v1 import notify_service_pb2_grpc as notify_grpc
from tests.conformance.proto_json import transcoder_print_options
from tests.conftest import RunningStack


@pytest.fixture(scope="session")
def print_options(mesh: RunningStack) -> dict[str, bool]:
    """How the running Envoy prints JSON (gateway/envoy_config.py renders it)."""
    return transcoder_print_options(mesh.stack.envoy_config_path())


@pytest.fixture
def analytics(mesh: RunningStack) -> Iterator[analytics_grpc.AnalyticsServiceStub]:
    with mesh.channel(mesh.analytics, "analyst") as channel:
        yield analytics_grpc.AnalyticsServiceStub(channel)


@pytest.fixture
def llm(mesh: RunningStack) -> Iterator[llm_grpc.LlmServiceStub]:
    with mesh.channel(mesh.llm, "analyst") as channel:
        yield llm_grpc.LlmServiceStub(channel)


@pytest.fixture
def notify(mesh: RunningStack) -> Iterator[notify_grpc.NotifyServiceStub]:
    with mesh.channel(mesh.notify, "analyst") as channel:
        yield notify_grpc.NotifyServiceStub(channel)


def rest_client(mesh: RunningStack, role: str | None) -> httpx.Client:
    """An HTTP client for Envoy's REST API, with ``role``'s token (or none)."""
    headers = {"authorization": f"Bearer {mesh.tokens[role]}"} if role else {}
    return httpx.Client(base_url=mesh.rest, timeout=30, headers=headers)


def grpc_channel(mesh: RunningStack, address: str, role: str | None) -> grpc.Channel:
    """A channel straight to a service, with ``role``'s token (or none)."""
    return mesh.channel(address, role) if role else grpc.insecure_channel(address)
