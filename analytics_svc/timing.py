"""When schedules fire: interval and cron triggers, pure functions of time."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from cronsim import CronSim, CronSimError

from mesh_runtime.errors import FieldViolation, InvalidArgument


@dataclass(frozen=True)
class Trigger:
    """Exactly one of ``interval_seconds`` and ``cron`` is set."""

    interval_seconds: int | None = None
    cron: str | None = None
    time_zone: str = ""

    def zone(self) -> dt.tzinfo:
        """The time zone cron fields are read in (UTC when empty)."""
        return zoneinfo.ZoneInfo(self.time_zone) if self.time_zone else dt.UTC


def _invalid(field: str, description: str) -> InvalidArgument:
    return InvalidArgument(f"{field}: {description}", violations=[FieldViolation(field, description)])


def validate(trigger: Trigger, field_prefix: str = "schedule") -> Trigger:
    """The trigger, or InvalidArgument naming the bad field."""
    if (trigger.interval_seconds is None) == (trigger.cron is None):
        raise _invalid(f"{field_prefix}.trigger", "set exactly one of interval_seconds and cron")
    if trigger.time_zone:
        try:
            zoneinfo.ZoneInfo(trigger.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise _invalid(
                f"{field_prefix}.time_zone",
                f"unknown time zone {trigger.time_zone!r}; use an IANA name like Europe/Paris",
            ) from None
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
