"""The SMTP catcher as a real process: mail in over SMTP, out over mailpit's API."""

from __future__ import annotations

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

from mesh_cli.paths import ROOT


@dataclass
class Catcher:
    proc: subprocess.Popen[bytes]
    smtp_port: int
    api: str

    def send(self, message: EmailMessage) -> None:
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=10) as smtp:
            smtp.send_message(message)


def start(tmp: Path, *extra: str) -> Catcher:
    ready = tmp / f"ready-{time.monotonic_ns()}.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mail_catcher", "--smtp-port", "0", "--http-port", "0"]
        + ["--ready-file", str(ready), *extra],
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("mail catcher did not start")
        time.sleep(0.05)
    ports = json.loads(ready.read_text())
    return Catcher(proc, ports["smtp_port"], f"http://127.0.0.1:{ports['http_port']}")


def stop(catcher: Catcher) -> int:
    catcher.proc.send_signal(signal.SIGTERM)
    try:
        return catcher.proc.wait(15)
    except subprocess.TimeoutExpired:
        catcher.proc.kill()
        raise


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[Catcher]:
    running = start(tmp_path)
    yield running
    stop(running)


def message(subject: str, to: str = "Ada <ada@example.com>", html: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Analytics Mesh <noreply@mesh.local>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(f"text of {subject}")
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


def test_messages_are_listed_newest_first_with_mailpit_fields(catcher: Catcher) -> None:
    catcher.send(message("first"))
    catcher.send(message("Résultat : 3 anomalies", to="Ada <ada@example.com>, bob@example.com"))
    listing = httpx.get(f"{catcher.api}/api/v1/messages").json()
    assert listing["total"] == 2 and listing["count"] == 2 and listing["unread"] == 2
    newest, oldest = listing["messages"]
    assert newest["Subject"] == "Résultat : 3 anomalies"
    assert oldest["Subject"] == "first"
    assert newest["From"] == {"Name": "Analytics Mesh", "Address": "noreply@mesh.local"}
    assert [a["Address"] for a in newest["To"]] == ["ada@example.com", "bob@example.com"]
    assert newest["Created"].endswith("Z") and newest["Size"] > 0


def test_detail_has_text_and_html_and_raw_source(catcher: Catcher) -> None:
    catcher.send(message("both parts", html="<p>the <b>html</b> part</p>"))
    summary = httpx.get(f"{catcher.api}/api/v1/messages").json()["messages"][0]
    detail = httpx.get(f"{catcher.api}/api/v1/message/{summary['ID']}").json()
    assert detail["Text"].strip() == "text of both parts"
    assert "<b>html</b>" in detail["HTML"]
    raw = httpx.get(f"{catcher.api}/api/v1/message/{summary['ID']}/raw").text
    assert "Subject: both parts" in raw
    assert httpx.get(f"{catcher.api}/api/v1/messages").json()["unread"] == 0


def test_delete_some_then_all(catcher: Catcher) -> None:
    for n in range(3):
        catcher.send(message(f"m{n}"))
    ids = [m["ID"] for m in httpx.get(f"{catcher.api}/api/v1/messages").json()["messages"]]
    assert httpx.request("DELETE", f"{catcher.api}/api/v1/messages", json={"IDs": ids[:1]}).status_code == 200
    assert httpx.get(f"{catcher.api}/api/v1/messages").json()["total"] == 2
    assert httpx.delete(f"{catcher.api}/api/v1/messages").status_code == 200
    assert httpx.get(f"{catcher.api}/api/v1/messages").json()["total"] == 0


def test_bad_requests_are_clear_json_errors(catcher: Catcher) -> None:
    for query in ("limit=abc", "limit=-1", "start=x"):
        response = httpx.get(f"{catcher.api}/api/v1/messages?{query}")
        assert response.status_code == 400 and response.json()["error"]
    missing = httpx.get(f"{catcher.api}/api/v1/message/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    bad_body = httpx.request("DELETE", f"{catcher.api}/api/v1/messages", content=b"{oops")
    assert bad_body.status_code == 400


def test_messages_survive_a_restart_with_a_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "mail"
    first = start(tmp_path, "--data-dir", str(data))
    first.send(message("kept"))
    assert stop(first) == 0
    second = start(tmp_path, "--data-dir", str(data))
    try:
        subjects = [m["Subject"] for m in httpx.get(f"{second.api}/api/v1/messages").json()["messages"]]
        assert subjects == ["kept"]
    finally:
        stop(second)


def test_taken_port_and_bad_setting_fail_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "mail_catcher", "--smtp-port", str(port), "--http-port", "0"],
            cwd=ROOT, capture_output=True, text=True, timeout=30,
        )
    assert result.returncode == 2
    assert str(port) in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "mail_catcher"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
        env={**os.environ, "MAIL_CATCHER_SMTP_PORT": "abc"},
    )
    assert result.returncode == 2
    assert "MAIL_CATCHER_SMTP_PORT" in result.stderr and "Traceback" not in result.stderr
