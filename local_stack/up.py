"""What ``./mesh up`` does once its settings are read: start the stack,
print where everything runs, supervise it until Ctrl-C, stop it."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable

from local_stack.stack import Stack, StackSettings

# Given the running stack's settings and whether a person is at the terminal,
# return the table's "sign in" line (it may ask for a first admin).
SignInHint = Callable[[StackSettings, bool], str]


async def run_until_stopped(stack: Stack, sign_in_hint: SignInHint) -> int:
    """Start ``stack``, print its table and supervise it until SIGINT/SIGTERM;
    returns the exit status for ``./mesh up``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    start = asyncio.ensure_future(stack.start())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({start, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if not start.done():
        start.cancel()
        await asyncio.gather(start, return_exceptions=True)
        await stack.stop()
        print("mesh up: stopped before start-up finished", file=sys.stderr)
        return 130
    if start.exception() is not None:
        print(f"mesh up: {start.exception()}", file=sys.stderr)
        return 1
    try:
        sign_in = await asyncio.to_thread(sign_in_hint, stack.settings, sys.stdin.isatty())
    except Exception as exc:  # noqa: BLE001 - the stack runs anyway; say why sign-in help is missing
        sign_in = f"could not check for an admin: {exc}"
    print_table(stack, sign_in)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except TimeoutError:
            await stack.restart_crashed()
    print("\nmesh: stopping...", flush=True)
    await stack.stop()
    print("mesh: everything stopped.", flush=True)
    return 0


def print_table(stack: Stack, sign_in: str) -> None:
    """Print what runs where, the sign-in line, and commands to try."""
    rows = [*stack.endpoints(), ("sign in", sign_in)]
    width = max(len(name) for name, _ in rows)
    s = stack.settings
    lines = ["", "Analytics Mesh is running. A process that crashes is restarted; Ctrl-C stops everything.", ""]
    lines += [f"  {name:<{width}}  {where}" for name, where in rows]
    lines += [
        "",
        "Try:",
        f"  grpcurl -plaintext 127.0.0.1:{s.analytics_port} list",
        "  TOKEN=$(./mesh token USER)",
        f"  curl -s -H \"authorization: Bearer $TOKEN\" http://127.0.0.1:{s.envoy_port}/v1/datasets",
        f"  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" 127.0.0.1:{s.analytics_port} "
        "mesh.analytics.v1.AnalyticsService/ListDatasets",
        "",
    ]
    print("\n".join(lines), flush=True)
