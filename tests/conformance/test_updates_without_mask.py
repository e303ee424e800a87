"""Updates without an update_mask (AIP-134), over gRPC and REST, for every
Update RPC with a mask (datasets, schedules, subscriptions): the fields set in
the body change, the others stay; a mask still changes exactly what it names;
the resource as it would be stored is checked by the rules of create; a body
that sets nothing is refused, naming update_mask."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import field_mask_pb2

from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as analytics_grpc
from mesh.analytics.v1 import dataset_pb2
from mesh.notify.v1 import notify_service_pb2 as notify_pb
from mesh.notify.v1 import notify_service_pb2_grpc as notify_grpc
from mesh.notify.v1 import subscription_pb2
from tests.conformance.conftest import rest_client
from tests.conftest import RunningStack
from tests.rich_status import field_violations


@pytest.fixture
def rest(mesh: RunningStack) -> Any:
    with rest_client(mesh, "analyst") as client:
        yield client


def _violations(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 400, response.text
    found: dict[str, str] = {}
    for detail in response.json().get("details", []):
        for violation in detail.get("fieldViolations", []):
            found[violation["field"]] = violation["description"]
    return found


def test_a_dataset_update_without_a_mask_changes_the_fields_it_sets(
    analytics: analytics_grpc.AnalyticsServiceStub, rest: httpx.Client
) -> None:
    name = f"maskless-{uuid.uuid4().hex[:8]}"
    created = analytics.CreateDataset(
        pb.CreateDatasetRequest(
            dataset=dataset_pb2.Dataset(name=name, description="old", unit="ms", labels={"site": "a"})
        ),
        timeout=10,
    ).dataset

    # gRPC, no mask: only the description is set, only it changes.
    updated = analytics.UpdateDataset(
        pb.UpdateDatasetRequest(dataset=dataset_pb2.Dataset(id=created.id, description="new")), timeout=10
    ).dataset
    assert (updated.name, updated.description, updated.unit, dict(updated.labels)) == (name, "new", "ms", {"site": "a"})

    # REST, no updateMask: the unit and labels of the body change, the rest stays.
    patched = rest.patch(f"/v1/datasets/{created.id}", json={"unit": "kW", "labels": {"site": "b"}})
    assert patched.status_code == 200, patched.text
    body = patched.json()["dataset"]
    assert (body["name"], body["description"], body["unit"], body["labels"]) == (name, "new", "kW", {"site": "b"})

    # The mask still changes exactly what it names (here: clears the description).
    masked = rest.patch(
        f"/v1/datasets/{created.id}", params={"updateMask": "description"}, json={"description": "", "unit": "x"}
    )
    assert masked.status_code == 200, masked.text
    assert "description" not in masked.json()["dataset"] or masked.json()["dataset"]["description"] == ""
    assert masked.json()["dataset"]["unit"] == "kW"

    # The result is checked like a create: a name another dataset has is refused.
    other = analytics.CreateDataset(
        pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"{name}-other")), timeout=10
    ).dataset
    clash = rest.patch(f"/v1/datasets/{created.id}", json={"name": other.name})
    assert clash.status_code == 409, clash.text
    with pytest.raises(grpc.RpcError) as caught:
        analytics.UpdateDataset(
            pb.UpdateDatasetRequest(dataset=dataset_pb2.Dataset(id=created.id, name=other.name)), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS

    # A body that sets nothing updatable is refused, over both.
    assert "update_mask" in _violations(rest.patch(f"/v1/datasets/{created.id}", json={}))
    with pytest.raises(grpc.RpcError) as caught:
        analytics.UpdateDataset(pb.UpdateDatasetRequest(dataset=dataset_pb2.Dataset(id=created.id)), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "nothing to update" in field_violations(caught.value)["update_mask"]
    kept = analytics.GetDataset(pb.GetDatasetRequest(id=created.id), timeout=10).dataset
    assert (kept.name, kept.unit) == (name, "kW")


def test_a_schedule_update_without_a_mask_changes_the_fields_it_sets(
    analytics: analytics_grpc.AnalyticsServiceStub, rest: httpx.Client
) -> None:
    dataset = analytics.CreateDataset(
        pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"maskless-{uuid.uuid4().hex[:8]}")), timeout=10
    ).dataset
    created = analytics.CreateSchedule(
        pb.CreateScheduleRequest(
            schedule=apb.Schedule(
                dataset_id=dataset.id, kind=apb.ANALYSIS_KIND_SUMMARY, interval_seconds=3600, enabled=True
            )
        ),
        timeout=10,
    ).schedule

    # REST, no updateMask: the cron replaces the interval (one trigger); kind and enabled stay.
    patched = rest.patch(f"/v1/schedules/{created.id}", json={"cron": "0 * * * *", "timeZone": "Europe/Berlin"})
    assert patched.status_code == 200, patched.text
    body = patched.json()["schedule"]
    assert (body["cron"], body["timeZone"], body["kind"], body["enabled"]) == (
        "0 * * * *",
        "Europe/Berlin",
        "ANALYSIS_KIND_SUMMARY",
        True,
    )
    assert "intervalSeconds" not in body or body["intervalSeconds"] in ("0", 0)

    # gRPC, no mask: the kind changes, the cron stays.
    updated = analytics.UpdateSchedule(
        pb.UpdateScheduleRequest(schedule=apb.Schedule(id=created.id, kind=apb.ANALYSIS_KIND_ANOMALIES)), timeout=10
    ).schedule
    assert (updated.kind, updated.cron, updated.enabled) == (apb.ANALYSIS_KIND_ANOMALIES, "0 * * * *", True)

    # Checked like a create: a time zone that does not exist is refused, nothing changes.
    unknown_zone = rest.patch(f"/v1/schedules/{created.id}", json={"timeZone": "Mars/Olympus_Mons"})
    assert unknown_zone.status_code == 400, unknown_zone.text
    # Disabling (false, a default) needs the mask; without it nothing is set.
    assert "update_mask" in _violations(rest.patch(f"/v1/schedules/{created.id}", json={"enabled": False}))
    disabled = rest.patch(f"/v1/schedules/{created.id}", params={"updateMask": "enabled"}, json={"enabled": False})
    assert disabled.status_code == 200 and not disabled.json()["schedule"].get("enabled"), disabled.text
    kept = analytics.GetSchedule(pb.GetScheduleRequest(id=created.id), timeout=10).schedule
    assert (kept.cron, kept.time_zone, kept.kind, kept.enabled) == (
        "0 * * * *",
        "Europe/Berlin",
        apb.ANALYSIS_KIND_ANOMALIES,
        False,
    )


def test_a_subscription_update_without_a_mask_changes_the_fields_it_sets(
    notify: notify_grpc.NotifyServiceStub, rest: httpx.Client
) -> None:
    email = f"maskless-{uuid.uuid4().hex[:8]}@example.com"
    created = notify.CreateSubscription(
        notify_pb.CreateSubscriptionRequest(
            subscription=subscription_pb2.Subscription(email=email, display_name="Old", min_anomaly_count=2)
        ),
        timeout=10,
    ).subscription

    updated = notify.UpdateSubscription(
        notify_pb.UpdateSubscriptionRequest(
            subscription=subscription_pb2.Subscription(id=created.id, display_name="New")
        ),
        timeout=10,
    ).subscription
    assert (updated.email, updated.display_name, updated.min_anomaly_count) == (email, "New", 2)

    patched = rest.patch(
        f"/v1/subscriptions/{created.id}", json={"minAnomalyCount": 5, "eventTypes": ["EVENT_TYPE_RESULT_FAILED"]}
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()["subscription"]
    assert (body["email"], body["displayName"], body["minAnomalyCount"], body["eventTypes"]) == (
        email,
        "New",
        5,
        ["EVENT_TYPE_RESULT_FAILED"],
    )

    # The mask still does partial updates, to defaults too.
    mask = field_mask_pb2.FieldMask(paths=["min_anomaly_count"])
    reset = notify.UpdateSubscription(
        notify_pb.UpdateSubscriptionRequest(
            subscription=subscription_pb2.Subscription(id=created.id, display_name="ignored"), update_mask=mask
        ),
        timeout=10,
    ).subscription
    assert (reset.min_anomaly_count, reset.display_name) == (0, "New")

    # Checked like a create: a bad address is refused; an empty body sets nothing.
    assert "subscription.email" in _violations(rest.patch(f"/v1/subscriptions/{created.id}", json={"email": "nope"}))
    assert "update_mask" in _violations(rest.patch(f"/v1/subscriptions/{created.id}", json={}))
    kept = notify.GetSubscription(notify_pb.GetSubscriptionRequest(id=created.id), timeout=10).subscription
    assert (kept.email, kept.display_name) == (email, "New")
