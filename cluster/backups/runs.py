"""Run records in ZooKeeper and the pure decisions about them.

Layout under `<cluster>/backups/`:
    runs/<id>                  RunRecord (written by the leader, fenced)
    runs/<id>/parts/<part>     PartOutcome (written by the node that wrote the part)
    runs/<id>/progress/<part>  PartProgress (updated by the writer while it works)
    requests/r-<seq>           a run asked for by `managed backup run`
    current                    the id of the run in progress: the no-overlap guard
    schedule                   ScheduleMark: fire times handled so far

Decisions are pure functions returning a readable reason (Patroni style), unit-tested without
servers: what a new leader does with a run it finds in progress (`recover`), and whether the
leader should wait, commit or fail a run given the parts reported so far (`assess`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

# The class `backup.engine` re-exports; imported from its module so that reading run records
# (`managed backup list|show`) does not load the storage backends (boto3).
from backup.manifest import PartRecord
from cluster.backups.settings import RunPlan

RunStatus = Literal["running", "ok", "failed"]
Trigger = Literal["manual", "schedule", "catch-up"]
ZOOKEEPER_PART = "zookeeper"


class RunRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    status: RunStatus
    epoch: int
    leader: str
    trigger: Trigger
    started: float
    finished: float | None = None
    expected: tuple[str, ...]  # part names: live nodes at the start, then "zookeeper"
    missing: tuple[str, ...] = ()  # roster members that were down at the start: no part
    requests: tuple[str, ...] = ()
    plan: RunPlan | None  # None for a run refused before it could be planned
    reason: str | None = None
    bytes: int = 0  # ciphertext bytes of all parts (one copy)
    retention: str | None = None

    def finish(self, status: RunStatus, at: float, reason: str | None, size: int = 0) -> RunRecord:
        return self.model_copy(
            update={"status": status, "finished": at, "reason": reason, "bytes": size}
        )

    def summary(self) -> dict[str, Any]:
        """The `managed backup list --json` object."""
        return {
            "id": self.id,
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
            "duration": None if self.finished is None else round(self.finished - self.started, 3),
            "bytes": self.bytes,
            "trigger": self.trigger,
            "epoch": self.epoch,
            "targets": list(self.plan.urls) if self.plan else [],
            "key_id": self.plan.key_id if self.plan else None,
            "reason": self.reason,
            "missing_nodes": list(self.missing),
        }


class PartOutcome(BaseModel):
    """What a writer reports for one part: its record, or why it failed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    part: str
    node: str
    record: PartRecord | None = None
    error: str | None = None


class PartProgress(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    done: int
    total: int | None = None


class ScheduleMark(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    expression: str
    handled_through: float
    note: str = ""


@dataclass(frozen=True)
class Recovery:
    fail: bool
    reason: str


class Started(Protocol):
    """What `recover` reads of a run or a restore drill."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def epoch(self) -> int: ...
    @property
    def leader(self) -> str: ...


def recover(run: Started | None, epoch: int) -> Recovery:
    """What a leader that has just started its backup service does with the run (or restore
    drill) in progress.

    A run is driven by the task of the leader that started it; once that task is gone (another
    leader, or this one restarted its leader work) nobody will commit it, so it is failed.
    """
    if run is None:
        return Recovery(False, "no run in progress")
    if run.status != "running":
        return Recovery(False, f"run {run.id} already {run.status}: only the guard is stale")
    if run.epoch < epoch:
        return Recovery(
            True,
            f"leader changed: run started by {run.leader} in epoch {run.epoch}, now epoch {epoch}",
        )
    return Recovery(True, f"leader work restarted in epoch {epoch}: the run was interrupted")


@dataclass(frozen=True)
class Assessment:
    action: Literal["wait", "commit", "fail"]
    reason: str


def assess(
    run: RunRecord,
    outcomes: dict[str, PartOutcome],
    live: frozenset[str],
    now: float,
) -> Assessment:
    """Commit when every expected part is written, fail on the first sign it never will be."""
    for part in run.expected:
        outcome = outcomes.get(part)
        if outcome is not None and outcome.error is not None:
            return Assessment("fail", f"part {part} failed: {outcome.error}")
    missing = [p for p in run.expected if p not in outcomes or outcomes[p].record is None]
    if not missing:
        return Assessment("commit", f"all {len(run.expected)} parts written")
    down = [p for p in missing if p != ZOOKEEPER_PART and p not in live]
    if down:
        return Assessment("fail", f"node {down[0]} went down before writing its part")
    timeout = run.plan.part_timeout if run.plan else 0.0
    if now - run.started > timeout:
        return Assessment(
            "fail", f"timed out after {timeout:g}s waiting for part(s) {', '.join(missing)}"
        )
    return Assessment("wait", f"waiting for part(s) {', '.join(missing)}")
