"""Which backups to keep: restic's `forget` policy, and which leftovers are orphans (pure).

Guarantees (restic semantics, with calendar buckets taken in UTC):
- Backups are considered newest first. `keep_last` keeps the N newest; `keep_daily` keeps the
  newest backup of each of the N most recent days that have one; likewise weekly (ISO weeks),
  monthly and yearly. While a rule still has count left, the oldest backup is kept too, which
  stretches the history as far back as the counts allow. A backup kept by any rule stays.
- `keep_within` keeps every backup within that duration of the newest backup (not of "now",
  so a cluster that stopped backing up does not lose its history as time passes).
- An empty policy keeps everything: retention never deletes all backups by omission.
- `orphaned_ids` names backups that have objects but no manifest and may be deleted: runs the
  caller knows ended without a commit, and unknown ids that are both older than the newest
  committed backup and older than a grace period (see `OrphanRule`). A run known to be in
  progress is never named, and neither is an unknown run that may still be writing (another
  cluster sharing the prefix, a restored clone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from backup.errors import ConfigError
from backup.layout import backup_time

DEFAULT_ORPHAN_GRACE = timedelta(hours=48)


@dataclass(frozen=True)
class RetentionPolicy:
    keep_last: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: timedelta | None = None

    def __post_init__(self) -> None:
        for name in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be 0 or more")
        if self.keep_within is not None and self.keep_within < timedelta(0):
            raise ConfigError("--keep-within must not be negative")

    @property
    def is_empty(self) -> bool:
        counts = (self.keep_last, self.keep_daily, self.keep_weekly)
        return not any(counts + (self.keep_monthly, self.keep_yearly)) and not self.keep_within


@dataclass(frozen=True)
class BackupStamp:
    id: str
    created: datetime


@dataclass(frozen=True)
class Kept:
    id: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class RetentionDecision:
    keep: tuple[Kept, ...]
    remove: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        kept = ", ".join(f"{k.id} ({'/'.join(k.reasons)})" for k in self.keep) or "none"
        removed = ", ".join(self.remove) or "none"
        return f"keep: {kept}; remove: {removed}"


def _bucketers() -> dict[str, Callable[[datetime, int], object]]:
    return {
        "last": lambda _t, nr: nr,
        "daily": lambda t, _nr: (t.year, t.month, t.day),
        "weekly": lambda t, _nr: t.isocalendar()[:2],
        "monthly": lambda t, _nr: (t.year, t.month),
        "yearly": lambda t, _nr: t.year,
    }


def apply_policy(backups: Sequence[BackupStamp], policy: RetentionPolicy) -> RetentionDecision:
    """Decide which backups to keep and which to remove (restic's ApplyPolicy)."""
    ordered = sorted(backups, key=lambda b: (b.created, b.id), reverse=True)
    if policy.is_empty:
        keep_all = tuple(Kept(b.id, ("no policy",)) for b in ordered)
        return RetentionDecision(keep_all, (), ("empty policy: nothing is removed",))
    counts = {
        "last": policy.keep_last,
        "daily": policy.keep_daily,
        "weekly": policy.keep_weekly,
        "monthly": policy.keep_monthly,
        "yearly": policy.keep_yearly,
    }
    last_value: dict[str, object] = {}
    bucketers = _bucketers()
    newest = ordered[0].created if ordered else None
    keep: list[Kept] = []
    remove: list[str] = []
    for nr, backup in enumerate(ordered):
        when = backup.created.astimezone(UTC)
        reasons: list[str] = []
        within = policy.keep_within
        if within is not None and newest is not None and backup.created >= newest - within:
            reasons.append("within")
        for rule, bucketer in bucketers.items():
            if counts[rule] <= 0:
                continue
            value = bucketer(when, nr)
            if rule not in last_value or value != last_value[rule] or nr == len(ordered) - 1:
                last_value[rule] = value
                counts[rule] -= 1
                reasons.append(rule)
        if reasons:
            keep.append(Kept(backup.id, tuple(reasons)))
        else:
            remove.append(backup.id)
    return RetentionDecision(tuple(keep), tuple(remove))


@dataclass(frozen=True)
class OrphanRule:
    """What the caller knows about backup ids that have objects but no manifest.

    `ended`: runs known to have ended without a commit (failed): their objects go at once.
    `running`: runs known to be in progress: never touched.
    Any other id is deleted only if it sorts before the newest committed id and started (the
    time in the id) more than `grace` before `now`.
    """

    now: datetime
    ended: frozenset[str] = frozenset()
    running: frozenset[str] = frozenset()
    grace: timedelta = DEFAULT_ORPHAN_GRACE


def orphaned_ids(
    present_ids: Iterable[str], committed_ids: Iterable[str], rule: OrphanRule
) -> list[str]:
    """Ids whose objects may be deleted as orphans under `rule` (sorted)."""
    committed = set(committed_ids)
    newest = max(committed) if committed else None
    found = []
    for backup_id in set(present_ids) - committed:
        if backup_id in rule.running:
            continue
        if backup_id in rule.ended or (
            newest is not None
            and backup_id < newest
            and backup_time(backup_id) < rule.now - rule.grace
        ):
            found.append(backup_id)
    return sorted(found)
