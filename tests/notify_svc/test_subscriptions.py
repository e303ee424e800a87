"""Subscriptions stored in notify's own database, through gRPC and REST."""

from __future__ import annotations

import uuid

import grpc
import httpx
import psycopg2
import pytest

from mesh.notify.v1 import notify_service_pb2 as pb
from mesh.notify.v1 import notify_service_pb2_grpc as pb_grpc
from mesh.notify.v1 import subscription_pb2
from tests.conftest import RunningStack
from tests.rich_status import field_violations, rest_field_violations


@pytest.fixture
def stub(mesh: RunningStack):  # type: ignore[no-untyped-def]
    with mesh.channel(mesh.notify, "analyst") as channel:
        yield pb_grpc.NotifyServiceStub(channel)


def address() -> str:
    return f"analyst-{uuid.uuid4().hex[:8]}@example.com"


def test_create_and_list_newest_first(stub) -> None:  # type: ignore[no-untyped-def]
    first, second = address(), address()
    for email in (first, second):
        stub.CreateSubscription(
            pb.CreateSubscriptionRequest(
                subscription=subscription_pb2.Subscription(email=email, display_name="Ada")
            ),
            timeout=10,
        )
    listed = stub.ListSubscriptions(pb.ListSubscriptionsRequest(page_size=1000), timeout=10)
    emails = [s.email for s in listed.subscriptions]
    assert emails.index(second) < emails.index(first)


def test_paging_visits_each_subscription_once(stub) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        stub.CreateSubscription(
            pb.CreateSubscriptionRequest(subscription=subscription_pb2.Subscription(email=address())),
            timeout=10,
        )
    seen: list[str] = []
    token = ""
    while True:
        page = stub.ListSubscriptions(pb.ListSubscriptionsRequest(page_size=2, page_token=token), timeout=10)
        seen += [s.id for s in page.subscriptions]
        token = page.next_page_token
        if not token:
            break
    everything = stub.ListSubscriptions(pb.ListSubscriptionsRequest(page_size=1000), timeout=10)
    assert seen == [s.id for s in everything.subscriptions]


def test_same_address_twice_is_already_exists(stub) -> None:  # type: ignore[no-untyped-def]
    email = address()
    stub.CreateSubscription(
        pb.CreateSubscriptionRequest(subscription=subscription_pb2.Subscription(email=email)), timeout=10
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateSubscription(
            pb.CreateSubscriptionRequest(subscription=subscription_pb2.Subscription(email=email.upper())),
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_bad_address_and_header_injection_are_rejected(stub) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateSubscription(
            pb.CreateSubscriptionRequest(
                subscription=subscription_pb2.Subscription(
                    email="not-an-address", display_name="Eve\r\nBcc: victim@example.com"
                )
            ),
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == {"subscription.email", "subscription.display_name"}


def test_subscriptions_live_in_notify_database_only(stub, mesh: RunningStack) -> None:  # type: ignore[no-untyped-def]
    email = address()
    stub.CreateSubscription(
        pb.CreateSubscriptionRequest(subscription=subscription_pb2.Subscription(email=email)), timeout=10
    )
    with psycopg2.connect(mesh.database_url("notify")) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM subscription WHERE email = %s", (email,))
        assert cur.fetchone() == (1,)
    with psycopg2.connect(mesh.database_url("analytics")) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('subscription')")
        assert cur.fetchone() == (None,)


def test_rest_create_and_list(rest: httpx.Client) -> None:
    email = address()
    created = rest.post("/v1/subscriptions", json={"email": email, "displayName": "Grace"})
    assert created.status_code == 200, created.text
    assert created.json()["subscription"]["displayName"] == "Grace"
    listed = rest.get("/v1/subscriptions", params={"pageSize": 1000}).json()
    assert email in [s["email"] for s in listed["subscriptions"]]
    bad = rest.post("/v1/subscriptions", json={"email": "nope"})
    assert bad.status_code == 400
    assert "subscription.email" in rest_field_violations(bad.json())
