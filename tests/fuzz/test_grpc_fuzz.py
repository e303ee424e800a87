"""Hypothesis-generated requests (tests/fuzz/proto_strategies.py, built from
the message descriptors) against every RPC of every service, straight over
gRPC and signed in as an admin: whatever the request, the answer is a reply
or a deliberate status, never UNKNOWN or INTERNAL (an unhandled error)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import message_factory, timestamp_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from mesh.analytics.v1 import analytics_service_pb2
from mesh.auth.v1 import auth_service_pb2
from mesh.llm.v1 import llm_service_pb2
from mesh.notify.v1 import notify_service_pb2
from mesh_runtime.interceptors import violations_of
from tests.conftest import RunningStack
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.proto_strategies import messages

SERVICES: list[tuple[ServiceDescriptor, str]] = [
    (service, where)
    for module, where in (
        (analytics_service_pb2, "analytics"),
        (auth_service_pb2, "analytics"),
        (llm_service_pb2, "llm"),
        (notify_service_pb2, "notify"),
    )
    for service in module.DESCRIPTOR.services_by_name.values()
]
# WatchResults streams until the client goes away: no answer ever completes.
ENDLESS = {"mesh.analytics.v1.AnalyticsService.WatchResults"}
METHODS = {
    method.full_name: (method, where)
    for service, where in SERVICES
    for method in service.methods
    if method.full_name not in ENDLESS
}
UNHANDLED = (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)


@pytest.fixture(scope="module")
def channels(mesh: RunningStack) -> Iterator[dict[str, grpc.Channel]]:
    opened = {
        "analytics": mesh.channel(mesh.analytics, "admin"),
        "llm": mesh.channel(mesh.llm, "admin"),
        "notify": mesh.channel(mesh.notify, "admin"),
    }
    yield opened
    for channel in opened.values():
        channel.close()


def test_every_rpc_is_fuzzed() -> None:
    # New RPCs are picked up from the descriptors; this guards against the list coming up empty.
    assert {s.full_name for s, _ in SERVICES} == {
        "mesh.analytics.v1.AnalyticsService",
        "mesh.auth.v1.AuthService",
        "mesh.llm.v1.LlmService",
        "mesh.notify.v1.NotifyService",
    }
    assert len(METHODS) >= 40


def _call(channel: grpc.Channel, method: MethodDescriptor, requests: list) -> None:  # type: ignore[type-arg]
    path = f"/{method.containing_service.full_name}/{method.name}"
    reply_type = message_factory.GetMessageClass(method.output_type)
    serialize, deserialize = (lambda m: m.SerializeToString()), reply_type.FromString
    if method.client_streaming:
        channel.stream_unary(path, serialize, deserialize)(iter(requests), timeout=30)
    elif method.server_streaming:
        for _ in channel.unary_stream(path, serialize, deserialize)(requests[0], timeout=30):
            pass
    else:
        channel.unary_unary(path, serialize, deserialize)(requests[0], timeout=30)


@pytest.mark.parametrize("name", sorted(METHODS))
@fuzz_settings(default_examples=25)
@given(data=st.data())
def test_no_request_makes_an_rpc_fail_unhandled(
    name: str, data: st.DataObject, channels: dict[str, grpc.Channel]
) -> None:
    method, where = METHODS[name]
    count = 3 if method.client_streaming else 1
    requests = data.draw(st.lists(messages(method.input_type), min_size=1, max_size=count), label="requests")
    try:
        _call(channels[where], method, requests)
    except grpc.RpcError as error:
        assert error.code() not in UNHANDLED, f"{name}: {error.code().name}: {error.details()}"


@pytest.fixture(scope="module")
def schedule_id(channels: dict[str, grpc.Channel]) -> str:
    from mesh.analytics.v1 import analysis_pb2, analytics_service_pb2_grpc, dataset_pb2

    stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channels["analytics"])
    dataset = stub.CreateDataset(
        analytics_service_pb2.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"fuzz-{uuid.uuid4().hex[:8]}")),
        timeout=10,
    ).dataset
    schedule = analysis_pb2.Schedule(dataset_id=dataset.id, kind=analysis_pb2.ANALYSIS_KIND_SUMMARY, cron="0 6 * * *")
    created = stub.CreateSchedule(analytics_service_pb2.CreateScheduleRequest(schedule=schedule), timeout=10)
    return str(created.schedule.id)


@fuzz_settings(default_examples=60)
@given(data=st.data())
def test_schedule_updates_never_store_a_schedule_create_would_refuse(
    data: st.DataObject, channels: dict[str, grpc.Channel], schedule_id: str
) -> None:
    # One update once stored interval 0, and the scheduler then fired no schedule at all.
    from analytics_svc.schedules import timing
    from mesh.analytics.v1 import analytics_service_pb2_grpc

    stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channels["analytics"])
    request = data.draw(messages(analytics_service_pb2.UpdateScheduleRequest.DESCRIPTOR), label="request")
    request.schedule.id = schedule_id
    paths = ["kind", "parameters", "interval_seconds", "cron", "time_zone", "enabled"]
    request.update_mask.paths[:] = data.draw(st.lists(st.sampled_from(paths), min_size=1, unique=True), label="mask")
    try:
        stored = stub.UpdateSchedule(request, timeout=30).schedule
    except grpc.RpcError as error:
        assert error.code() not in UNHANDLED, f"{error.code().name}: {error.details()}"
        return
    stored.ClearField("dataset_name")
    assert violations_of(analytics_service_pb2.CreateScheduleRequest(schedule=stored)) == []
    which = stored.WhichOneof("trigger")
    timing.validate(
        timing.Trigger(
            interval_seconds=stored.interval_seconds if which == "interval_seconds" else None,
            cron=stored.cron if which == "cron" else None,
            time_zone=stored.time_zone,
        )
    )


def _bug_requests() -> dict[str, tuple[str, str, Message]]:
    from mesh.analytics.v1 import dataset_pb2
    from mesh.notify.v1 import subscription_pb2

    return {
        "Login": (
            "analytics",
            "mesh.auth.v1.AuthService.Login",
            auth_service_pb2.LoginRequest(username="a\x00b", password="x"),
        ),
        "ExchangeApiKey": (
            "analytics",
            "mesh.auth.v1.AuthService.ExchangeApiKey",
            auth_service_pb2.ExchangeApiKeyRequest(api_key="\x00__"),
        ),
        "CreateDataset": (
            "analytics",
            "mesh.analytics.v1.AnalyticsService.CreateDataset",
            analytics_service_pb2.CreateDatasetRequest(
                dataset=dataset_pb2.Dataset(name="nul-test", description="a\x00b")
            ),
        ),
        "CreateSubscription": (
            "notify",
            "mesh.notify.v1.NotifyService.CreateSubscription",
            notify_service_pb2.CreateSubscriptionRequest(
                subscription=subscription_pb2.Subscription(email="nul-test@example.com", display_name="a\x00b")
            ),
        ),
        "ListResults": (
            "analytics",
            "mesh.analytics.v1.AnalyticsService.ListResults",
            analytics_service_pb2.ListResultsRequest(created_after=timestamp_pb2.Timestamp(nanos=-1)),
        ),
    }


@pytest.mark.parametrize("case", ["Login", "ExchangeApiKey", "CreateDataset", "CreateSubscription", "ListResults"])
def test_nul_characters_and_impossible_timestamps_are_invalid_arguments(
    case: str, channels: dict[str, grpc.Channel]
) -> None:
    # Found by this fuzzing: PostgreSQL refuses NUL in text and ToDatetime refuses
    # nanos < 0, which made these INTERNAL; the runtime now refuses them up front.
    where, name, request = _bug_requests()[case]
    method, _ = METHODS[name]
    with pytest.raises(grpc.RpcError) as caught:
        _call(channels[where], method, [request])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
