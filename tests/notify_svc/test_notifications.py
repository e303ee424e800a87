"""Events to e-mails on the session stack: matching, content, the delivery
log, test e-mails, unsubscribe links and unreadable events."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import grpc
import httpx
import pytest
from google.protobuf import field_mask_pb2

from mesh.events.v1 import events_pb2
from mesh.notify.v1 import notify_service_pb2 as pb
from mesh.notify.v1 import notify_service_pb2_grpc as pb_grpc
from mesh.notify.v1 import subscription_pb2 as sub_pb
from mesh_runtime import streams
from notify_svc import links
from tests.conftest import RunningStack
from tests.eventually import eventually
from tests.notify_svc import event_publishing as ev


@pytest.fixture
def stub(mesh: RunningStack):  # type: ignore[no-untyped-def]
    with mesh.channel(mesh.notify, "analyst") as channel:
        yield pb_grpc.NotifyServiceStub(channel)


def nats_url(mesh: RunningStack) -> str:
    return mesh.nats_url


def subscribe(stub, name: str = "Ada", **fields: object) -> sub_pb.Subscription:  # type: ignore[no-untyped-def]
    """A subscription; unless ``dataset_ids`` says otherwise, to a dataset of
    its own, so events other tests publish on the shared stack never reach it."""
    fields.setdefault("dataset_ids", [str(uuid.uuid4())])
    email = f"{name.lower()}-{uuid.uuid4().hex[:10]}@example.com"
    reply = stub.CreateSubscription(
        pb.CreateSubscriptionRequest(subscription=sub_pb.Subscription(email=email, display_name=name, **fields)),
        timeout=10,
    )
    return reply.subscription


def deliveries(stub, **filters: object) -> list[sub_pb.Delivery]:  # type: ignore[no-untyped-def]
    return list(stub.ListDeliveries(pb.ListDeliveriesRequest(page_size=1000, **filters), timeout=10).deliveries)


def sent_for(stub, subscription_id: str, count: int) -> list[sub_pb.Delivery]:  # type: ignore[no-untyped-def]
    def done() -> list[sub_pb.Delivery]:
        rows = deliveries(stub, subscription_id=subscription_id, status=sub_pb.DELIVERY_STATUS_SENT)
        return rows if len(rows) >= count else []

    return eventually(done, 30, f"{count} sent deliveries")  # type: ignore[return-value]


def message_detail(mesh: RunningStack, address: str) -> dict[str, object]:
    found = eventually(lambda: ev.messages_to(mesh.mail_api, address), 30, f"mail to {address}")
    (summary,) = found  # type: ignore[misc]
    return dict(httpx.get(f"{mesh.mail_api}/api/v1/message/{summary['ID']}", timeout=10).json())


def test_result_email_has_key_numbers_anomalies_insight_and_links(stub, mesh: RunningStack) -> None:  # type: ignore[no-untyped-def]
    sub = subscribe(stub, "Grace")
    dataset = sub.dataset_ids[0]
    event = ev.succeeded(
        dataset, anomaly_count=12, dataset_name="orders <b>EU</b>\r\nBcc: victim@example.com",
        insight="Orders rose <script>alert(1)</script> on Monday.",
    )
    ev.publish(nats_url(mesh), [event])
    mail = message_detail(mesh, sub.email)

    assert mail["To"] == [{"Name": "Grace", "Address": sub.email}]
    assert "Bcc" not in str(mail.get("Bcc") or "") and mail["Bcc"] in ([], None)
    subject = str(mail["Subject"])
    assert "\n" not in subject and "\r" not in subject
    assert subject.startswith("[Analytics Mesh] summary of orders <b>EU</b> Bcc: victim@example.com is ready")
    assert "12 anomalies" in subject
    text, html = str(mail["Text"]), str(mail["HTML"])
    result_id = event.result_succeeded.result_id
    for body in (text, html):
        assert "mean" in body and "12.5" in body and "1,440" in body and "40.25" in body
        assert "2023-11-14 22:13:20 UTC" in body  # the first anomaly's time
        assert f"/results/{result_id}" in body
        assert "The most pronounced 10 of 12 anomalies" in body
    assert "Orders rose <script>alert(1)</script> on Monday." in text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;EU&lt;/b&gt;" in html
    links = mail["ListUnsubscribe"]["Links"]  # type: ignore[index]
    assert len(links) == 1 and links[0].startswith(f"{mesh.rest}/v1/unsubscribe?token=")
    assert f"{mesh.web_url}/unsubscribe?{urlsplit(links[0]).query}" in text and links[0] not in text

    (row,) = sent_for(stub, sub.id, 1)
    assert row.event_id == event.event_id
    assert row.event_type == sub_pb.EVENT_TYPE_RESULT_SUCCEEDED
    assert row.result_id == result_id and row.attempts == 1 and row.email == sub.email
    assert row.subject == subject and row.sent_time.seconds > 0


def test_filters_pick_datasets_event_types_and_anomaly_counts(stub, mesh: RunningStack) -> None:  # type: ignore[no-untyped-def]
    watched, other = str(uuid.uuid4()), str(uuid.uuid4())
    picky = subscribe(
        stub, "Picky", dataset_ids=[watched],
        event_types=[sub_pb.EVENT_TYPE_RESULT_SUCCEEDED, sub_pb.EVENT_TYPE_RESULT_FAILED], min_anomaly_count=3,
    )
    anything = subscribe(stub, "Anything", dataset_ids=[watched, other])
    everything = subscribe(stub, "Everything", dataset_ids=[])  # all datasets (other tests' events too)
    events = {
        "other dataset": ev.succeeded(other, anomaly_count=5),
        "too few anomalies": ev.succeeded(watched, anomaly_count=2),
        "anomaly event": ev.anomaly(watched, 9),
        "enough anomalies": ev.succeeded(watched, anomaly_count=3),
        "failure": ev.failed(watched),
    }
    ev.publish(nats_url(mesh), list(events.values()))
    # The catch-all subscription sees all five, so all five were processed.
    sent_for(stub, anything.id, 5)
    got = {d.event_id for d in sent_for(stub, picky.id, 2)}
    assert got == {events["enough anomalies"].event_id, events["failure"].event_id}
    assert len(deliveries(stub, subscription_id=picky.id)) == 2
    for event in events.values():
        assert len(deliveries(stub, subscription_id=everything.id, event_id=event.event_id)) == 1


def test_redelivered_event_is_mailed_once(stub, mesh: RunningStack) -> None:  # type: ignore[no-untyped-def]
    sub = subscribe(stub, "Once")
    event = ev.succeeded(sub.dataset_ids[0])
    body = event.SerializeToString()
    subject = streams.event_subject(event)
    # Published twice under two message ids: JetStream keeps both, notify's
    # (event, subscription) key keeps one e-mail.
    copies = [(subject, event.event_id, body), (subject, "copy-" + event.event_id, body)]
    asyncio.run(ev.publish_raw(nats_url(mesh), copies))
    control = ev.succeeded(sub.dataset_ids[0])
    ev.publish(nats_url(mesh), [control])
    sent_for(stub, sub.id, 2)
    assert len(ev.messages_to(mesh.mail_api, sub.email)) == 2
    assert len(deliveries(stub, event_id=event.event_id, subscription_id=sub.id)) == 1


def test_unreadable_event_is_dead_and_the_consumer_carries_on(stub, mesh: RunningStack) -> None:  # type: ignore[no-untyped-def]
    sub = subscribe(stub, "After")
    bad_id = f"garbage-{uuid.uuid4()}"
    no_payload = f"empty-{uuid.uuid4()}"
    asyncio.run(
        ev.publish_raw(
            nats_url(mesh),
            [
                ("mesh.events.v1.result_succeeded", bad_id, b"\xff\x00 this is not protobuf"),
                ("mesh.events.v1.result_failed", no_payload, events_pb2.Event(event_id=no_payload).SerializeToString()),
            ],
        )
    )
    good = ev.succeeded(sub.dataset_ids[0])
    ev.publish(nats_url(mesh), [good])
    sent_for(stub, sub.id, 1)
    for event_id in (bad_id, no_payload):
        (dead,) = eventually(lambda eid=event_id: deliveries(stub, event_id=eid), 10, "the dead record")  # type: ignore[misc]
        assert dead.status == sub_pb.DELIVERY_STATUS_DEAD
        assert dead.subscription_id == "" and dead.last_error
    dead_ids = {d.event_id for d in deliveries(stub, status=sub_pb.DELIVERY_STATUS_DEAD)}
    assert {bad_id, no_payload} <= dead_ids


def test_send_test_email(stub, mesh: RunningStack) -> None:  # type: ignore[no-untyped-def]
    sub = subscribe(stub, "Tester")
    reply = stub.SendTestEmail(pb.SendTestEmailRequest(id=sub.id), timeout=30)
    assert reply.delivery.status == sub_pb.DELIVERY_STATUS_SENT
    assert reply.delivery.attempts == 1 and reply.delivery.event_id.startswith("test-")
    mail = message_detail(mesh, sub.email)
    assert mail["Subject"] == "[Analytics Mesh] Test e-mail"
    assert "your subscription works" in str(mail["Text"])
    with pytest.raises(grpc.RpcError) as caught:
        stub.SendTestEmail(pb.SendTestEmailRequest(id=str(uuid.uuid4())), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_unsubscribe_link_works_without_signing_in(stub, mesh: RunningStack) -> None:  # type: ignore[no-untyped-def]
    sub = subscribe(stub, "Leaver")
    stub.SendTestEmail(pb.SendTestEmailRequest(id=sub.id), timeout=30)
    mail = message_detail(mesh, sub.email)
    # RFC 8058: the mail client's one-click unsubscribe is a POST to the https link.
    assert mail["ListUnsubscribe"]["HeaderPost"] == "List-Unsubscribe=One-Click"  # type: ignore[index]
    link = mail["ListUnsubscribe"]["Links"][0]  # type: ignore[index]
    token = parse_qs(urlsplit(link).query)["token"][0]
    # The body's link leads a person to the web app's confirmation page, not to the one-click URL.
    page = f"{mesh.web_url}/unsubscribe?{urlencode({'token': token})}"
    assert page in str(mail["Text"]) and link not in str(mail["Text"])

    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    other = subscribe(stub, "Other", dataset_ids=list(sub.dataset_ids))
    swapped = other.id + "." + token.partition(".")[2]
    for bad in (forged, swapped):
        for method in ("GET", "POST"):
            refused = httpx.request(method, f"{mesh.rest}/v1/unsubscribe", params={"token": bad}, timeout=10)
            assert refused.status_code == 400, refused.text

    # A link scanner's GET (no sign-in: a public route) says what would end and changes nothing.
    for _ in range(2):
        looked = httpx.get(link, timeout=10)
        assert looked.status_code == 200, looked.text
        assert looked.json()["email"] == sub.email and "Nothing changed" in looked.json()["message"]
        assert not looked.json().get("disabled")
        assert looked.json()["description"] == (
            "Analytics Mesh e-mails about finished analysis results, failed analyses and detected anomalies,"
            " for 1 dataset"
        )
    assert not stub.GetSubscription(pb.GetSubscriptionRequest(id=sub.id), timeout=10).subscription.disabled

    # The mail client's one-click POST: a form body, the token in the link's query string.
    done = httpx.post(link, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert done.status_code == 200, done.text
    assert done.json()["email"] == sub.email and "unsubscribed" in done.json()["message"]
    assert done.json()["disabled"] is True
    kept = stub.GetSubscription(pb.GetSubscriptionRequest(id=sub.id), timeout=10).subscription
    assert kept.disabled and kept.email == sub.email
    assert len(deliveries(stub, subscription_id=sub.id)) == 1  # the delivery log stays
    again = httpx.post(link, timeout=10)
    assert again.status_code == 200 and again.json()["disabled"] is True
    assert "already unsubscribed" in httpx.get(link, timeout=10).json()["message"]

    # A disabled subscription gets no more e-mail; the other one on the dataset does.
    ev.publish(nats_url(mesh), [ev.succeeded(sub.dataset_ids[0])])
    sent_for(stub, other.id, 1)
    assert len(deliveries(stub, subscription_id=sub.id)) == 1
    assert len(ev.messages_to(mesh.mail_api, sub.email)) == 1
    assert not stub.GetSubscription(pb.GetSubscriptionRequest(id=other.id), timeout=10).subscription.disabled


def test_a_disabled_subscription_gets_no_test_email_until_its_owner_enables_it(  # type: ignore[no-untyped-def]
    stub, mesh: RunningStack, rest: httpx.Client
) -> None:
    sub = subscribe(stub, "Pauser")
    barrier = subscribe(stub, "Barrier", dataset_ids=list(sub.dataset_ids))  # mailed whenever sub would be
    token = links.unsubscribe_token(links.local_link_secret(mesh.settings.state_dir / "notify" / "link-secret"), sub.id)
    assert httpx.post(f"{mesh.rest}/v1/unsubscribe", params={"token": token}, timeout=10).status_code == 200

    # The owner sees it disabled, over gRPC and REST.
    assert stub.GetSubscription(pb.GetSubscriptionRequest(id=sub.id), timeout=10).subscription.disabled
    assert rest.get(f"/v1/subscriptions/{sub.id}").json()["subscription"]["disabled"] is True

    # No test e-mail either: a clear refusal, nothing queued, nothing sent.
    with pytest.raises(grpc.RpcError) as caught:
        stub.SendTestEmail(pb.SendTestEmailRequest(id=sub.id), timeout=30)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "disabled" in (caught.value.details() or "") and "enable it first" in (caught.value.details() or "")
    refused = rest.post(f"/v1/subscriptions/{sub.id}:sendTestEmail", json={})
    assert refused.status_code == 400 and "disabled" in refused.json()["message"], refused.text
    assert deliveries(stub, subscription_id=sub.id) == []
    assert ev.messages_to(mesh.mail_api, sub.email) == []

    # Enabled again through REST (a PATCH naming "disabled"): mailed again, a test e-mail too.
    enabled = rest.patch(f"/v1/subscriptions/{sub.id}", params={"updateMask": "disabled"}, json={"disabled": False})
    assert enabled.status_code == 200 and not enabled.json()["subscription"].get("disabled"), enabled.text
    reply = stub.SendTestEmail(pb.SendTestEmailRequest(id=sub.id), timeout=30)
    assert reply.delivery.status == sub_pb.DELIVERY_STATUS_SENT
    ev.publish(nats_url(mesh), [ev.succeeded(sub.dataset_ids[0])])
    assert len(sent_for(stub, sub.id, 2)) == 2

    # And disabled by its owner over gRPC, like the link does.
    mask = field_mask_pb2.FieldMask(paths=["disabled"])
    update = sub_pb.Subscription(id=sub.id, disabled=True)
    stub.UpdateSubscription(pb.UpdateSubscriptionRequest(subscription=update, update_mask=mask), timeout=10)
    ev.publish(nats_url(mesh), [ev.succeeded(sub.dataset_ids[0])])
    sent_for(stub, barrier.id, 2)
    assert len(deliveries(stub, subscription_id=sub.id)) == 2
    assert len(ev.messages_to(mesh.mail_api, sub.email)) == 2
    link_check = httpx.get(f"{mesh.rest}/v1/unsubscribe", params={"token": token}, timeout=10).json()
    assert link_check["disabled"] is True and "already unsubscribed" in link_check["message"]


def test_get_update_delete_subscription(stub, rest: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    sub = subscribe(stub, "Editor")
    dataset = str(uuid.uuid4())
    updated = stub.UpdateSubscription(
        pb.UpdateSubscriptionRequest(
            subscription=sub_pb.Subscription(
                id=sub.id, display_name="Ed", email="ignored@example.com", dataset_ids=[dataset],
                event_types=[sub_pb.EVENT_TYPE_ANOMALY_DETECTED], min_anomaly_count=4,
            ),
            update_mask=field_mask_pb2.FieldMask(
                paths=["display_name", "dataset_ids", "event_types", "min_anomaly_count"]
            ),
        ),
        timeout=10,
    ).subscription
    assert (updated.display_name, updated.email) == ("Ed", sub.email)
    assert list(updated.dataset_ids) == [dataset] and list(updated.event_types) == [sub_pb.EVENT_TYPE_ANOMALY_DETECTED]
    assert updated.min_anomaly_count == 4
    fetched = stub.GetSubscription(pb.GetSubscriptionRequest(id=sub.id), timeout=10).subscription
    assert fetched == updated

    with pytest.raises(grpc.RpcError) as caught:
        stub.UpdateSubscription(
            pb.UpdateSubscriptionRequest(
                subscription=sub_pb.Subscription(id=sub.id), update_mask=field_mask_pb2.FieldMask(paths=["id"])
            ),
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # REST: PATCH with an update mask, GET, DELETE.
    patched = rest.patch(f"/v1/subscriptions/{sub.id}", params={"updateMask": "eventTypes"},
                         json={"eventTypes": ["EVENT_TYPE_RESULT_FAILED"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["subscription"]["eventTypes"] == ["EVENT_TYPE_RESULT_FAILED"]
    assert rest.get(f"/v1/subscriptions/{sub.id}").json()["subscription"]["displayName"] == "Ed"
    assert rest.delete(f"/v1/subscriptions/{sub.id}").status_code == 200
    assert rest.get(f"/v1/subscriptions/{sub.id}").status_code == 404
    assert rest.delete(f"/v1/subscriptions/{sub.id}").status_code == 404


def test_invalid_filters_are_rejected(stub) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateSubscription(
            pb.CreateSubscriptionRequest(
                subscription=sub_pb.Subscription(
                    email="x@example.com", dataset_ids=["not-a-uuid"], event_types=[0], min_anomaly_count=-1
                )
            ),
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateSubscription(pb.CreateSubscriptionRequest(subscription=sub_pb.Subscription(email="")), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_delivery_log_pages_and_filters(stub, mesh: RunningStack) -> None:  # type: ignore[no-untyped-def]
    sub = subscribe(stub, "Pager")
    ev.publish(nats_url(mesh), [ev.succeeded(sub.dataset_ids[0]) for _ in range(5)])
    everything = sent_for(stub, sub.id, 5)
    seen: list[str] = []
    token = ""
    while True:
        page = stub.ListDeliveries(
            pb.ListDeliveriesRequest(subscription_id=sub.id, page_size=2, page_token=token), timeout=10
        )
        seen += [d.id for d in page.deliveries]
        token = page.next_page_token
        if not token:
            break
    assert seen == [d.id for d in everything]
    with pytest.raises(grpc.RpcError) as caught:  # a token of another filter
        stub.ListDeliveries(pb.ListDeliveriesRequest(page_size=2, page_token=page_token_of(stub, sub.id)), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert deliveries(stub, subscription_id=sub.id, status=sub_pb.DELIVERY_STATUS_DEAD) == []


def page_token_of(stub, subscription_id: str) -> str:  # type: ignore[no-untyped-def]
    page = stub.ListDeliveries(pb.ListDeliveriesRequest(subscription_id=subscription_id, page_size=1), timeout=10)
    return str(page.next_page_token)


def test_the_stacks_mail_catcher_keeps_one_copy_of_an_email_sent_again(mesh: RunningStack) -> None:
    """As ./mesh up starts it (and as compose configures mailpit): an e-mail that
    notify sends again after a crash, same Message-ID, is accepted and not kept twice."""
    import smtplib

    address = f"again-{uuid.uuid4().hex[:10]}@example.com"
    message_id = f"<again-{uuid.uuid4()}@localhost>"
    data = f"From: notify@localhost\r\nTo: {address}\r\nSubject: once\r\nMessage-ID: {message_id}\r\n\r\nhi\r\n"
    ignored_before = ev.mail_info(mesh.mail_api)["RuntimeStats"]["SMTPIgnored"]
    with smtplib.SMTP("127.0.0.1", mesh.settings.smtp_port, timeout=10) as smtp:
        for _ in range(2):
            assert smtp.sendmail("notify@localhost", [address], data.encode()) == {}
    assert [m["MessageID"] for m in ev.messages_to(mesh.mail_api, address)] == [message_id.strip("<>")]
    assert ev.mail_info(mesh.mail_api)["RuntimeStats"]["SMTPIgnored"] == ignored_before + 1
