"""The tests' one waiter: returns what the condition found, fails naming what never happened."""

from __future__ import annotations

import itertools

import pytest

from tests.eventually import eventually, eventually_async


def test_returns_the_first_truthy_value() -> None:
    calls = itertools.count()
    assert eventually(lambda: next(calls) >= 3 and "ready", timeout=5, interval=0) == "ready"


def test_fails_naming_what_and_the_last_value() -> None:
    with pytest.raises(AssertionError, match=r"waiting for the mail to arrive \(last: 0\)"):
        eventually(lambda: 0, timeout=0.05, what="the mail to arrive", interval=0.01)


def test_retries_only_the_named_exceptions() -> None:
    attempts = itertools.count()

    def flaky() -> bool:
        if next(attempts) < 2:
            raise ConnectionError("not yet")
        return True

    assert eventually(flaky, timeout=5, retry_on=(ConnectionError,), interval=0)
    with pytest.raises(ZeroDivisionError):
        eventually(lambda: 1 / 0, timeout=5)


def test_a_lazy_description_is_read_when_it_fails() -> None:
    with pytest.raises(AssertionError, match="the log said: boom"):
        eventually(lambda: None, timeout=0.01, what=lambda: "the log said: boom", interval=0.01)


async def test_async_conditions_are_awaited() -> None:
    calls = itertools.count()

    async def ready() -> int:
        return next(calls)

    assert await eventually_async(ready, timeout=5, interval=0) == 1
    with pytest.raises(AssertionError, match="never"):
        await eventually_async(lambda: _none(), timeout=0.01, what="never", interval=0.01)


async def _none() -> None:
    return None
