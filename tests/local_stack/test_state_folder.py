"""The local stack's state folder is its user's alone: logs, captured mail,
keys, credentials and data carry no group or other permissions."""

from __future__ import annotations

import os
import smtplib
import stat
import uuid
from email.message import EmailMessage
from pathlib import Path

from local_stack.stack import keep_private
from tests.conftest import RunningStack
from tests.eventually import eventually


def loose_permissions(folder: Path) -> list[str]:
    """Files with any group/other bit, folders others could read or write
    (as root, others may only pass through folders on the way to PostgreSQL's
    data, which runs as its own system user)."""
    found = []
    for path in [folder, *folder.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        bits = stat.S_IMODE(mode) & 0o077
        if stat.S_ISDIR(mode) and os.geteuid() == 0:
            bits &= ~0o001
        if bits:
            found.append(f"{path.relative_to(folder)} {stat.filemode(mode)}")
    return found


def test_logs_mail_and_keys_of_the_stack_are_private(mesh: RunningStack) -> None:
    state = mesh.settings.state_dir
    message = EmailMessage()
    message["From"], message["To"] = "probe@example.com", f"{uuid.uuid4().hex[:8]}@example.com"
    message["Subject"], message["Message-ID"] = "state folder check", f"<{uuid.uuid4().hex}@example.com>"
    message.set_content("kept in the state folder")
    with smtplib.SMTP("127.0.0.1", mesh.settings.smtp_port, timeout=10) as smtp:
        smtp.send_message(message)
    eml = eventually(lambda: list((state / "mail").rglob("*.eml")), 10, "the captured e-mail on disk")
    logs = list((state / "logs").glob("*.log"))
    keys = list((state / "auth").iterdir())
    assert eml and len(logs) >= 8 and keys  # what the check below covers
    assert loose_permissions(state) == []


def test_keep_private_tightens_an_older_state_folder(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir(mode=0o755)
    (tmp_path / "logs" / "analytics.log").write_text("x")
    (tmp_path / "logs" / "analytics.log").chmod(0o644)
    (tmp_path / "mail").mkdir(mode=0o777)
    (tmp_path / "mail").chmod(0o777)
    assert {line.split()[0] for line in loose_permissions(tmp_path)} == {"logs", "logs/analytics.log", "mail"}
    keep_private(tmp_path)
    assert loose_permissions(tmp_path) == []
    assert stat.S_IMODE((tmp_path / "logs" / "analytics.log").stat().st_mode) == 0o600
