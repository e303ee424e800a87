"""Start-up failures end with one actionable line and a non-zero status,
leaving nothing running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack.paths import ROOT
from mesh_runtime.auth_keys import KeyFolder


def run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def auth_env(tmp_path: Path) -> dict[str, str]:
    keys = KeyFolder(tmp_path / "auth")
    keys.ensure()
    return {"AUTH_JWKS_FILE": str(keys.jwks), "AUTH_SIGNING_KEY_FILE": str(keys.signing_key)}


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def assert_one_clean_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in stderr
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("module", ["analytics_svc", "llm_svc", "notify_svc"])
def test_bad_setting_stops_the_service_naming_the_variable(module: str) -> None:
    result = run(["-m", module], {"MESH_LOG_LEVEL": "chatty"})
    assert result.returncode == 2
    line = assert_one_clean_line(result.stderr)
    assert "MESH_LOG_LEVEL" in line and "chatty" in line


def test_unreachable_database_is_one_actionable_line(auth_env: dict[str, str]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        free = closed.getsockname()[1]
    result = run(
        ["-m", "analytics_svc"],
        {
            "ANALYTICS_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free}/analytics",
            "ANALYTICS_GRPC_PORT": "0",
            **auth_env,
        },
    )
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert "ANALYTICS_DATABASE_URL" in line and "PostgreSQL" in line


def test_taken_grpc_port_is_refused(taken_port: int, auth_env: dict[str, str]) -> None:
    result = run(["-m", "llm_svc"], {"LLM_GRPC_PORT": str(taken_port), **auth_env})
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert str(taken_port) in line


@pytest.mark.parametrize("module", ["analytics_svc", "llm_svc", "notify_svc"])
def test_missing_key_set_is_refused_naming_the_variable(module: str, tmp_path: Path) -> None:
    result = run(["-m", module], {"AUTH_JWKS_FILE": "", "AUTH_SIGNING_KEY_FILE": ""})
    assert result.returncode == 2
    assert "AUTH_JWKS_FILE" in assert_one_clean_line(result.stderr)
    result = run(["-m", module], {"AUTH_JWKS_FILE": str(tmp_path / "missing.json")})
    assert result.returncode == 2
    assert "AUTH_JWKS_FILE" in assert_one_clean_line(result.stderr)


def test_mesh_up_refuses_a_taken_port_before_starting_anything(taken_port: int, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run(
        ["-m", "mesh_cli", "up", "--no-web"],
        {"MESH_NATS_PORT": str(taken_port), "MESH_STATE_DIR": str(tmp_path)},
    )
    assert result.returncode == 1
    line = assert_one_clean_line(result.stderr)
    assert str(taken_port) in line and "MESH_NATS_PORT" in line
    assert not (tmp_path / "postgres").exists(), "nothing may start when a port is taken"


def test_mesh_up_rejects_a_bad_port_value(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run(["-m", "mesh_cli", "up"], {"WEB_PORT": "eighty", "MESH_STATE_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "WEB_PORT" in assert_one_clean_line(result.stderr)


def test_mesh_up_reads_the_env_file_and_the_environment_wins(taken_port: int, tmp_path: Path) -> None:
    env_file = tmp_path / "mesh.env"
    env_file.write_text("# settings for ./mesh up\nWEB_PORT=eighty\nMESH_WEB=true\n")
    base = {"MESH_ENV_FILE": str(env_file), "MESH_STATE_DIR": str(tmp_path), "MESH_NATS_PORT": str(taken_port)}
    result = run(["-m", "mesh_cli", "up"], base)
    assert result.returncode == 2, result.stderr
    assert "WEB_PORT" in (line := assert_one_clean_line(result.stderr)) and "'eighty'" in line
    result = run(["-m", "mesh_cli", "up"], {**base, "WEB_PORT": "seventy"})
    assert result.returncode == 2, result.stderr
    assert "'seventy'" in assert_one_clean_line(result.stderr)


def test_a_missing_env_file_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.env")
    result = run(["-m", "mesh_cli", "up"], {"MESH_ENV_FILE": missing, "MESH_STATE_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "nope.env" in assert_one_clean_line(result.stderr)
