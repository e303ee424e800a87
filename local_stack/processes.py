"""Child processes of the local stack: started, logged with a prefix, stopped.

Every child gets the parent-death signal (Linux), so even if the supervisor
itself is killed no server is left running; a normal stop sends SIGTERM (or
the process's own stop signal) and escalates to SIGKILL after a timeout.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import pwd
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

_PR_SET_PDEATHSIG = 1


def as_user(user: str | None) -> dict[str, Any]:
    """subprocess arguments that run a child as ``user`` with that user's own
    group only (keeping root's group would deny it folders closed to group root)."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

COLOURS = [36, 32, 33, 35, 34, 91, 92, 93, 94, 95, 96]


def _child_setup() -> None:
    """preexec_fn: files the child creates are its user's alone (umask 077),
    and Linux SIGTERMs it when the supervisor dies."""
    os.umask(0o077)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: stop() still cleans up
        pass


@dataclass
class ProcessSpec:
    """How to run one server of the stack."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 15.0
    user: str | None = None
    # Variables taken out of the environment the process would get (secrets it does not read).
    withhold: frozenset[str] = frozenset()


class ManagedProcess:
    """A running child whose output is copied, prefixed, to the console and a log file."""

    def __init__(self, spec: ProcessSpec, log_dir: Path, console: IO[str] | None, colour: int) -> None:
        self.spec = spec
        self.log_path = log_dir / f"{spec.name}.log"
        self.console = console
        self.colour = colour
        self.proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self.last_lines: list[str] = []
        self.started_at = 0.0  # time.monotonic() of the last start

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def _prefix(self) -> str:
        label = f"{self.spec.name:>10} |"
        if self.console is not None and self.console.isatty():
            return f"\x1b[{self.colour}m{label}\x1b[0m "
        return label + " "

    async def start(self) -> None:
        """Start the process; its output is pumped until it exits."""
        env = {
            name: value
            for name, value in {**os.environ, **self.spec.env}.items()
            if name not in self.spec.withhold
        }
        env["PYTHONUNBUFFERED"] = "1"
        self.log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Logs may hold what a process printed about its callers: its user's alone.
        os.close(os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        self.proc = await asyncio.create_subprocess_exec(
            *self.spec.argv,
            cwd=self.spec.cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=_child_setup,
            start_new_session=True,
            **as_user(self.spec.user),
        )
        self.started_at = time.monotonic()
        self._pump = asyncio.create_task(self._copy_output())

    async def _copy_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        prefix = self._prefix()
        with self.log_path.open("a", encoding="utf-8") as log:
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    break
                line = raw.decode("utf-8", "replace").rstrip("\n")
                log.write(line + "\n")
                log.flush()
                self.last_lines = [*self.last_lines[-19:], line]
                if self.console is not None:
                    self.console.write(prefix + line + "\n")
                    self.console.flush()

    def exited(self) -> bool:
        """Whether the process has ended."""
        return self.proc is not None and self.proc.returncode is not None

    async def stop(self) -> int | None:
        """Stop the process (and its process group), escalating to SIGKILL."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            _signal_group(self.proc.pid, self.spec.stop_signal)
            try:
                await asyncio.wait_for(self.proc.wait(), self.spec.stop_timeout)
            except TimeoutError:
                _signal_group(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()
        # Children the process left behind in its group go too.
        _signal_group(self.proc.pid, signal.SIGKILL)
        if self._pump is not None:
            try:
                await asyncio.wait_for(self._pump, 5)
            except TimeoutError:
                self._pump.cancel()
        return self.proc.returncode


class RestartBackoff:
    """When to restart a process that keeps exiting: after ``first`` seconds,
    doubling with every exit up to ``longest``; a process that ran for
    ``stable`` seconds before it exited starts over at ``first``."""

    def __init__(self, first: float = 1.0, longest: float = 30.0, stable: float = 60.0) -> None:
        self.first, self.longest, self.stable = first, longest, stable
        self.delay = 0.0
        self.restarts = 0

    def next_delay(self, ran_for: float) -> float:
        """The wait before the next restart of a process that ran ``ran_for`` seconds."""
        self.delay = self.first if ran_for >= self.stable or not self.delay else min(self.delay * 2, self.longest)
        self.restarts += 1
        return self.delay


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def wait_until(
    check: Callable[[], object],
    *,
    timeout: float,
    what: str,
    process: ManagedProcess | None = None,
    interval: float = 0.1,
) -> None:
    """Poll ``check`` (sync or async, truthy when ready) until it passes.

    Raises RuntimeError with the process's last output when it exits first or
    the timeout runs out.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if process is not None and process.exited():
            raise RuntimeError(
                f"{what} exited with status {process.proc.returncode if process.proc else '?'} "
                f"before it was ready; last output:\n  " + "\n  ".join(process.last_lines[-10:])
                + f"\nfull log: {process.log_path}"
            )
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
        except Exception:  # noqa: BLE001, S110 - not ready yet, whatever the reason
            pass
        if loop.time() > deadline:
            tail = ""
            if process is not None:
                tail = "; last output:\n  " + "\n  ".join(process.last_lines[-10:])
                tail += f"\nfull log: {process.log_path}"
            raise RuntimeError(f"{what} was not ready within {timeout:.0f} s{tail}")
        await asyncio.sleep(interval)

