"""The web app as an attacker would try it, against the real mesh: events the
page hides from a viewer sent anyway over the page's own websocket (in a real
browser); another site's origin asking for the websocket or for CORS with
credentials; the headers every answer carries."""

from __future__ import annotations

import base64
import os
import smtplib
import socket
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from mesh.analytics.v1 import analysis_pb2, dataset_pb2
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.notify.v1 import notify_service_pb2 as notify_pb2
from mesh.notify.v1 import notify_service_pb2_grpc as notify_pb2_grpc
from mesh.notify.v1 import subscription_pb2
from tests.conftest import RunningStack
from tests.eventually import eventually
from tests.web.browser import WAIT_MS, EventSender, fresh_page, launched_chromium, navigate, sign_in

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
if str(WEB_DIR) not in sys.path:
    sys.path.insert(0, str(WEB_DIR))

from mesh_web.auth_state import MIN_ROLE_ATTRIBUTE  # noqa: E402
from mesh_web.pages.dataset.edit import DatasetEditState  # noqa: E402
from mesh_web.pages.dataset.run import RunAnalysisState  # noqa: E402
from mesh_web.pages.dataset.sample_data import SampleDataState  # noqa: E402
from mesh_web.pages.dataset.schedules import SchedulesState  # noqa: E402
from mesh_web.pages.dataset.upload import CsvUploadState  # noqa: E402
from mesh_web.pages.datasets import DatasetsState  # noqa: E402
from mesh_web.pages.mailbox import MailboxState  # noqa: E402
from mesh_web.pages.notifications import NotificationsState  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

EVIL_ORIGIN = "http://evil.example"
REFRESH_TOKEN_COOKIE = "mesh_refresh_token"

STATE_CHANGING_EVENTS = {
    (DatasetsState, "create_dataset"),
    (DatasetEditState, "save"),
    (DatasetEditState, "delete"),
    (CsvUploadState, "import_pending_csv"),
    (SampleDataState, "generate_sample"),
    (RunAnalysisState, "run_analysis"),
    (RunAnalysisState, "run_schedule_now"),
    (SchedulesState, "save_schedule"),
    (SchedulesState, "set_schedule_enabled"),
    (SchedulesState, "delete_schedule"),
    (NotificationsState, "save"),
    (NotificationsState, "delete"),
    (NotificationsState, "send_test"),
    (NotificationsState, "set_enabled"),
    (MailboxState, "delete_all"),
}
"""Every event that changes something in the services or the mailbox: each
checks on the server that the user's role may (analyst and above)."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


def _handlers_with_a_role_check() -> set[tuple[type, str]]:
    states = {DatasetsState, DatasetEditState, CsvUploadState, SampleDataState, RunAnalysisState, SchedulesState}
    states |= {NotificationsState, MailboxState}
    return {
        (state, name)
        for state in states
        for name, handler in state.event_handlers.items()
        if getattr(handler.fn, MIN_ROLE_ATTRIBUTE, None) is not None
    }


def test_every_state_changing_event_declares_the_role_it_needs() -> None:
    assert _handlers_with_a_role_check() == STATE_CHANGING_EVENTS


def _mail_count(mesh: RunningStack) -> int:
    response = httpx.get(f"{mesh.mail_api}/api/v1/messages", timeout=10)
    return int(response.json()["total"])


def _send_mail(mesh: RunningStack, subject: str) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "alerts@example.com", "viewer@example.com", subject
    message.set_content("kept: a viewer may not empty the mailbox")
    with smtplib.SMTP("127.0.0.1", mesh.settings.smtp_port, timeout=10) as smtp:
        smtp.send_message(message)


def _refusals(mesh: RunningStack) -> str:
    """What every web replica logged (the event websocket reaches whichever the proxy picked)."""
    return "".join(log.read_text(errors="replace") for log in sorted(mesh.logs().glob("web*.log")))


def test_a_viewer_sending_hidden_events_over_the_websocket_changes_nothing(
    mesh: RunningStack, web: str, browser: Browser
) -> None:
    name = f"guarded-{uuid.uuid4().hex[:8]}"
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    with mesh.channel(mesh.analytics, "analyst") as channel:
        analytics = pb_grpc.AnalyticsServiceStub(channel)
        dataset = analytics.CreateDataset(
            pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name, description="kept")), timeout=10
        ).dataset
        schedule = analytics.CreateSchedule(
            pb.CreateScheduleRequest(
                schedule=analysis_pb2.Schedule(
                    dataset_id=dataset.id,
                    kind=analysis_pb2.ANALYSIS_KIND_SUMMARY,
                    interval_seconds=86_400,
                    enabled=True,
                )
            ),
            timeout=10,
        ).schedule
    with mesh.channel(mesh.notify, "analyst") as channel:
        subscription = (
            notify_pb2_grpc.NotifyServiceStub(channel)
            .CreateSubscription(
                notify_pb2.CreateSubscriptionRequest(subscription=subscription_pb2.Subscription(email=email)),
                timeout=10,
            )
            .subscription
        )
    _send_mail(mesh, f"kept {name}")
    mails = _mail_count(mesh)
    viewer = mesh.credentials["viewer"][0]

    with fresh_page(browser) as page:
        events = EventSender(page)
        sign_in(page, web, mesh.credentials["viewer"])
        page.goto(f"{web}/datasets/{dataset.id}")
        expect(page.get_by_test_id("schedule-row")).to_have_count(1, timeout=WAIT_MS)
        sent: list[tuple[type, str, dict[str, object]]] = [
            (DatasetsState, "create_dataset", {"form_data": {"name": f"{name}-forged", "description": "", "unit": ""}}),
            (DatasetEditState, "save", {"form_data": {"name": f"{name}-renamed", "description": "x", "unit": "x"}}),
            (CsvUploadState, "import_pending_csv", {}),
            (SampleDataState, "generate_sample", {"form_data": {"shape": "cpu-load", "points": "100"}}),
            (RunAnalysisState, "run_analysis", {"form_data": {"kind": "report"}}),
            (RunAnalysisState, "run_schedule_now", {"schedule_id": schedule.id}),
            (
                SchedulesState,
                "save_schedule",
                {"form_data": {"kind": "report", "trigger_kind": "interval", "trigger_value": "3600"}},
            ),
            (SchedulesState, "set_schedule_enabled", {"schedule_id": schedule.id, "enabled": False}),
            (SchedulesState, "delete_schedule", {"schedule_id": schedule.id}),
            (DatasetEditState, "delete", {}),
        ]
        for state, handler, payload in sent:
            events.send(state, handler, **payload)
        navigate(page, "notifications")
        expect(page.get_by_test_id("subscription-row").first).to_be_visible(timeout=WAIT_MS)
        notification_events: list[tuple[type, str, dict[str, object]]] = [
            (NotificationsState, "save", {"form_data": {"email": f"forged-{email}", "event_result_succeeded": "on"}}),
            (NotificationsState, "send_test", {"subscription_id": subscription.id}),
            (NotificationsState, "set_enabled", {"subscription_id": subscription.id, "enabled": False}),
            (NotificationsState, "delete", {"subscription_id": subscription.id}),
        ]
        for state, handler, payload in notification_events:
            events.send(state, handler, **payload)
        navigate(page, "mailbox")
        expect(page.get_by_test_id("mail-row").first).to_be_visible(timeout=WAIT_MS)
        events.send(MailboxState, "delete_all")
        sent += [*notification_events, (MailboxState, "delete_all", {})]

        # Each was refused by the web server itself, and said so.
        for state, handler, _ in sent:
            line = f"refused {state.__name__}.{handler} for {viewer}"
            eventually(lambda line=line: line in _refusals(mesh), 30, f"the web log saying {line!r}")  # type: ignore[misc]
        expect(page.get_by_text("Your role may not do this").first).to_be_visible(timeout=WAIT_MS)

    # And nothing changed.
    assert _mail_count(mesh) == mails
    with mesh.channel(mesh.analytics, "viewer") as channel:
        analytics = pb_grpc.AnalyticsServiceStub(channel)
        kept = analytics.GetDataset(pb.GetDatasetRequest(id=dataset.id), timeout=10).dataset
        assert (kept.name, kept.description, kept.point_count) == (name, "kept", 0)
        listed = analytics.ListDatasets(pb.ListDatasetsRequest(page_size=1000), timeout=10).datasets
        assert not [d for d in listed if d.name.startswith(f"{name}-")]
        schedules = analytics.ListSchedules(pb.ListSchedulesRequest(dataset_id=dataset.id), timeout=10).schedules
        assert [(s.id, s.enabled) for s in schedules] == [(schedule.id, True)]
        assert not analytics.ListResults(pb.ListResultsRequest(dataset_id=dataset.id), timeout=10).results
    with mesh.channel(mesh.notify, "viewer") as channel:
        notify = notify_pb2_grpc.NotifyServiceStub(channel)
        subscriptions = notify.ListSubscriptions(notify_pb2.ListSubscriptionsRequest(page_size=1000), timeout=10)
        emails = {s.email for s in subscriptions.subscriptions}
        assert email in emails
        assert f"forged-{email}" not in emails
        assert not [s for s in subscriptions.subscriptions if s.email == email and s.disabled]
        deliveries = notify.ListDeliveries(notify_pb2.ListDeliveriesRequest(page_size=1000), timeout=10).deliveries
        assert not [d for d in deliveries if d.email == email]


def _websocket_handshake_status(web: str, origin: str) -> int:
    """The HTTP status the event websocket's handshake answers with ``Origin: origin`` (101: upgraded)."""
    parts = urllib.parse.urlsplit(web)
    request = (
        f"GET /_event/?EIO=4&transport=websocket&token={uuid.uuid4()} HTTP/1.1\r\n"
        f"Host: {parts.netloc}\r\nOrigin: {origin}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n\r\n"
    )
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=10) as conn:
        conn.sendall(request.encode())
        status_line = conn.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def test_only_the_web_origin_gets_the_websocket_and_cors_with_credentials(web: str) -> None:
    assert _websocket_handshake_status(web, web) == 101
    assert _websocket_handshake_status(web, EVIL_ORIGIN) != 101

    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    with httpx.Client(base_url=web, timeout=10) as http:
        own = http.options("/_upload", headers={"Origin": web, **preflight})
        assert own.headers.get("access-control-allow-origin") == web
        evil = http.options("/_upload", headers={"Origin": EVIL_ORIGIN, **preflight})
        assert "access-control-allow-origin" not in evil.headers
        ping = http.get("/ping", headers={"Origin": EVIL_ORIGIN})
        assert "access-control-allow-origin" not in ping.headers


@pytest.mark.parametrize("path", ["/", "/login", "/datasets", "/ping"])
def test_answers_tell_the_browser_not_to_sniff_frame_or_leak_the_referrer(web: str, path: str) -> None:
    response = httpx.get(f"{web}{path}", timeout=10, follow_redirects=True)
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'self'" in policy
    assert "object-src 'none'" in policy


@pytest.mark.parametrize("route", ["/auth/cookie", "/auth/refresh", "/auth/logout"])
def test_the_session_routes_answer_only_the_apps_own_tabs_and_are_never_cached(web: str, route: str) -> None:
    tab = {"X-Mesh-Tab": str(uuid.uuid4())}
    with httpx.Client(base_url=web, timeout=10) as http:
        forged = http.post(route, headers={"Origin": EVIL_ORIGIN, **tab})
        assert forged.status_code == 403
        assert "set-cookie" not in forged.headers
        no_tab = http.post(route, headers={"Origin": web})
        assert no_tab.status_code == 403
        own = http.post(route, headers={"Origin": web, **tab})
    # A tab that asked for nothing gets nothing (logout only forgets a cookie it does not have).
    assert own.status_code in (204, 409)
    assert own.headers["cache-control"] == "no-store"
    assert REFRESH_TOKEN_COOKIE not in {c.name for c in own.cookies.jar if c.value}
