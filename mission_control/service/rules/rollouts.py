"""Fleet rollouts, pure: which clusters a selector picks, how waves grow, and the next step.

A rollout offers release V to the clusters a selector picks, wave by wave. Waves are
cumulative (`1,10%,50%,100%`: the first cluster, then the first 10% of the selection, ...),
a count or a percentage of the selection rounded up, each wave at least one cluster more than
the one before, the last covering the whole selection.

`step` decides from an immutable snapshot and returns a `RolloutStep` whose `reason` says why.
Guarantees (tests/mission_control/test_rollout_rules.py checks them with hypothesis):
- a wave starts only when every cluster of the waves before finished healthy (all its nodes
  report V and the cluster's health status is healthy);
- waves never shrink and never skip: the wave index grows by at most one per step;
- a cluster that fails (it refused or rolled back the release after its offer, or it did not
  finish within the deadline) pauses the rollout, with the failure named for its alert;
- a paused or completed rollout offers nothing.
Does not: read or write anything; the sweep (`service.releases.rollouts`) does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class RolloutSpecError(ValueError):
    """A selector or waves spec that cannot be used (its message is one line for the user)."""


class RolloutState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"


# --- selectors --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterRecord:
    id: str
    name: str
    geography: str


@dataclass(frozen=True)
class Selector:
    """`all`, `geography=EU` or a comma list of cluster names."""

    geography: str | None = None
    names: tuple[str, ...] = ()

    def pick(self, known: Sequence[ClusterRecord]) -> list[ClusterRecord]:
        """The clusters picked, in name order (the order waves take them in)."""
        ordered = sorted(known, key=lambda c: c.name)
        if self.geography is not None:
            return [c for c in ordered if c.geography == self.geography]
        if self.names:
            by_name = {c.name: c for c in ordered}
            unknown = [n for n in self.names if n not in by_name]
            if unknown:
                raise RolloutSpecError(f"no cluster named {', '.join(unknown)[:200]}")
            return sorted((by_name[n] for n in set(self.names)), key=lambda c: c.name)
        return ordered


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def parse_selector(spec: str) -> Selector:
    text = spec.strip()
    if text == "all":
        return Selector()
    if text.startswith("geography="):
        geography = text.removeprefix("geography=").strip()
        if not geography or not _NAME.match(geography):
            raise RolloutSpecError("--clusters geography=NAME needs a geography, e.g. EU")
        return Selector(geography=geography)
    names = tuple(n.strip() for n in text.split(","))
    if not text or not all(_NAME.match(n) for n in names):
        raise RolloutSpecError(
            f"--clusters {spec[:64]!r}: say all, geography=EU or a comma list of names"
        )
    return Selector(names=names)


# --- waves ------------------------------------------------------------------------------------

_WAVE = re.compile(r"^(\d{1,6})(%?)$")


def parse_waves(spec: str) -> tuple[str, ...]:
    """The wave steps of `1,10%,50%,100%` (checked: counts >= 1, percentages 1..100)."""
    steps = tuple(s.strip() for s in spec.split(","))
    for s in steps:
        found = _WAVE.match(s)
        if not found or int(found[1]) < 1 or (found[2] and int(found[1]) > 100):
            raise RolloutSpecError(
                f"--waves {spec[:64]!r}: give counts or percentages, e.g. 1,10%,50%,100%"
            )
    return steps


def wave_sizes(steps: Sequence[str], selected: int) -> tuple[int, ...]:
    """Cumulative cluster counts per wave for `selected` clusters: each at least one more than
    the last, the last equal to `selected` (a step that adds nobody is dropped; a spec that
    never reaches the whole selection gets a last wave that does)."""
    if selected < 1:
        raise RolloutSpecError("the selection is empty: no cluster to roll out to")
    sizes: list[int] = []
    for s in steps:
        n = math.ceil(selected * int(s[:-1]) / 100) if s.endswith("%") else int(s)
        n = min(max(n, 1), selected)
        if not sizes or n > sizes[-1]:
            sizes.append(n)
    if sizes[-1] < selected:
        sizes.append(selected)
    return tuple(sizes)


# --- the step ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterProgress:
    """One cluster of a rollout as Mission Control last saw it."""

    id: str
    name: str
    offered_at: datetime | None
    versions: tuple[str, ...]  # its nodes' versions, from the last health check
    healthy: bool  # the last health check's status is healthy
    refused_at: datetime | None = None  # when it last reported refusing/rolling back a release
    finished: bool = False  # already recorded as finished

    def reached(self, version: str) -> bool:
        return bool(self.versions) and all(v == version for v in self.versions) and self.healthy


@dataclass(frozen=True)
class RolloutSnapshot:
    version: str
    state: RolloutState
    wave: int  # index into `sizes` of the current wave
    sizes: tuple[int, ...]
    clusters: tuple[ClusterProgress, ...]  # in wave order
    deadline: timedelta  # how long a cluster may take after its offer


@dataclass(frozen=True)
class RolloutStep:
    state: RolloutState
    wave: int
    offer: tuple[str, ...]  # cluster ids to offer V now
    finished: tuple[str, ...]  # cluster ids that reached V healthy
    failed: tuple[tuple[str, str], ...]  # (cluster id, why) for each failed cluster
    reason: str


def _members(snapshot: RolloutSnapshot, wave: int) -> tuple[ClusterProgress, ...]:
    return snapshot.clusters[: snapshot.sizes[wave]]


def _failure(c: ClusterProgress, now: datetime, snapshot: RolloutSnapshot) -> str | None:
    if c.offered_at is None or c.finished or c.reached(snapshot.version):
        return None
    if c.refused_at is not None and c.refused_at >= c.offered_at:
        return f"{c.name} refused or rolled back {snapshot.version}"
    if now - c.offered_at > snapshot.deadline:
        have = ", ".join(sorted(set(c.versions))) or "no report"
        return f"{c.name} did not reach {snapshot.version} healthy in time (has {have})"
    return None


def step(snapshot: RolloutSnapshot, now: datetime) -> RolloutStep:
    """What to do next, and why."""
    n_waves = len(snapshot.sizes)
    label = f"wave {snapshot.wave + 1} of {n_waves}"
    if snapshot.state is not RolloutState.ACTIVE:
        return RolloutStep(
            snapshot.state, snapshot.wave, (), (), (), f"no action, the rollout is {snapshot.state}"
        )
    members = _members(snapshot, snapshot.wave)
    finished = tuple(c.id for c in members if not c.finished and c.reached(snapshot.version))
    failed = tuple((c.id, why) for c in members if (why := _failure(c, now, snapshot)) is not None)
    if failed:
        names = "; ".join(why for _id, why in failed)
        return RolloutStep(
            RolloutState.PAUSED, snapshot.wave, (), finished, failed, f"paused in {label}: {names}"
        )
    unoffered = tuple(c.id for c in members if c.offered_at is None)
    if unoffered:
        return RolloutStep(
            RolloutState.ACTIVE,
            snapshot.wave,
            unoffered,
            finished,
            (),
            f"{label}: offering {snapshot.version} to {len(unoffered)} cluster(s)",
        )
    waiting = [c.name for c in members if not (c.finished or c.reached(snapshot.version))]
    if waiting:
        return RolloutStep(
            RolloutState.ACTIVE,
            snapshot.wave,
            (),
            finished,
            (),
            f"{label}: waiting for {', '.join(waiting[:5])}"
            + (f" and {len(waiting) - 5} more" if len(waiting) > 5 else ""),
        )
    if snapshot.wave + 1 >= n_waves:
        return RolloutStep(
            RolloutState.COMPLETED,
            snapshot.wave,
            (),
            finished,
            (),
            f"completed: {len(snapshot.clusters)} cluster(s) run {snapshot.version} healthy",
        )
    nxt = snapshot.wave + 1
    new = tuple(c.id for c in _members(snapshot, nxt) if c.offered_at is None)
    return RolloutStep(
        RolloutState.ACTIVE,
        nxt,
        new,
        finished,
        (),
        f"{label} finished healthy; wave {nxt + 1} of {n_waves} starts with {len(new)} cluster(s)",
    )
