"""As root, PostgreSQL runs as a system user the stack creates: found even
when a root shell's PATH lacks /usr/sbin, and a clear message when it cannot be."""

from __future__ import annotations

import os
import pwd
import secrets
import subprocess

import pytest

from local_stack import infra


def test_admin_commands_are_found_outside_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert os.path.basename(infra.system_command("useradd")) == "useradd"


def test_a_missing_admin_command_is_named_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    with pytest.raises(RuntimeError, match=r"`no-such-admin-tool` was not found.*/usr/sbin.*create the system user"):
        infra.system_command("no-such-admin-tool")


@pytest.mark.skipif(os.geteuid() != 0, reason="PostgreSQL needs a system user only when the stack runs as root")
def test_as_root_the_system_user_is_created_with_sbin_off_path(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"mesh-t{secrets.token_hex(4)}"
    monkeypatch.setattr(infra, "POSTGRES_SYSTEM_USER", name)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    try:
        assert infra._postgres_user() == name
        assert pwd.getpwnam(name).pw_shell == "/usr/sbin/nologin"
    finally:
        subprocess.run([infra.system_command("userdel"), name], capture_output=True, check=False)
