"""The local stack's trace viewer: Arize Phoenix, an OTLP receiver with a
trace UI, installed from PyPI into a virtual environment of its own.

Phoenix brings ~850 MB of dependencies (pyarrow, SQLAlchemy, a web UI) that
the mesh does not need, and pins its own OpenTelemetry versions, so it does not
go into the project's ``.venv``: the first ``./mesh up`` that wants it creates
``.state/trace-viewer/venv`` and installs the pinned ``PHOENIX`` there with
uv (the project's own; pip if it is missing), printing the installer's
progress. Measured on this machine: 258 s with pip at load average 11; uv
with a warm cache takes seconds. A changed pin reinstalls.

Phoenix takes OTLP/HTTP spans on its UI port (``/v1/traces``) and opens one
trace at ``/redirects/traces/<trace id>``, which the web app's trace link uses.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from local_stack.paths import STATE_DIR, VENV_BIN
from local_stack.processes import ProcessSpec

PHOENIX = "arize-phoenix==20.26.1"
VENV = Path(os.environ.get("MESH_TRACE_VIEWER_VENV") or STATE_DIR / "trace-viewer" / "venv")
_STAMP = VENV / "mesh-installed.txt"


class ViewerInstallError(RuntimeError):
    """The viewer could not be installed; the message says what to do."""


def installed(venv: Path = VENV) -> bool:
    """Whether ``venv`` holds the pinned Phoenix."""
    stamp = venv / _STAMP.name
    return stamp.exists() and stamp.read_text().strip() == PHOENIX and (venv / "bin" / "phoenix").exists()


def install_command(venv: Path = VENV) -> list[str]:
    """The command that installs the pinned Phoenix into ``venv``."""
    uv = str(VENV_BIN / "uv") if (VENV_BIN / "uv").exists() else shutil.which("uv")
    if uv:
        return [uv, "pip", "install", "--python", str(venv / "bin" / "python"), PHOENIX]
    return [str(venv / "bin" / "python"), "-m", "pip", "install", "--progress-bar", "off", PHOENIX]


async def ensure_installed(say: Callable[[str], None], venv: Path = VENV) -> Path:
    """Install Phoenix into ``venv`` unless it is there already, passing the
    installer's output lines to ``say``; returns the ``phoenix`` executable."""
    if installed(venv):
        return venv / "bin" / "phoenix"
    say(f"installing the trace viewer ({PHOENIX}) into {venv} (first time only; a few minutes)...")
    venv.parent.mkdir(parents=True, exist_ok=True)
    await _run([sys.executable, "-m", "venv", "--clear", str(venv)], say)
    await _run(install_command(venv), say)
    (venv / _STAMP.name).write_text(PHOENIX + "\n")
    say("trace viewer installed")
    return venv / "bin" / "phoenix"


async def _run(argv: list[str], say: Callable[[str], None]) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert process.stdout is not None
    tail: list[str] = []
    async for raw in process.stdout:
        line = raw.decode(errors="replace").rstrip()
        if line and not line.startswith("WARNING: Location"):
            say(f"  {line}")
            tail = [*tail[-19:], line]
    if await process.wait() != 0:
        raise ViewerInstallError(
            f"installing the trace viewer failed ({' '.join(argv[:3])} ...): {' / '.join(tail[-3:])}; "
            "fix it and rerun, or start without it: MESH_TRACE_VIEWER=false"
        )


def viewer_spec(phoenix: Path, state_dir: Path, port: int, grpc_port: int) -> ProcessSpec:
    """Phoenix serving its UI and OTLP/HTTP on 127.0.0.1:``port`` (OTLP/gRPC on
    ``grpc_port``), keeping its SQLite database in ``state_dir``."""
    state_dir.mkdir(parents=True, exist_ok=True)
    return ProcessSpec(
        "trace-viewer",
        [str(phoenix), "serve"],
        env={
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(port),
            "PHOENIX_GRPC_PORT": str(grpc_port),
            "PHOENIX_WORKING_DIR": str(state_dir),
            # Phoenix's own usage reporting, off like Reflex's.
            "PHOENIX_TELEMETRY_ENABLED": "false",
        },
        cwd=state_dir,
    )


def trace_url_template(port: int) -> str:
    """The viewer's address of one trace, ``{trace_id}`` standing for the id (WEB_TRACE_URL)."""
    return f"http://127.0.0.1:{port}/redirects/traces/{{trace_id}}"
