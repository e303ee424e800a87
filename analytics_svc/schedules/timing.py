"""When schedules fire: interval and cron triggers, pure functions of time."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from dataclasses import dataclass

from cronsim import CronSim, CronSimError

from mesh_runtime.errors import InvalidArgument

# The longest interval: a year. The shortest is a setting (see config.py).
MAX_INTERVAL_SECONDS = 365 * 24 * 3600


@functools.cache
def _zone_names() -> frozenset[str]:
    # The tz database's zones, not every path under it: "Europe" or
    # "America/Argentina" are folders, and ZoneInfo raises IsADirectoryError.
    return frozenset(zoneinfo.available_timezones())


@dataclass(frozen=True)
class Trigger:
    """Exactly one of ``interval_seconds`` and ``cron`` is set."""

    interval_seconds: int | None = None
    cron: str | None = None
    time_zone: str = ""

    def zone(self) -> dt.tzinfo:
        """The time zone cron fields are read in (UTC when empty)."""
        return zoneinfo.ZoneInfo(self.time_zone) if self.time_zone else dt.UTC


_invalid = InvalidArgument.for_field


def validate(trigger: Trigger, field_prefix: str = "schedule", min_interval_seconds: int = 1) -> Trigger:
    """The trigger, or InvalidArgument naming the bad field.

    The same rules for a new schedule, an updated one (the whole schedule as it
    would be stored) and one about to fire.
    """
    if (trigger.interval_seconds is None) == (trigger.cron is None):
        raise _invalid(f"{field_prefix}.trigger", "set exactly one of interval_seconds and cron")
    if trigger.interval_seconds is not None and not (
        min_interval_seconds <= trigger.interval_seconds <= MAX_INTERVAL_SECONDS
    ):
        raise _invalid(
            f"{field_prefix}.interval_seconds",
            f"must be between {min_interval_seconds} and {MAX_INTERVAL_SECONDS} seconds",
        )
    if trigger.time_zone and trigger.time_zone not in _zone_names():
        raise _invalid(
            f"{field_prefix}.time_zone",
            f"unknown time zone {trigger.time_zone!r}; use an IANA zone name like Europe/Paris",
        )
    if trigger.cron is not None:
        if len(trigger.cron.split()) != 5:
            raise _invalid(f"{field_prefix}.cron", "needs five fields: minute hour day-of-month month day-of-week")
        try:
            next(CronSim(trigger.cron, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
        except (CronSimError, StopIteration) as exc:
            raise _invalid(f"{field_prefix}.cron", f"not a valid cron expression: {exc}") from None
    return trigger


def first_run(trigger: Trigger, now: dt.datetime) -> dt.datetime:
    """When a schedule created or enabled at ``now`` fires first."""
    if trigger.interval_seconds is not None:
        return now + dt.timedelta(seconds=trigger.interval_seconds)
    return _next_cron(trigger, now)


def next_run(trigger: Trigger, fired: dt.datetime, now: dt.datetime) -> dt.datetime:
    """The due time after the tick ``fired``, later than ``now``.

    Ticks missed while nothing ran (scheduler down) are not replayed one by
    one: the schedule fires once for the latest missed tick, then continues on
    its grid.
    """
    if trigger.interval_seconds is not None:
        step = dt.timedelta(seconds=trigger.interval_seconds)
        nxt = fired + step
        if nxt <= now:
            missed = (now - nxt) // step + 1
            nxt += missed * step
        return nxt
    return _next_cron(trigger, max(fired, now))


def _next_cron(trigger: Trigger, after: dt.datetime) -> dt.datetime:
    assert trigger.cron is not None
    local = after.astimezone(trigger.zone())
    return next(CronSim(trigger.cron, local)).astimezone(dt.UTC)
