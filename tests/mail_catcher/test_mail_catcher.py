"""The SMTP catcher as a real process: mail in over SMTP, out over mailpit's API v1.

No mocks: each catcher is ``python -m mail_catcher`` on free ports, found
through its --ready-file; mail goes in with smtplib and comes out with httpx.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.eventually import eventually

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

SUMMARY_FIELDS = {
    "ID", "MessageID", "Read", "From", "To", "Cc", "Bcc", "ReplyTo",
    "Subject", "Created", "Tags", "Size", "Attachments", "Snippet",
}  # fmt: skip
DETAIL_FIELDS = {
    "ID", "MessageID", "From", "To", "Cc", "Bcc", "ReplyTo", "Subject", "Date",
    "Text", "HTML", "Size", "Tags", "Attachments", "Inline",
}  # fmt: skip


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_CATCHER_", "MP_"))}
    env.update(extra)
    return env


@dataclass
class Catcher:
    """A running catcher process and how to reach it."""

    proc: subprocess.Popen[bytes]
    smtp_port: int
    http: httpx.Client
    ready_file: Path
    log: Path

    def send(self, message: EmailMessage, to: list[str] | None = None) -> None:
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=10) as smtp:
            smtp.send_message(message, to_addrs=to)

    def send_raw(self, raw: bytes, sender: str, recipients: list[str]) -> None:
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=10) as smtp:
            smtp.sendmail(sender, recipients, raw)

    def messages(self, query: str = "") -> dict:
        response = self.http.get(f"/api/v1/messages{query}")
        assert response.status_code == 200, response.text
        return response.json()

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Stop with ``sig``; returns the exit code (kills it if it does not stop in time)."""
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)
            pytest.fail(f"mail catcher ignored {sig.name}:\n{self.log.read_text()}")


def start(tmp: Path, *extra: str, env: dict[str, str] | None = None) -> Catcher:
    """Start a catcher on free ports and wait (with a deadline) for its ready file."""
    stamp = time.monotonic_ns()
    ready, log = tmp / f"ready-{stamp}.json", tmp / f"catcher-{stamp}.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mail_catcher", "--smtp-port", "0", "--http-port", "0"]
            + ["--ready-file", str(ready), *extra],
            cwd=ROOT, env=_clean_env(**(env or {})), stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        eventually(
            lambda: ready.exists() or proc.poll() is not None,
            START_TIMEOUT,
            lambda: f"the mail catcher to start:\n{log.read_text()}",
            interval=0.05,
        )
        if not ready.exists():
            pytest.fail(f"mail catcher did not start (exit {proc.returncode}):\n{log.read_text()}")
    except BaseException:
        proc.kill()
        proc.wait(STOP_TIMEOUT)
        raise
    ports = json.loads(ready.read_text())
    http = httpx.Client(base_url=f"http://127.0.0.1:{ports['http_port']}", timeout=10)
    return Catcher(proc, ports["smtp_port"], http, ready, log)


def run_catcher(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a catcher that is expected to exit by itself."""
    return subprocess.run(
        [sys.executable, "-m", "mail_catcher", *args],
        cwd=ROOT, env=_clean_env(**env), capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def assert_one_line_error(result: subprocess.CompletedProcess[str], *mentions: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for mention in mentions:
        assert mention in lines[0]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catcher]:
    """One in-memory catcher for the module."""
    catcher = start(tmp_path_factory.mktemp("catcher"))
    yield catcher
    catcher.stop()


@pytest.fixture
def catcher(running: Catcher) -> Catcher:
    """The module's catcher, emptied for each test."""
    assert running.http.delete("/api/v1/messages").status_code == 200
    return running


def message(subject: str, to: str = "Ada <ada@example.com>", html: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Analytics Mesh <noreply@mesh.local>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(f"text of {subject}")
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


# --- receiving and listing --------------------------------------------------------------------


def test_plain_message_is_listed_in_mailpit_shape(catcher: Catcher) -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    catcher.send(message("plain one"))
    listing = catcher.messages()
    assert {k: listing[k] for k in ("total", "unread", "count", "messages_count", "start", "tags")} == {
        "total": 1, "unread": 1, "count": 1, "messages_count": 1, "start": 0, "tags": [],
    }  # fmt: skip
    (summary,) = listing["messages"]
    assert SUMMARY_FIELDS <= summary.keys()
    assert summary["From"] == {"Name": "Analytics Mesh", "Address": "noreply@mesh.local"}
    assert summary["To"] == [{"Name": "Ada", "Address": "ada@example.com"}]
    assert summary["Cc"] == summary["Bcc"] == summary["ReplyTo"] == summary["Tags"] == []
    assert summary["Subject"] == "plain one"
    assert summary["Read"] is False and summary["Attachments"] == 0
    assert summary["Snippet"] == "text of plain one"
    assert summary["MessageID"]
    assert summary["Created"].endswith("Z")
    assert before <= dt.datetime.fromisoformat(summary["Created"]) <= dt.datetime.now(dt.UTC)
    raw = catcher.http.get(f"/api/v1/message/{summary['ID']}/raw")
    assert summary["Size"] == len(raw.content)


def test_listing_is_newest_first_and_pages(catcher: Catcher) -> None:
    for n in range(3):
        catcher.send(message(f"m{n}"))
    assert [m["Subject"] for m in catcher.messages()["messages"]] == ["m2", "m1", "m0"]
    page = catcher.messages("?start=1&limit=1")
    assert (page["start"], page["count"], page["total"], page["messages_count"]) == (1, 1, 3, 3)
    assert [m["Subject"] for m in page["messages"]] == ["m1"]
    assert catcher.messages("?limit=0")["count"] == 3  # mailpit: limit 0 is no limit
    assert catcher.messages("?start=10")["messages"] == []


def test_multipart_utf8_message_is_decoded(catcher: Catcher) -> None:
    subject = "Résultat : 3 anomalies détectées ✓"
    catcher.send(message(subject, html="<p>Voilà <b>l’analyse</b></p>"))
    summary = catcher.messages()["messages"][0]
    assert summary["Subject"] == subject
    detail = catcher.http.get(f"/api/v1/message/{summary['ID']}")
    assert detail.status_code == 200
    body = detail.json()
    assert DETAIL_FIELDS <= body.keys()
    assert body["Subject"] == subject
    assert body["Text"].strip() == f"text of {subject}"
    assert "<b>l’analyse</b>" in body["HTML"]
    assert body["Attachments"] == [] and body["Inline"] == []
    # Opening a message marks it read, as in mailpit.
    listing = catcher.messages()
    assert listing["unread"] == 0 and listing["messages"][0]["Read"] is True


def test_encoded_headers_and_quoted_printable_body(catcher: Catcher) -> None:
    raw = (
        b"From: =?UTF-8?Q?Jos=C3=A9_Mart=C3=ADnez?= <jose@example.com>\r\n"
        b"To: =?UTF-8?B?w4lsb2RpZQ==?= <elodie@example.com>\r\n"
        b"Subject: =?UTF-8?B?UmFwcG9ydCBkZSBzeW50aMOoc2U=?=\r\n"
        b"Date: Tue, 03 Mar 2026 10:15:00 +0100\r\n"
        b"Message-ID: <rapport-1@mesh.local>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"\r\n"
        b"Bonjour =C3=89lodie, la s=C3=A9rie est pr=C3=AAte.\r\n"
    )
    catcher.send_raw(raw, "bounces@mesh.local", ["elodie@example.com"])
    detail = catcher.http.get("/api/v1/message/latest").json()
    assert detail["Subject"] == "Rapport de synthèse"
    assert detail["From"] == {"Name": "José Martínez", "Address": "jose@example.com"}
    assert detail["To"] == [{"Name": "Élodie", "Address": "elodie@example.com"}]
    assert detail["MessageID"] == "rapport-1@mesh.local"
    assert detail["Date"] == "2026-03-03T10:15:00+01:00"
    assert detail["Text"].strip() == "Bonjour Élodie, la série est prête."
    assert detail["HTML"] == ""
    assert detail["ReturnPath"] == "bounces@mesh.local"
    # The raw source comes back byte for byte.
    source = catcher.http.get(f"/api/v1/message/{detail['ID']}/raw")
    assert source.status_code == 200
    assert source.headers["content-type"].startswith("text/plain")
    assert source.content == raw


def test_multiple_recipients_and_envelope_only_bcc(catcher: Catcher) -> None:
    msg = message("to many", to="Ada <ada@example.com>, bob@example.com")
    msg["Cc"] = "Carol <carol@example.com>"
    catcher.send(msg, to=["ada@example.com", "bob@example.com", "carol@example.com", "dave@example.com"])
    summary = catcher.messages()["messages"][0]
    assert summary["To"] == [
        {"Name": "Ada", "Address": "ada@example.com"},
        {"Name": "", "Address": "bob@example.com"},
    ]
    assert summary["Cc"] == [{"Name": "Carol", "Address": "carol@example.com"}]
    # Like mailpit: envelope recipients no header names show up as Bcc.
    assert summary["Bcc"] == [{"Name": "", "Address": "dave@example.com"}]


def test_attachments_are_listed(catcher: Catcher) -> None:
    msg = message("with file", html="<p>see attached</p>")
    msg.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="series.csv")
    catcher.send(msg)
    summary = catcher.messages()["messages"][0]
    assert summary["Attachments"] == 1
    detail = catcher.http.get(f"/api/v1/message/{summary['ID']}").json()
    assert [(a["FileName"], a["ContentType"], a["Size"]) for a in detail["Attachments"]] == [
        ("series.csv", "text/csv", 8)
    ]
    assert detail["Text"].strip() == "text of with file"
    assert "see attached" in detail["HTML"]


# --- deleting, errors, search -----------------------------------------------------------------


def test_delete_by_ids_then_all(catcher: Catcher) -> None:
    for n in range(3):
        catcher.send(message(f"d{n}"))
    ids = [m["ID"] for m in catcher.messages()["messages"]]
    response = catcher.http.request("DELETE", "/api/v1/messages", json={"IDs": ids[:2]})
    assert response.status_code == 200 and response.text == "ok"
    assert [m["ID"] for m in catcher.messages()["messages"]] == ids[2:]
    response = catcher.http.delete("/api/v1/messages")
    assert response.status_code == 200 and response.text == "ok"
    assert catcher.messages()["total"] == 0


def test_unknown_message_is_a_json_404(catcher: Catcher) -> None:
    for path in ("/api/v1/message/nope", "/api/v1/message/nope/raw", "/api/v1/message/latest"):
        response = catcher.http.get(path)
        assert response.status_code == 404
        assert response.json()["error"]


@pytest.mark.parametrize("query", ["limit=abc", "limit=-1", "start=x", "start=-5", "limit=1.5"])
def test_bad_paging_is_a_json_400(catcher: Catcher, query: str) -> None:
    response = catcher.http.get(f"/api/v1/messages?{query}")
    assert response.status_code == 400
    assert response.json()["error"].split()[0] in ("limit", "start")


def test_bad_delete_body_is_a_400_and_deletes_nothing(catcher: Catcher) -> None:
    catcher.send(message("survivor"))
    for body in (b"{oops", b'{"IDs": "not-a-list"}', b"[1, 2]"):
        response = catcher.http.request("DELETE", "/api/v1/messages", content=body)
        assert response.status_code == 400 and response.json()["error"]
    assert catcher.messages()["total"] == 1


def test_search(catcher: Catcher) -> None:
    catcher.send(message("weekly report", to="ada@example.com"))
    catcher.send(message("anomaly alert", to="bob@example.com"))

    def subjects(query: str) -> list[str]:
        response = catcher.http.get("/api/v1/search", params={"query": query})
        assert response.status_code == 200, response.text
        return [m["Subject"] for m in response.json()["messages"]]

    assert subjects("to:bob@example.com") == ["anomaly alert"]
    assert subjects("subject:weekly") == ["weekly report"]
    assert subjects("ALERT") == ["anomaly alert"]
    assert subjects("-subject:weekly") == ["anomaly alert"]
    assert subjects("example.com") == ["anomaly alert", "weekly report"]
    assert catcher.http.get("/api/v1/search").status_code == 400


def test_health_endpoints(catcher: Catcher) -> None:
    for path in ("/livez", "/readyz"):
        assert catcher.http.get(path).status_code == 200


# --- process behaviour ------------------------------------------------------------------------


def test_messages_survive_a_restart_with_a_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "mail"
    first = start(tmp_path, "--data-dir", str(data))
    try:
        first.send(message("kept"))
        first.send(message("read before the restart"))
        read_id = first.messages()["messages"][0]["ID"]
        assert first.http.get(f"/api/v1/message/{read_id}").status_code == 200
    finally:
        assert first.stop() == 0
    assert not first.ready_file.exists()  # removed on a clean stop
    assert len(list(data.glob("*.eml"))) == 2

    # Leftovers of an interrupted write, and a file that is not ours.
    (data / "0123abcd.eml").write_bytes(b"Subject: never acknowledged\r\n\r\n")
    (data / ".0123abcd.json.tmp").write_text("{")
    (data / "notes.json").write_text("not json")

    second = start(tmp_path, "--data-dir", str(data))
    try:
        listing = second.messages()
        assert [(m["Subject"], m["Read"]) for m in listing["messages"]] == [
            ("read before the restart", True),
            ("kept", False),
        ]
        assert not (data / "0123abcd.eml").exists() and not (data / ".0123abcd.json.tmp").exists()
        assert (data / "notes.json").exists()  # left for a person to look at
        kept_id = listing["messages"][1]["ID"]
        assert second.http.get(f"/api/v1/message/{kept_id}").json()["Text"].strip() == "text of kept"
        assert second.http.request("DELETE", "/api/v1/messages", json={"IDs": [read_id]}).status_code == 200
    finally:
        assert second.stop(signal.SIGINT) == 0

    third = start(tmp_path, "--data-dir", str(data))
    try:
        assert [m["ID"] for m in third.messages()["messages"]] == [kept_id]
    finally:
        assert third.stop() == 0


def test_message_count_and_size_are_capped(tmp_path: Path) -> None:
    capped = start(tmp_path, "--max-messages", "2", "--max-size", "4096")
    try:
        for n in range(3):
            capped.send(message(f"c{n}"))
        assert [m["Subject"] for m in capped.messages()["messages"]] == ["c2", "c1"]
        big = message("too big")
        big.set_content("x" * 10_000)
        with pytest.raises(smtplib.SMTPException) as refused:
            capped.send(big)
        assert getattr(refused.value, "smtp_code", None) == 552
        assert capped.messages()["total"] == 2
    finally:
        assert capped.stop() == 0


@pytest.mark.parametrize("which", ["--smtp-port", "--http-port"])
def test_a_taken_port_fails_in_one_line(which: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        other = "--http-port" if which == "--smtp-port" else "--smtp-port"
        result = run_catcher(which, str(port), other, "0")
    assert_one_line_error(result, str(port), which)


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        ((), {"MAIL_CATCHER_SMTP_PORT": "abc"}, "MAIL_CATCHER_SMTP_PORT"),
        ((), {"MAIL_CATCHER_HTTP_PORT": "70000"}, "MAIL_CATCHER_HTTP_PORT"),
        (("--smtp-port", "x"), {}, "--smtp-port"),
        (("--http-port", "65536"), {}, "--http-port"),
        (("--max-messages", "0"), {}, "--max-messages"),
        (("--no-such-flag",), {}, "--no-such-flag"),
    ],
)
def test_a_bad_setting_fails_in_one_line(args: tuple[str, ...], env: dict[str, str], named: str) -> None:
    assert_one_line_error(run_catcher(*args, **env), named)


def test_a_flag_wins_over_its_environment_variable(tmp_path: Path) -> None:
    catcher = start(tmp_path, env={"MAIL_CATCHER_SMTP_PORT": "abc", "MAIL_CATCHER_HTTP_PORT": "abc"})
    try:
        catcher.send(message("flags first"))
        assert catcher.messages()["total"] == 1
    finally:
        assert catcher.stop() == 0


# --- duplicate Message-IDs (mailpit's --ignore-duplicate-ids) -----------------------------------


def with_id(subject: str, message_id: str | None) -> EmailMessage:
    msg = message(subject)
    if message_id is not None:
        msg["Message-ID"] = message_id
    return msg


def data_reply(catcher: Catcher, msg: EmailMessage) -> tuple[int, bytes]:
    """The server's answer to the end of DATA for ``msg``."""
    with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("noreply@mesh.local")
        smtp.rcpt("ada@example.com")
        return smtp.data(msg.as_bytes())


def runtime_stats(catcher: Catcher) -> dict:
    response = catcher.http.get("/api/v1/info")
    assert response.status_code == 200, response.text
    return response.json()["RuntimeStats"]


def test_with_the_option_a_second_message_with_a_kept_message_id_is_answered_250_and_dropped(
    tmp_path: Path,
) -> None:
    catcher = start(tmp_path, "--ignore-duplicate-ids")
    try:
        assert catcher.http.get("/api/v1/webui").json()["DuplicatesIgnored"] is True
        assert data_reply(catcher, with_id("first copy", "<report-1@mesh.local>"))[0] == 250
        code, _ = data_reply(catcher, with_id("second copy", "<report-1@mesh.local>"))
        assert code == 250  # as mailpit: the sender is told it went, so it does not retry
        catcher.send(with_id("another report", "<report-2@mesh.local>"))
        catcher.send(with_id("no id", None))
        catcher.send(with_id("no id either", None))  # without a Message-ID nothing is a duplicate
        listing = catcher.messages()
        assert [m["Subject"] for m in listing["messages"]] == ["no id either", "no id", "another report", "first copy"]
        assert [m["MessageID"] for m in listing["messages"]][2:] == ["report-2@mesh.local", "report-1@mesh.local"]
        stats = runtime_stats(catcher)
        assert (stats["SMTPAccepted"], stats["SMTPIgnored"], stats["SMTPRejected"]) == (4, 1, 0)
        info = catcher.http.get("/api/v1/info").json()
        assert (info["Messages"], info["Unread"]) == (4, 4)

        # Once the kept copy is deleted, the Message-ID is free again (mailpit checks what it holds).
        first_id = listing["messages"][3]["ID"]
        assert catcher.http.request("DELETE", "/api/v1/messages", json={"IDs": [first_id]}).status_code == 200
        catcher.send(with_id("sent again after the delete", "<report-1@mesh.local>"))
        assert catcher.messages()["messages"][0]["Subject"] == "sent again after the delete"
        stats = runtime_stats(catcher)
        assert (stats["SMTPAccepted"], stats["SMTPIgnored"], stats["MessagesDeleted"]) == (5, 1, 1)
    finally:
        assert catcher.stop() == 0


def test_without_the_option_every_copy_is_kept(catcher: Catcher) -> None:
    before = runtime_stats(catcher)
    for subject in ("copy 1", "copy 2"):
        catcher.send(with_id(subject, "<same@mesh.local>"))
    assert [m["Subject"] for m in catcher.messages()["messages"]] == ["copy 2", "copy 1"]
    after = runtime_stats(catcher)
    assert after["SMTPAccepted"] - before["SMTPAccepted"] == 2
    assert after["SMTPIgnored"] == 0
    assert catcher.http.get("/api/v1/webui").json()["DuplicatesIgnored"] is False


def test_info_has_mailpits_shape(catcher: Catcher) -> None:
    catcher.send(message("counted"))
    info = catcher.http.get("/api/v1/info").json()
    assert {"Version", "Database", "DatabaseSize", "Messages", "Unread", "Tags", "RuntimeStats"} <= info.keys()
    assert set(info["RuntimeStats"]) == {
        "Uptime", "Memory", "MessagesDeleted", "SMTPAccepted", "SMTPAcceptedSize", "SMTPRejected", "SMTPIgnored",
    }  # fmt: skip
    assert info["Messages"] == 1 and info["DatabaseSize"] == catcher.messages()["messages"][0]["Size"]
    assert info["RuntimeStats"]["SMTPAcceptedSize"] >= info["DatabaseSize"]


@pytest.mark.parametrize(("value", "ignored"), [("true", True), ("1", True), ("YES", True), ("false", False)])
def test_mailpits_environment_variable_sets_the_option(tmp_path: Path, value: str, ignored: bool) -> None:
    catcher = start(tmp_path, env={"MP_IGNORE_DUPLICATE_IDS": value})
    try:
        for subject in ("copy 1", "copy 2"):
            catcher.send(with_id(subject, "<env@mesh.local>"))
        assert catcher.messages()["total"] == (1 if ignored else 2)
        assert runtime_stats(catcher)["SMTPIgnored"] == (1 if ignored else 0)
    finally:
        assert catcher.stop() == 0


def test_a_bad_value_of_mailpits_variable_fails_in_one_line() -> None:
    assert_one_line_error(run_catcher(MP_IGNORE_DUPLICATE_IDS="sometimes"), "MP_IGNORE_DUPLICATE_IDS", "sometimes")


def test_kept_message_ids_survive_a_restart_with_a_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "mail"
    first = start(tmp_path, "--data-dir", str(data), "--ignore-duplicate-ids")
    try:
        first.send(with_id("before the restart", "<kept@mesh.local>"))
    finally:
        assert first.stop() == 0
    second = start(tmp_path, "--data-dir", str(data), "--ignore-duplicate-ids")
    try:
        second.send(with_id("after the restart", "<kept@mesh.local>"))
        assert [m["Subject"] for m in second.messages()["messages"]] == ["before the restart"]
        assert runtime_stats(second)["SMTPIgnored"] == 1
    finally:
        assert second.stop() == 0


def test_message_id_is_read_from_the_header_section_only() -> None:
    from mail_catcher.mime import header_message_id

    assert header_message_id(b"From: a@b\r\nMessage-ID: <x@y>\r\n\r\nMessage-ID: <body@y>\r\n") == "x@y"
    assert header_message_id(b"From: a@b\r\nmessage-id:\r\n <folded@y>\r\nSubject: s\r\n\r\nbody") == "folded@y"
    assert header_message_id(b"From: a@b\r\nX-Message-ID: <other@y>\r\n\r\nMessage-ID: <body@y>\r\n") == ""
