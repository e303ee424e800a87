"""The one way tests wait: poll a condition until it holds, or fail saying
what did not happen. Never a fixed sleep, never a hand-written deadline loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

Description = str | Callable[[], str]


def _timed_out(timeout: float, what: Description, last: object) -> AssertionError:
    described = what() if callable(what) else what
    return AssertionError(f"timed out after {timeout:g} s waiting for {described} (last: {last!r})")


def eventually(
    condition: Callable[[], T],
    timeout: float,
    what: Description = "the condition",
    *,
    interval: float = 0.1,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``condition`` until it returns something truthy and return that.

    Exceptions of the ``retry_on`` types count as "not yet". After ``timeout``
    seconds, AssertionError naming ``what`` (a string, or a function giving
    one, e.g. a log's tail) and the last value or exception seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value: object = condition()
        except retry_on as exc:
            value = exc
        else:
            if value:
                return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what, value)
        time.sleep(interval)


async def eventually_async(
    condition: Callable[[], Awaitable[T]],
    timeout: float,
    what: Description = "the condition",
    *,
    interval: float = 0.1,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """``eventually`` for an async condition, without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value: object = await condition()
        except retry_on as exc:
            value = exc
        else:
            if value:
                return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what, value)
        await asyncio.sleep(interval)
