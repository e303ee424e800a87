"""The unsubscribe page in a real browser, against the real mesh: the link
from a real e-mail opens a confirmation page without signing in and changes
nothing; its button disables the subscription; a forged link is refused in
plain words; the owner sees the subscription disabled on the Notifications
page and enables it again."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, expect

from mesh.notify.v1 import notify_service_pb2 as pb
from mesh.notify.v1 import notify_service_pb2_grpc as pb_grpc
from mesh.notify.v1 import subscription_pb2
from tests.conftest import RunningStack
from tests.eventually import eventually
from tests.notify_svc import event_publishing as ev
from tests.web.browser import WAIT_MS, fresh_page, launched_chromium, navigate, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


def _is_disabled(mesh: RunningStack, subscription_id: str) -> bool:
    with mesh.channel(mesh.notify, "viewer") as channel:
        reply = pb_grpc.NotifyServiceStub(channel).GetSubscription(
            pb.GetSubscriptionRequest(id=subscription_id), timeout=10
        )
    return reply.subscription.disabled


def _link_in_a_test_email(mesh: RunningStack, web: str) -> tuple[subscription_pb2.Subscription, str]:
    """A new subscription and the unsubscribe link in the body of its test e-mail."""
    email = f"leaver-{uuid.uuid4().hex[:10]}@example.com"
    with mesh.channel(mesh.notify, "analyst") as channel:
        stub = pb_grpc.NotifyServiceStub(channel)
        sub = stub.CreateSubscription(
            pb.CreateSubscriptionRequest(
                subscription=subscription_pb2.Subscription(
                    email=email,
                    dataset_ids=[str(uuid.uuid4())],
                    event_types=[subscription_pb2.EVENT_TYPE_ANOMALY_DETECTED],
                )
            ),
            timeout=10,
        ).subscription
        stub.SendTestEmail(pb.SendTestEmailRequest(id=sub.id), timeout=30)
    (summary,) = eventually(lambda: ev.messages_to(mesh.mail_api, email), 30, f"mail to {email}")  # type: ignore[misc]
    text = httpx.get(f"{mesh.mail_api}/api/v1/message/{summary['ID']}", timeout=10).json()["Text"]
    (link,) = re.findall(re.escape(web) + r"/unsubscribe\?token=\S+", text)
    return sub, link


def test_the_link_shows_a_confirmation_page_and_only_its_button_unsubscribes(
    mesh: RunningStack, web: str, browser: Browser
) -> None:
    sub, link = _link_in_a_test_email(mesh, web)
    with fresh_page(browser) as page:  # nobody signed in
        # Opening the link (twice, as a link scanner and then the person might) changes nothing.
        for _ in range(2):
            page.goto(link)
            expect(page.get_by_test_id("unsubscribe-email")).to_have_text(sub.email, timeout=WAIT_MS)
        expect(page.get_by_test_id("unsubscribe-description")).to_have_text(
            "Analytics Mesh e-mails about detected anomalies, for 1 dataset"
        )
        expect(page.get_by_test_id("unsubscribe-confirm")).to_be_visible()
        assert urlsplit(page.url).path.rstrip("/") == "/unsubscribe", "the page is public: no detour to the login page"
        screenshot(page, "unsubscribe-confirm")
        assert not _is_disabled(mesh, sub.id)

        page.get_by_test_id("unsubscribe-confirm").click()
        expect(page.get_by_test_id("unsubscribe-done")).to_contain_text(
            f"{sub.email} is unsubscribed", timeout=WAIT_MS
        )
        expect(page.get_by_test_id("unsubscribe-confirm")).to_have_count(0)
        assert _is_disabled(mesh, sub.id)

        # Back later: it says so, with no button.
        page.goto(link)
        expect(page.get_by_test_id("unsubscribe-done")).to_contain_text("already unsubscribed", timeout=WAIT_MS)
        expect(page.get_by_test_id("unsubscribe-confirm")).to_have_count(0)


def test_a_forged_or_cut_link_is_refused_in_plain_words(mesh: RunningStack, web: str, browser: Browser) -> None:
    sub, link = _link_in_a_test_email(mesh, web)
    token = parse_qs(urlsplit(link).query)["token"][0]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with fresh_page(browser) as page:
        for bad in (f"{web}/unsubscribe?token={forged}", f"{web}/unsubscribe?token={token[:20]}", f"{web}/unsubscribe"):
            page.goto(bad)
            error = page.get_by_test_id("unsubscribe-error")
            expect(error).to_contain_text("This unsubscribe link is not valid", timeout=WAIT_MS)
            expect(error).to_contain_text("Nothing was changed")
            expect(page.get_by_test_id("unsubscribe-confirm")).to_have_count(0)
        screenshot(page, "unsubscribe-invalid")
    assert not _is_disabled(mesh, sub.id)


def test_the_owner_sees_an_unsubscribed_subscription_and_enables_it_again(
    mesh: RunningStack, web: str, browser: Browser
) -> None:
    sub, link = _link_in_a_test_email(mesh, web)
    token = parse_qs(urlsplit(link).query)["token"][0]
    assert httpx.post(f"{mesh.rest}/v1/unsubscribe", params={"token": token}, timeout=10).status_code == 200
    with fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["analyst"])
        navigate(page, "notifications")
        row = page.get_by_test_id("subscription-row").filter(has_text=sub.email)
        expect(row.get_by_test_id("subscription-state")).to_have_text("unsubscribed", timeout=WAIT_MS)
        row.get_by_test_id("subscription-toggle").click()
        expect(row.get_by_test_id("subscription-state")).to_have_text("mailing", timeout=WAIT_MS)
    eventually(lambda: not _is_disabled(mesh, sub.id), 30, "the subscription enabled again")
