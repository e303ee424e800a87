"""Sign-in throttling by client address and by account, shared by every replica.

Every attempt is a row in PostgreSQL, so replicas count together. A failure
costs its account and its address; past a number of free failures within
the window, each further one doubles the wait before the next attempt is
heard (1 s, 2 s, 4 s, … by default, up to a cap), answered RESOURCE_EXHAUSTED with a
RetryInfo (HTTP 429 with Retry-After) without checking the password.

An attacker should not lock the real user out, so an address from which
this account signed in recently is "known" for it: failures from known
addresses do not count against the account, and a known address is neither
delayed by the account's count nor by the address's own. Guessing from new
addresses slows down the account for new addresses only.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

import peewee

from analytics_svc.auth.store import LoginAttemptRow
from mesh_runtime.errors import ResourceExhausted

# An address this long after the account's last success from it is new again.
KNOWN_ADDRESS_DAYS = 30


@dataclass(frozen=True)
class ThrottlePolicy:
    """How much guessing is free, and how long the waits grow."""

    window: dt.timedelta = dt.timedelta(minutes=15)
    account_free_failures: int = 5
    address_free_failures: int = 20
    first_delay: dt.timedelta = dt.timedelta(seconds=1)
    max_delay: dt.timedelta = dt.timedelta(minutes=5)

    def delay(self, failures: int, free: int) -> dt.timedelta:
        """The wait after ``failures`` failures of which ``free`` cost none."""
        excess = failures - free
        if excess < 0:
            return dt.timedelta(0)
        return min(self.max_delay, self.first_delay * 2 ** min(excess, 30))


class LoginThrottle:
    """Checks and records sign-in attempts (blocking; in the caller's database thread)."""

    def __init__(self, policy: ThrottlePolicy | None = None) -> None:
        self.policy = policy or ThrottlePolicy()

    def _known(self, username: str, address: str, now: dt.datetime) -> bool:
        since = now - dt.timedelta(days=KNOWN_ADDRESS_DAYS)
        return bool(
            LoginAttemptRow.select()
            .where(
                LoginAttemptRow.username == username,
                LoginAttemptRow.address == address,
                LoginAttemptRow.succeeded,
                LoginAttemptRow.attempt_time > since,
            )
            .exists()
        )

    def _failures(self, where: peewee.Expression, now: dt.datetime) -> tuple[int, dt.datetime | None]:
        query = LoginAttemptRow.select(
            peewee.fn.COUNT(LoginAttemptRow.id), peewee.fn.MAX(LoginAttemptRow.attempt_time)
        ).where(where, ~LoginAttemptRow.succeeded, LoginAttemptRow.attempt_time > now - self.policy.window)
        count, last = query.scalar(as_tuple=True)
        return int(count), last

    def check(self, username: str, address: str, now: dt.datetime) -> None:
        """Raise ResourceExhausted, with the wait, while ``username`` from ``address`` must wait."""
        if self._known(username, address, now):
            return
        policy = self.policy
        # The account's failures from addresses it is not known at.
        known = LoginAttemptRow.alias("known")
        known_at_that_address = known.select(peewee.SQL("1")).where(
            known.username == LoginAttemptRow.username,
            known.address == LoginAttemptRow.address,
            known.succeeded,
            known.attempt_time > now - dt.timedelta(days=KNOWN_ADDRESS_DAYS),
        )
        checks = (
            (LoginAttemptRow.address == address, policy.address_free_failures),
            (
                (LoginAttemptRow.username == username) & ~peewee.fn.EXISTS(known_at_that_address),
                policy.account_free_failures,
            ),
        )
        wait = dt.timedelta(0)
        for where, free in checks:
            failures, last = self._failures(where, now)
            if last is not None:
                wait = max(wait, last + policy.delay(failures, free) - now)
        if wait > dt.timedelta(0):
            seconds = wait.total_seconds()
            raise ResourceExhausted(
                f"too many failed sign-ins for this account or address; try again in {int(seconds) + 1} s",
                retry_after=seconds,
            )

    def record(self, username: str, address: str, succeeded: bool, now: dt.datetime) -> None:
        """Remember one attempt (and, now and then, forget those too old to matter)."""
        LoginAttemptRow.create(username=username, address=address, succeeded=succeeded, attempt_time=now)
        if random.random() < 0.01:  # noqa: S311 - housekeeping, not security
            horizon = now - max(self.policy.window, dt.timedelta(days=KNOWN_ADDRESS_DAYS))
            LoginAttemptRow.delete().where(LoginAttemptRow.attempt_time < horizon).execute()
