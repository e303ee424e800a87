"""Each e-mail exactly once, on real NATS, SMTP and PostgreSQL, while things
break: bursts, nats-server SIGKILLed, notify SIGKILLed, the SMTP server away,
unreadable events, two replicas sharing the consumer.

Every test uses its own dataset and subscriptions; the rig's mail catcher is
emptied first, so every message in it belongs to the test. A test ends when
every delivery is recorded as sent: from then on nothing can send again, so
the catcher's count is final.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import uuid
from collections.abc import Iterator, Sequence

import grpc
import httpx
import pytest

from mesh.events.v1 import events_pb2
from mesh.notify.v1 import notify_service_pb2 as notify_pb
from mesh.notify.v1 import notify_service_pb2_grpc as notify_grpc
from mesh.notify.v1 import subscription_pb2 as sub_pb
from mesh_runtime import streams
from notify_svc import email_message, links, store
from tests.conftest import RunningStack
from tests.eventually import eventually
from tests.notify_svc import event_publishing as ev
from tests.notify_svc.reliability_rig import LEASE_SECONDS, Rig

SENT, FAILED = sub_pb.DELIVERY_STATUS_SENT, sub_pb.DELIVERY_STATUS_FAILED
# Deliveries still to be sent: queued, or failed and waiting for a retry.
UNFINISHED = [sub_pb.DELIVERY_STATUS_QUEUED, FAILED]
EVENTS = 1000
SUBSCRIPTIONS = 3
# Deliveries one notify process holds at once: claimed ahead of its 4 SMTP connections.
IN_FLIGHT = 8


@pytest.fixture(scope="module")
def rig(mesh: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    rig = Rig(mesh, tmp_path_factory.mktemp("notify-rig"))
    try:
        rig.start()
        yield rig
    finally:
        rig.close()


def ignored_copies(rig: Rig) -> int:
    """Messages the catcher answered 250 and dropped: a kept one had their Message-ID."""
    return int(ev.mail_info(rig.mail_api)["RuntimeStats"]["SMTPIgnored"])


@pytest.fixture
def empty_mailbox(rig: Rig) -> int:
    """Empties the rig's catcher; returns how many copies it had dropped so far."""
    httpx.delete(f"{rig.mail_api}/api/v1/messages", timeout=10).raise_for_status()
    return ignored_copies(rig)


def burst(dataset_id: str, count: int = EVENTS) -> list[events_pb2.Event]:
    return [ev.succeeded(dataset_id, anomaly_count=i % 4) for i in range(count)]


def wait_all_sent(rig: Rig, subscription_ids: Sequence[str], expected: int, timeout: float = 180) -> None:
    def done() -> bool:
        counts = rig.status_counts(subscription_ids)
        return counts.get(SENT, 0) == expected and sum(counts.values()) == expected

    eventually(done, timeout, f"{expected} deliveries recorded as sent", interval=0.25)


def sent_pairs(rig: Rig, subscription_ids: Sequence[str], events: Sequence[events_pb2.Event]) -> int:
    """Distinct (event, subscription) pairs of these events recorded as sent."""
    ((pairs,),) = rig.query(
        "SELECT count(DISTINCT (event_id, subscription_id)) FROM delivery"
        " WHERE subscription_id = ANY (%s::uuid[]) AND event_id = ANY (%s) AND status = %s",
        (list(subscription_ids), [e.event_id for e in events], SENT),
    )
    return int(pairs)


def assert_each_mail_once(
    rig: Rig,
    subscription_ids: Sequence[str],
    events: Sequence[events_pb2.Event],
    *,
    ignored_before: int,
    resent: int = 0,
    by_message_id: bool = False,
) -> None:
    """The catcher holds exactly one e-mail per (event, subscription), and
    dropped ``resent`` copies of them since it had dropped ``ignored_before``.

    Every pair is recorded as sent only after the SMTP server accepted its
    e-mail, so each pair has at least one message in the (otherwise empty)
    catcher; a total equal to the number of pairs leaves no room for a second
    copy of any. The catcher drops a copy whose Message-ID it holds, so the
    count of dropped copies shows whether notify sent anything twice.
    ``by_message_id`` also checks the messages one by one (the catcher parses
    each listed message: kept to the smaller tests and the crash).
    """
    expected = len(events) * len(subscription_ids)
    assert sent_pairs(rig, subscription_ids, events) == expected
    assert ev.message_count(rig.mail_api) == expected
    assert ignored_copies(rig) - ignored_before == resent, "copies sent twice"
    if by_message_id:
        ids = collections.Counter(str(m["MessageID"]) for m in ev.all_messages(rig.mail_api))
        wanted = {
            email_message.message_id(e.event_id, uuid.UUID(sub), "localhost").strip("<>")
            for e in events
            for sub in subscription_ids
        }
        assert set(ids) == wanted and set(ids.values()) == {1}


def test_1000_events_to_3_subscriptions_are_3000_emails_from_two_replicas(rig: Rig, empty_mailbox: int) -> None:
    """Two notify processes share the durable consumer and the delivery table;
    one of them is stopped (SIGTERM) mid-burst and started again."""
    rig.start_notify("notify-2")
    try:
        dataset = str(uuid.uuid4())
        subs = rig.subscribe(SUBSCRIPTIONS, dataset)
        events = burst(dataset)
        ev.publish(rig.nats_url, events)
        eventually(lambda: ev.message_count(rig.mail_api) >= 1000, 60, "a third of the e-mails", interval=0.02)
        rig.stop("notify-2")
        rig.start_notify("notify-2")
        wait_all_sent(rig, subs, EVENTS * SUBSCRIPTIONS)
        assert_each_mail_once(rig, subs, events, ignored_before=empty_mailbox)
        senders = rig.query(
            "SELECT count(DISTINCT lease_owner) FROM delivery WHERE subscription_id = ANY (%s::uuid[])", (subs,)
        )
        assert senders == [(3,)], "both replicas, and the restarted one, sent e-mails"
    finally:
        rig.stop("notify-2")


def test_nats_killed_mid_burst_and_restarted(rig: Rig, empty_mailbox: int) -> None:
    dataset = str(uuid.uuid4())
    subs = rig.subscribe(SUBSCRIPTIONS, dataset)
    events = burst(dataset)
    first, rest = events[:400], events[400:]
    ev.publish(rig.nats_url, first)
    # Some of the first events are recorded, not all: the burst is in flight.
    eventually(lambda: sum(rig.status_counts(subs).values()) >= 300, 60, "the burst under way", interval=0.02)
    rig.kill("nats")
    # The publisher retries until NATS is back, as the outbox relay does.
    publisher = threading.Thread(target=ev.publish, args=(rig.nats_url, rest), kwargs={"deadline": 120.0})
    publisher.start()
    rig.start_nats()
    publisher.join(150)
    assert not publisher.is_alive()
    wait_all_sent(rig, subs, EVENTS * SUBSCRIPTIONS)
    assert_each_mail_once(rig, subs, events, ignored_before=empty_mailbox)


def test_notify_killed_mid_burst_and_restarted(rig: Rig, empty_mailbox: int) -> None:
    """SIGKILL mid-burst: every e-mail arrives exactly once. The e-mails the dead
    process held (claimed, not recorded as sent) are sent again after their
    lease with the same Message-ID; those the SMTP server had already accepted
    (the window no SMTP client can close) are answered 250 and dropped by the
    catcher, as mailpit does with MP_IGNORE_DUPLICATE_IDS."""
    dataset = str(uuid.uuid4())
    subs = rig.subscribe(SUBSCRIPTIONS, dataset)
    events = burst(dataset)
    ev.publish(rig.nats_url, events)
    eventually(lambda: ev.message_count(rig.mail_api) >= 900, 60, "a third of the e-mails", interval=0.02)
    rig.kill("notify-1")
    # Accepted by the SMTP server, then recorded (in this order, so a write that
    # was still landing can only make the difference smaller).
    accepted_at_kill = ev.message_count(rig.mail_api)
    ((recorded_at_kill, held_at_kill),) = rig.query(
        "SELECT count(*) FILTER (WHERE status = %s),"
        " count(*) FILTER (WHERE status = ANY (%s) AND lease_until > now())"
        " FROM delivery WHERE subscription_id = ANY (%s::uuid[])",
        (SENT, UNFINISHED, subs),
    )
    rig.start_notify("notify-1")
    expected = EVENTS * SUBSCRIPTIONS
    wait_all_sent(rig, subs, expected)
    resent = ignored_copies(rig) - empty_mailbox
    assert_each_mail_once(rig, subs, events, ignored_before=empty_mailbox, resent=resent, by_message_id=True)
    # Every copy accepted but not recorded at the kill was sent again and
    # dropped; nothing else was: only what the dead process held can go twice.
    accepted_unrecorded = accepted_at_kill - int(recorded_at_kill)
    held = int(held_at_kill)
    assert accepted_unrecorded <= resent <= held <= IN_FLIGHT, (accepted_unrecorded, resent, held)
    ((sent_again,),) = rig.query(
        "SELECT count(*) FROM delivery WHERE subscription_id = ANY (%s::uuid[]) AND attempts >= 2", (subs,)
    )
    assert resent <= int(sent_again)


def test_a_killed_replicas_emails_are_taken_over_by_the_other_after_its_lease(rig: Rig, empty_mailbox: int) -> None:
    """Two replicas share a burst; one is SIGKILLed and not restarted. The
    e-mails it held are taken over by the other once their lease ran out (not
    before: no e-mail is sent by two live replicas at once), so the burst
    completes within a few leases of the kill."""
    rig.start_notify("notify-2")
    try:
        dataset = str(uuid.uuid4())
        subs = rig.subscribe(2, dataset)
        events = burst(dataset, 300)
        ev.publish(rig.nats_url, events)
        eventually(lambda: ev.message_count(rig.mail_api) >= 100, 60, "the burst under way", interval=0.02)
        owners = rig.query("SELECT DISTINCT lease_owner FROM delivery WHERE lease_until > now()")
        assert len(owners) == 2, owners  # both replicas are sending
        victim = owners[0][0]
        # Which replica is which: the victim's process is found by the owner it logs at start.
        name = next(n for n in ("notify-1", "notify-2") if victim in rig.log(n))
        rig.kill(name)
        held = dict(
            rig.query(
                "SELECT id, lease_until FROM delivery WHERE lease_owner = %s AND status = ANY (%s)"
                " AND lease_until IS NOT NULL AND subscription_id = ANY (%s::uuid[])",
                (victim, UNFINISHED, subs),
            )
        )
        expected = len(events) * len(subs)
        # Recovery is bounded by the lease (a lease, a poll, the e-mails left), plus room for a loaded machine.
        wait_all_sent(rig, subs, expected, timeout=5 * LEASE_SECONDS + 60)
        resent = ignored_copies(rig) - empty_mailbox
        assert_each_mail_once(rig, subs, events, ignored_before=empty_mailbox, resent=resent)
        assert held, "the killed replica held no e-mail"
        taken_over = rig.query(
            "SELECT id, lease_owner, sent_time, attempts FROM delivery WHERE id = ANY (%s::uuid[])",
            ([str(i) for i in held],),
        )
        for delivery_id, owner, sent_time, attempts in taken_over:
            assert owner != victim and attempts >= 2, (owner, attempts)
            assert sent_time > held[delivery_id], "taken over before the lease ran out"
    finally:
        if "notify-1" not in rig.processes:
            rig.start_notify("notify-1")
        rig.stop("notify-2")


def test_an_email_sent_longer_than_its_lease_stays_with_its_sender(rig: Rig, empty_mailbox: int) -> None:
    """The SMTP server hangs for several leases (paused): the replicas keep
    renewing the leases of the e-mails they are sending, so neither takes
    over the other's, and each e-mail goes out once, on its first attempt."""
    rig.stop("notify-1")
    slow = {"NOTIFY_LEASE_SECONDS": "3", "SMTP_TIMEOUT_SECONDS": "120"}
    rig.start_notify("notify-a", **slow)
    rig.start_notify("notify-b", **slow)
    try:
        dataset = str(uuid.uuid4())
        subs = rig.subscribe(2, dataset)
        events = burst(dataset, 20)
        rig.pause("mail")
        try:
            ev.publish(rig.nats_url, events)

            def renewed_twice() -> bool:
                # Held since the claim (update_time), and renewed more than two leases later.
                ((count,),) = rig.query(
                    "SELECT count(*) FROM delivery WHERE subscription_id = ANY (%s::uuid[])"
                    " AND status = %s AND lease_until > update_time + interval '7 seconds'",
                    (subs, sub_pb.DELIVERY_STATUS_QUEUED),
                )
                return int(count) >= 8

            eventually(renewed_twice, 60, "e-mails held over two leases past their claim", interval=0.2)
        finally:
            rig.resume("mail")
        wait_all_sent(rig, subs, len(events) * len(subs))
        assert_each_mail_once(rig, subs, events, ignored_before=empty_mailbox, by_message_id=True)
        assert rig.query(
            "SELECT DISTINCT attempts FROM delivery WHERE subscription_id = ANY (%s::uuid[])", (subs,)
        ) == [(1,)]
    finally:
        rig.stop("notify-a")
        rig.stop("notify-b")
        rig.start_notify("notify-1")


def test_an_email_accepted_but_not_recorded_is_sent_again_and_kept_once(rig: Rig, empty_mailbox: int) -> None:
    """The crash window made to happen: the SMTP server has the e-mail, the
    delivery log does not say so (as if notify died between the 250 and
    recording it). The delivery is sent again with the same Message-ID; the
    catcher keeps one copy and counts the other as dropped."""
    dataset = str(uuid.uuid4())
    subs = rig.subscribe(1, dataset)
    events = burst(dataset, 1)
    ev.publish(rig.nats_url, events)
    wait_all_sent(rig, subs, 1)
    rig.query(
        "UPDATE delivery SET status = %s, sent_time = NULL, next_attempt_time = now(), lease_until = NULL"
        " WHERE subscription_id = %s RETURNING id",
        (sub_pb.DELIVERY_STATUS_QUEUED, subs[0]),
    )
    wait_all_sent(rig, subs, 1, timeout=60)
    assert rig.query("SELECT attempts FROM delivery WHERE subscription_id = %s", (subs[0],)) == [(2,)]
    assert_each_mail_once(rig, subs, events, ignored_before=empty_mailbox, resent=1, by_message_id=True)


def test_smtp_down_for_a_while_retries_until_all_arrive(rig: Rig, empty_mailbox: int) -> None:
    dataset = str(uuid.uuid4())
    subs = rig.subscribe(SUBSCRIPTIONS, dataset)
    events = burst(dataset, 40)
    rig.stop("mail")
    ev.publish(rig.nats_url, events)
    expected = len(events) * SUBSCRIPTIONS
    # Every delivery failed at least twice while the server was away.
    eventually(
        lambda: rig.query(
            "SELECT count(*) FROM delivery WHERE subscription_id = ANY (%s::uuid[]) AND attempts >= 2 AND status = %s",
            (subs, FAILED),
        )
        == [(expected,)],
        60,
        "failed attempts",
    )
    errors = rig.query("SELECT DISTINCT last_error FROM delivery WHERE subscription_id = ANY (%s::uuid[])", (subs,))
    assert all("Connection refused" in str(e[0]) or "ConnectionRefused" in str(e[0]) for e in errors), errors
    rig.start_mail()
    wait_all_sent(rig, subs, expected)
    assert_each_mail_once(rig, subs, events, ignored_before=0)  # a new catcher process counts from 0
    ((low, high),) = rig.query(
        "SELECT min(attempts), max(attempts) FROM delivery WHERE subscription_id = ANY (%s::uuid[])", (subs,)
    )
    assert int(low) >= 3 and int(high) >= int(low)
    assert rig.query(
        "SELECT count(*) FROM delivery WHERE subscription_id = ANY (%s::uuid[]) AND last_error = ''", (subs,)
    ) == [(expected,)]


def test_unsubscribed_recipients_get_none_of_the_emails_still_waiting(rig: Rig, empty_mailbox: int) -> None:
    """E-mails queued and failing while the SMTP server is away: one recipient
    unsubscribes through the link (notify's public Unsubscribe), another
    subscription is disabled behind notify's back (as a disable racing a
    claim would leave it); once the server is back, neither gets any of them,
    each delivery is logged as given up, and the third gets all."""
    dataset = str(uuid.uuid4())
    leaver, raced, stayer = subs = rig.subscribe(3, dataset)
    events = burst(dataset, 20)
    rig.stop("mail")
    ev.publish(rig.nats_url, events)
    eventually(
        lambda: rig.query(
            "SELECT count(*) FROM delivery WHERE subscription_id = ANY (%s::uuid[]) AND attempts >= 1 AND status = %s",
            (subs, FAILED),
        )
        == [(len(events) * 3,)],
        60,
        "failed attempts waiting for a retry",
    )
    with grpc.insecure_channel(f"127.0.0.1:{rig.grpc_ports['notify-1']}") as channel:  # no sign-in: a public RPC
        reply = notify_grpc.NotifyServiceStub(channel).Unsubscribe(
            notify_pb.UnsubscribeRequest(token=links.unsubscribe_token(rig.link_secret, leaver)), timeout=10
        )
    assert reply.disabled
    rig.query("UPDATE subscription SET disabled = true WHERE id = %s RETURNING id", (raced,))
    rig.start_mail()
    wait_all_sent(rig, [stayer], len(events))
    for gone in (leaver, raced):
        eventually(
            lambda gone=gone: rig.status_counts([gone]) == {sub_pb.DELIVERY_STATUS_DEAD: len(events)},  # type: ignore[misc]
            60,
            "every waiting e-mail given up",
        )
        errors = rig.query("SELECT DISTINCT last_error FROM delivery WHERE subscription_id = %s", (gone,))
        assert errors == [(store.UNSUBSCRIBED_ERROR,)]
    for (address,) in rig.query("SELECT email FROM subscription WHERE id = ANY (%s::uuid[])", ([leaver, raced],)):
        assert ev.messages_to(rig.mail_api, str(address)) == []
    assert ev.message_count(rig.mail_api) == len(events)


def test_unreadable_events_are_dead_and_the_rest_is_mailed(rig: Rig, empty_mailbox: int) -> None:
    dataset = str(uuid.uuid4())
    subs = rig.subscribe(SUBSCRIPTIONS, dataset)
    events = burst(dataset, 100)
    poison = [(f"poison-{uuid.uuid4()}", b"\x08\x96\x01 not an event") for _ in range(5)]
    raw = [(streams.event_subject(e), e.event_id, e.SerializeToString()) for e in events[:50]]
    raw += [("mesh.events.v1.result_succeeded", msg_id, body) for msg_id, body in poison]
    raw += [(streams.event_subject(e), e.event_id, e.SerializeToString()) for e in events[50:]]
    asyncio.run(ev.publish_raw(rig.nats_url, raw))
    wait_all_sent(rig, subs, len(events) * SUBSCRIPTIONS)
    assert_each_mail_once(rig, subs, events, ignored_before=empty_mailbox, by_message_id=True)
    dead = rig.query(
        "SELECT event_id, status, subscription_id FROM delivery WHERE event_id = ANY (%s)", ([p[0] for p in poison],)
    )
    assert sorted(dead) == sorted((msg_id, sub_pb.DELIVERY_STATUS_DEAD, None) for msg_id, _ in poison)


def test_a_deleted_consumer_is_declared_again(rig: Rig, empty_mailbox: int) -> None:
    """Someone deletes the durable consumer (or NATS lost its state): notify
    declares it again; events it had recorded already are not mailed again."""
    dataset = str(uuid.uuid4())
    subs = rig.subscribe(1, dataset)
    before = burst(dataset, 10)
    ev.publish(rig.nats_url, before)
    wait_all_sent(rig, subs, 10)

    async def delete_consumer() -> None:
        nc = await streams.connect(rig.nats_url, "tests-admin")
        try:
            await nc.jetstream().delete_consumer(streams.EVENTS_STREAM, "notify-email")
        finally:
            await nc.close()

    asyncio.run(delete_consumer())
    after = burst(dataset, 10)
    ev.publish(rig.nats_url, after)
    wait_all_sent(rig, subs, 20, timeout=60)
    # The re-declared consumer reads the stream from its start (every event of
    # the earlier tests too); none of them is mailed twice.
    assert_each_mail_once(rig, subs, before + after, ignored_before=empty_mailbox)


def test_old_sent_and_dead_deliveries_are_pruned_pending_ones_kept(rig: Rig) -> None:
    import datetime as dt

    from mesh_runtime.database import connect
    from notify_svc import store

    (sub_id,) = rig.subscribe(1, str(uuid.uuid4()))
    event_id = f"old-{uuid.uuid4()}"
    rig.query(
        "INSERT INTO event (event_id, event_type, payload, create_time)"
        " VALUES (%s, %s, '', now() - interval '40 days') RETURNING event_id",
        (event_id, sub_pb.EVENT_TYPE_RESULT_SUCCEEDED),
    )
    for status in (SENT, sub_pb.DELIVERY_STATUS_DEAD, FAILED):
        rig.query(
            "INSERT INTO delivery (id, event_id, subscription_id, status, create_time, update_time)"
            " VALUES (%s, %s, %s, %s, now() - interval '40 days', now()) RETURNING id",
            (str(uuid.uuid4()), event_id if status == FAILED else f"{event_id}-{status}", sub_id, status),
        )
    db = connect(rig.database_url, max_connections=1)
    store.bind(db)
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    with db.connection_context():
        assert store.prune(cutoff) == 2
        remaining = rig.query("SELECT status FROM delivery WHERE subscription_id = %s", (sub_id,))
        assert remaining == [(FAILED,)]  # still being retried
        assert rig.query("SELECT count(*) FROM event WHERE event_id = %s", (event_id,)) == [(1,)]
        rig.query("UPDATE delivery SET status = %s WHERE subscription_id = %s RETURNING id", (SENT, sub_id))
        assert store.prune(cutoff) == 1
        assert rig.query("SELECT count(*) FROM event WHERE event_id = %s", (event_id,)) == [(0,)]
    db.close_all()


def test_an_event_keeps_its_trace_context_for_every_later_attempt(rig: Rig) -> None:
    """A delivery retried after a restart, or by another replica, has no span
    handed over in memory: it continues the event's trace from the event row."""
    from mesh_runtime.database import connect
    from mesh_runtime.telemetry import span_context_of
    from notify_svc import store

    dataset_id = str(uuid.uuid4())
    rig.subscribe(1, dataset_id)
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    traceparent = f"00-{trace_id}-{span_id}-01"
    event = store.IncomingEvent(
        event_id=f"traced-{uuid.uuid4()}",
        event_type=sub_pb.EVENT_TYPE_RESULT_SUCCEEDED,
        dataset_id=dataset_id,
        anomaly_count=0,
        result_id=str(uuid.uuid4()),
        payload=b"",
        traceparent=traceparent,
    )
    db = connect(rig.database_url, max_connections=1)
    store.bind(db)
    try:
        with db.connection_context():
            (delivery_id,) = store.record_events([event])
            claimed = store.claimed(delivery_id)
        assert claimed is not None and claimed.traceparent == traceparent
        parent = span_context_of(claimed.traceparent)
        assert parent is not None
        assert (format(parent.trace_id, "032x"), format(parent.span_id, "016x")) == (trace_id, span_id)
        assert parent.is_remote and parent.trace_flags.sampled
    finally:
        db.close_all()
