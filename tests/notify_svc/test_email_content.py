"""E-mail building without servers: header safety, links, settings."""

from __future__ import annotations

import subprocess
import sys
import uuid
from email import message_from_bytes, policy
from pathlib import Path

import numpy as np
import pytest

from analytics_svc.analyses import compute
from analytics_svc.jobs import insights
from llm_svc.offline_writer import offline_answer
from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.events.v1 import events_pb2
from mesh_runtime.errors import InvalidArgument
from notify_svc import email_message, links
from notify_svc.delivery import DeliveryPolicy
from tests.notify_svc import event_publishing as ev

SECRET = "s" * 40
ROOT = Path(__file__).resolve().parents[2]


def build(display_name: str = "Ada", email: str = "ada@example.com", **event_options: object) -> bytes:
    event = ev.succeeded(str(uuid.uuid4()), **event_options)  # type: ignore[arg-type]
    return build_for(event, display_name, email)


def build_for(event: events_pb2.Event, display_name: str = "Ada", email: str = "ada@example.com") -> bytes:
    """The e-mail of ``event`` to a subscriber, as it is sent."""
    sub_id = uuid.uuid4()
    message = email_message.build_message(
        context=email_message.event_context(event),
        sender=email_message.sender_address("Analytics Mesh <notify@mesh.example>"),
        recipient=email_message.address(email, display_name),
        links=email_message.Links(
            links.result_url("https://app.example", event.result_succeeded.result_id),
            links.unsubscribe_url("https://api.example", SECRET, sub_id),
            links.unsubscribe_page_url("https://app.example", SECRET, sub_id),
        ),
        event_id=event.event_id,
        subscription_id=sub_id,
    )
    return message.data


def test_values_with_line_breaks_cannot_add_headers() -> None:
    raw = build(
        display_name="Eve\r\nBcc: victim@example.com",
        dataset_name="sales\r\nBcc: victim@example.com\r\n\r\nbody",
    )
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None
    assert parsed.get_all("To") == ['"Eve Bcc: victim@example.com" <ada@example.com>']
    assert "\n" not in str(parsed["Subject"]) and "victim" in str(parsed["Subject"])
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert not any(line.lower().startswith(b"bcc:") for line in head.split(b"\r\n"))


def test_non_ascii_names_and_subjects_are_encoded_words_and_read_back_whole() -> None:
    name = "Zoë Ångström-Łukasiewicz " * 4  # long enough to need several encoded words
    raw = build(display_name=name, dataset_name="Umsätze “Q3” – 東京 ✓", insight="Ünïcödé ✓ in the body")
    head, _, _ = raw.partition(b"\r\n\r\n")
    assert head.isascii() and max(len(line) for line in head.split(b"\r\n")) <= 998
    parsed = message_from_bytes(raw, policy=policy.default)
    (to,) = parsed["To"].addresses
    assert (to.display_name, to.addr_spec) == (name.strip(), "ada@example.com")
    assert "Umsätze “Q3” – 東京 ✓" in str(parsed["Subject"])
    assert "Ünïcödé ✓ in the body" in parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Ünïcödé ✓ in the body" in parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert not parsed.defects and all(not part.defects for part in parsed.walk())


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("Ada Lovelace", "Ada Lovelace <ada@example.com>"),
        ('Ada "the first" Lovelace', '"Ada \\"the first\\" Lovelace" <ada@example.com>'),
        ("Lovelace, Ada", '"Lovelace, Ada" <ada@example.com>'),
        ("", "ada@example.com"),
    ],
)
def test_display_names_are_quoted_when_they_must_be(name: str, header: str) -> None:
    raw = build(display_name=name)
    assert f"To: {header}\r\n".encode() in raw
    (to,) = message_from_bytes(raw, policy=policy.default)["To"].addresses
    assert (to.display_name, to.addr_spec) == (name, "ada@example.com")


def test_the_message_id_is_the_same_for_the_same_event_and_subscription() -> None:
    sub_id = uuid.uuid4()
    first = email_message.message_id("event-1", sub_id, "mesh.example")
    assert first == email_message.message_id("event-1", sub_id, "mesh.example")
    assert first != email_message.message_id("event-2", sub_id, "mesh.example")
    assert first != email_message.message_id("event-1", uuid.uuid4(), "mesh.example")
    raw = build()
    assert message_from_bytes(raw, policy=policy.default)["Message-ID"].startswith("<")


@pytest.mark.parametrize(
    "bad", ["a@b@c", "no-at-sign", "x@exa\nmple.com", "eve@example.com\r\nBcc: v@example.com", "", "zoë@example.com"]
)
def test_unusable_addresses_are_refused(bad: str) -> None:
    with pytest.raises(email_message.UnsendableAddress):
        email_message.address(bad, "x")


def test_multipart_text_and_html_with_the_links() -> None:
    parsed = message_from_bytes(build(insight="Calm <week>"), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Calm <week>" in text and "Calm &lt;week&gt;" in html
    # The header is the RFC 8058 one-click URL (mail clients POST to it); the
    # body's link leads a person to the web app's confirmation page instead,
    # since a GET of it (a link scanner's) must change nothing.
    unsubscribe = str(parsed["List-Unsubscribe"]).strip("<>")
    assert unsubscribe.startswith("https://api.example/v1/unsubscribe?token=")
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = unsubscribe.partition("?")[2]
    page = f"https://app.example/unsubscribe?{token}"
    assert page in text and page in html and unsubscribe not in text
    assert "https://app.example/results/" in html


def test_anomalies_at_the_ends_of_the_timestamp_range_are_written_out() -> None:
    # A float conversion of 9999-12-31T23:59:59.999999Z raised "year 10000 is out of range".
    event = ev.anomaly(str(uuid.uuid4()), 2)
    detected = event.anomaly_detected
    del detected.anomalies[:]
    detected.anomalies.add(timestamp_us=-62_135_596_800_000_000, value=1.0, score=9.0)
    detected.anomalies.add(timestamp_us=253_402_300_799_999_999, value=2.0, score=9.0)
    context = email_message.event_context(event)
    text = str(context)
    assert "9999-12-31 23:59:59 UTC" in text and "1-01-01 00:00:00 UTC" in text


def test_unsubscribe_tokens_are_signed() -> None:
    sub_id = str(uuid.uuid4())
    token = links.unsubscribe_token(SECRET, sub_id)
    assert links.verify_unsubscribe_token(SECRET, token) == sub_id
    for forged in (
        links.unsubscribe_token("another secret of enough length!!", sub_id),
        f"{uuid.uuid4()}.{token.partition('.')[2]}",
        sub_id,
        "garbage",
    ):
        with pytest.raises(InvalidArgument):
            links.verify_unsubscribe_token(SECRET, forged)


def test_retry_waits_grow_then_give_up() -> None:
    policy_ = DeliveryPolicy(
        owner="t", sender=email_message.sender_address("a@b.example"), web_base_url="http://w", rest_base_url="http://r",
        link_secret=SECRET, max_attempts=5, retry_base=2.0, retry_max=10.0,
    )
    waits = [policy_.retry_in(n) for n in range(1, 6)]
    assert waits[-1] is None
    for wait, base in zip(waits[:4], (2.0, 4.0, 8.0, 10.0), strict=True):  # doubling, capped, +-20% jitter
        assert wait is not None and 0.8 * base <= wait <= 1.2 * base


def test_local_link_secret_is_made_once(tmp_path: Path) -> None:
    path = tmp_path / "notify" / "link-secret"
    first = links.local_link_secret(path)
    assert len(first) >= 32 and links.local_link_secret(path) == first
    assert path.stat().st_mode & 0o077 == 0


def test_missing_link_secret_stops_the_service_with_one_line(tmp_path: Path) -> None:
    from mesh_runtime.auth_keys import KeyFolder

    keys = KeyFolder(tmp_path / "auth")
    keys.ensure()
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{ROOT}:{ROOT / 'gen' / 'python'}",
        "AUTH_JWKS_FILE": str(keys.jwks),
        "NOTIFY_LINK_SECRET": "",
    }
    result = subprocess.run(
        [sys.executable, "-m", "notify_svc"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "NOTIFY_LINK_SECRET" in lines[0], result.stderr


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SMTP_USERNAME": "u", "SMTP_PASSWORD": "p", "SMTP_HOST": "smtp.example.com"}, "SMTP_SECURITY"),
        ({"SMTP_USERNAME": "u"}, "SMTP_USERNAME"),
        ({"NOTIFY_LEASE_SECONDS": "0.5"}, "NOTIFY_LEASE_SECONDS"),
        ({"NOTIFY_MAX_DELIVER": "2", "NOTIFY_REDELIVERY_BACKOFF_SECONDS": "1,2,3"}, "NOTIFY_MAX_DELIVER"),
        ({"NOTIFY_SENDER": "Mesh <notify@example.com>\r\nBcc: x@example.com"}, "NOTIFY_SENDER"),
    ],
)
def test_settings_that_cannot_work_are_refused(env: dict[str, str], variable: str) -> None:
    from mesh_runtime.config import ConfigError, load_settings
    from notify_svc.config import NotifySettings
    from notify_svc.server import check_settings

    with pytest.raises(ConfigError, match=variable):
        check_settings(load_settings(NotifySettings, {"NOTIFY_LINK_SECRET": SECRET, **env}))


def test_password_in_clear_to_a_local_relay_is_allowed() -> None:
    from mesh_runtime.config import load_settings
    from notify_svc.config import NotifySettings
    from notify_svc.server import check_settings

    check_settings(
        load_settings(NotifySettings, {"NOTIFY_LINK_SECRET": SECRET, "SMTP_USERNAME": "u", "SMTP_PASSWORD": "p"})
    )


def test_anomaly_events_are_listed_largest_first_with_expected_value_and_span() -> None:
    event = ev.anomaly(str(uuid.uuid4()), 3)
    detected = event.anomaly_detected
    del detected.anomalies[:]
    t0 = 1_700_000_000_000_000
    detected.anomalies.add(timestamp_us=t0 + 120_000_000, value=140.0, score=9.1, expected=52.0,
                           start_us=t0, end_us=t0 + 300_000_000)  # fmt: skip
    detected.anomalies.add(timestamp_us=t0 + 86_400_000_000, value=20.0, score=-5.2, expected=48.5,
                           start_us=t0 + 86_400_000_000, end_us=t0 + 86_400_000_000)  # fmt: skip
    sub_id = uuid.uuid4()
    message = email_message.build_message(
        context=email_message.event_context(event),
        sender=email_message.sender_address("Analytics Mesh <notify@mesh.example>"),
        recipient=email_message.address("ada@example.com", "Ada"),
        links=email_message.Links("https://app.example/results/x", "https://api.example/u"),
        event_id=event.event_id,
        subscription_id=sub_id,
    )
    parsed = message_from_bytes(message.data, policy=policy.default)
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "The most pronounced 2 of 3 anomalies, largest first:" in text
    first, second = text.index("value 140 (expected 52)"), text.index("value 20 (expected 48.5)")
    assert first < second
    assert "(2023-11-14 22:13:20 UTC to 2023-11-14 22:18:20 UTC)" in text
    assert "<th>expected</th>" in html and "48.5" in html


def test_a_forecast_result_e_mail_carries_its_forecast_numbers_and_insight() -> None:
    t = np.arange(240, dtype=np.float64)
    values = 20 + 5 * np.sin(2 * np.pi * t / 24) + np.random.default_rng(1).normal(0, 0.3, t.size)
    stamps = 1_767_225_600_000_000 + t.astype(np.int64) * 3_600_000_000
    outcome = compute.run(apb.ANALYSIS_KIND_FORECAST, apb.AnalysisParameters(forecast_horizon=24), stamps, values)
    result = apb.Result(dataset_name="power", kind=apb.ANALYSIS_KIND_FORECAST, output=outcome.output)
    insight = offline_answer([("user", insights.insight_request(result).messages[-1].content)])
    event = events_pb2.Event(
        event_id=str(uuid.uuid4()),
        result_succeeded=events_pb2.ResultSucceeded(
            result_id=str(uuid.uuid4()),
            dataset_name="power",
            kind=compute.kind_name(apb.ANALYSIS_KIND_FORECAST),
            key_numbers=compute.key_numbers(outcome.output),
            insight=insight,
        ),
    )
    context = email_message.event_context(event)
    assert context["subject"].endswith("forecast of power is ready")
    assert [name for name, _ in context["key_numbers"]] == list(compute.FORECAST_NUMBERS)
    raw = build_for(event)
    body = message_from_bytes(raw, policy=policy.default).get_body(preferencelist=("plain",))
    text = body.get_content()  # type: ignore[union-attr]
    assert 'The forecast analysis of "power" is ready' in text
    assert "forecast at horizon:" in text and "holdout MASE:" in text
    assert "The forecast: power is expected to reach" in " ".join(text.split())
