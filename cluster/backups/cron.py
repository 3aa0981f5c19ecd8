"""Backup schedules: cron expressions as APScheduler triggers, and the catch-up rule (pure).

A schedule is a standard 5-field crontab line (`minute hour day month weekday`, in UTC) or, to
make short intervals possible in tests and demos, 6 fields with seconds first.

The schedule's mark in ZooKeeper is `handled_through`: every fire time up to it has been dealt
with (run, skipped because paused, or coalesced into a run in progress). `due` says whether a
fire time lies after the mark and not after now; at most one run is started for any number of
missed fire times (catch-up once, coalesced).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from cluster.backups.errors import BackupConfigError


def parse_schedule(expression: str) -> CronTrigger:
    """A UTC cron trigger; BackupConfigError with one line for a malformed expression."""
    fields = expression.split()
    try:
        if len(fields) == 5:
            return CronTrigger.from_crontab(expression, timezone=UTC)
        if len(fields) == 6:
            second, minute, hour, day, month, weekday = fields
            return CronTrigger(
                second=second,
                minute=minute,
                hour=hour,
                day=day,
                month=month,
                day_of_week=weekday,
                timezone=UTC,
            )
    except ValueError as exc:
        raise BackupConfigError(f"schedule {expression!r}: {exc}") from exc
    raise BackupConfigError(
        f"schedule {expression!r}: give 5 cron fields (minute hour day month weekday, UTC), "
        "e.g. '0 2 * * *'"
    )


def next_fire_after(trigger: CronTrigger, moment: datetime) -> datetime | None:
    """The first fire time strictly after `moment`."""
    fire: datetime | None = trigger.get_next_fire_time(None, moment + timedelta(microseconds=1))
    return fire


@dataclass(frozen=True)
class CatchUp:
    run: bool
    reason: str


def due(trigger: CronTrigger, handled_through: datetime | None, now: datetime) -> CatchUp:
    """Whether a fire time in (handled_through, now] is still unhandled (one run covers all)."""
    if handled_through is None:
        return CatchUp(False, "no schedule mark yet: starting from now, nothing to catch up")
    first = next_fire_after(trigger, handled_through)
    if first is None or first > now:
        return CatchUp(False, f"nothing missed since {handled_through:%Y-%m-%dT%H:%M:%SZ}")
    return CatchUp(True, f"fire time {first:%Y-%m-%dT%H:%M:%SZ} not handled yet: one run")


def to_utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
