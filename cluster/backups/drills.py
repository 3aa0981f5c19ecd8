"""Restore drills: their settings, records and the pure decisions about them.

A drill proves a backup can be restored: the leader picks the newest `ok` backup, one node
restores it into a scratch directory, checks it, measures how long that took (RTO) and how old
the data it restored was (RPO), removes the scratch copy and reports; the leader records the
outcome and tells Mission Control.

Layout under `<cluster>/backups/`:
    drills/<id>                DrillRecord (written by the leader, fenced)
    drills/<id>/outcome        DrillOutcome (written by the node that ran the drill)
    drill-requests/d-<seq>     a drill asked for by `managed backup drill run`
    current                    shared with backup runs: holds the drill's id while it runs

Guarantees of the decisions here (pure, unit-tested without servers):
- A drill and a backup run share one no-overlap guard (`current`): whoever holds it, the other
  does not start. Drill ids start with `drill-`, backup ids never do (`is_drill`).
- `choose` names the newest `ok` backup and the node that restores it, or says why there is
  none; it never picks a node that is down.
- `assess` fails a drill whose node went down or that outlived its timeout, so a drill always
  ends with a record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from cluster.backups.drill_settings import DEFAULT_DRILL_TIMEOUT, DrillSettings
from cluster.backups.runs import RunRecord
from cluster.backups.settings import RunPlan
from cluster.backups.text import seconds_text

DRILL_PREFIX = "drill-"
DrillStatus = Literal["running", "ok", "failed"]
DrillTrigger = Literal["manual", "schedule"]


def is_drill(guard: str | None) -> bool:
    """Whether the no-overlap guard is held by a drill (else by a backup run, or nobody)."""
    return guard is not None and guard.startswith(DRILL_PREFIX)


def new_drill_id(now: float, suffix: str) -> str:
    return f"{DRILL_PREFIX}{datetime.fromtimestamp(now, UTC):%Y%m%dT%H%M%SZ}-{suffix}"


class DrillRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    status: DrillStatus
    epoch: int
    leader: str
    trigger: DrillTrigger
    started: float
    finished: float | None = None
    node: str | None = None
    backup_id: str | None = None
    backup_started: float | None = None  # when the backup began: the age of its data
    plan: RunPlan | None = None  # the backup's targets and residency (from its run record)
    signing_public_key: str | None = None  # the cluster's manifest key: the signer to trust
    scratch: str | None = None
    key_file: str | None = None
    timeout: float = DEFAULT_DRILL_TIMEOUT
    requests: tuple[str, ...] = ()
    reason: str | None = None
    rto: float | None = None  # seconds: restoring and checking everything, measured
    rpo: float | None = None  # seconds: age of the restored data when the drill ended
    bytes: int = 0
    files: int = 0
    decrypted: bool = False

    def finish(self, at: float, outcome: DrillOutcome | None, reason: str | None) -> DrillRecord:
        """The final record: `ok` only with a clean outcome and no reason to fail."""
        ok = outcome is not None and outcome.error is None and reason is None
        update: dict[str, object] = {
            "status": "ok" if ok else "failed",
            "finished": at,
            "reason": reason or (outcome.error if outcome is not None else None),
        }
        if outcome is not None:
            update.update(
                rto=outcome.rto,
                bytes=outcome.bytes,
                files=outcome.files,
                decrypted=outcome.decrypted,
            )
        if ok and self.backup_started is not None:
            update["rpo"] = max(0.0, at - self.backup_started)
        return self.model_copy(update=update)

    def summary(self) -> dict[str, object]:
        """The `managed backup drill list --json` object."""
        return {
            "id": self.id,
            "status": self.status,
            "backup_id": self.backup_id,
            "node": self.node,
            "trigger": self.trigger,
            "started": self.started,
            "finished": self.finished,
            "rto_seconds": self.rto,
            "rpo_seconds": self.rpo,
            "bytes": self.bytes,
            "files": self.files,
            "decrypted": self.decrypted,
            "reason": self.reason,
        }

    def describe(self) -> str:
        """One line: what the operator and Mission Control read."""
        of = f" of backup {self.backup_id}" if self.backup_id else ""
        if self.status == "ok":
            how = "restored and checked" if self.decrypted else "every stored byte checked"
            return (
                f"drill {self.id}{of}: ok, {how}, RTO {seconds_text(self.rto)}, "
                f"RPO {seconds_text(self.rpo)}"
            )
        return f"drill {self.id}{of}: {self.status}" + (f": {self.reason}" if self.reason else "")


class DrillOutcome(BaseModel):
    """What the drill node reports."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node: str
    error: str | None = None
    rto: float | None = None
    bytes: int = 0
    files: int = 0
    decrypted: bool = False


@dataclass(frozen=True)
class Choice:
    """What a drill would restore and where, or why it cannot run (`refusal`)."""

    backup: RunRecord | None
    node: str | None
    refusal: str | None


def newest_ok(runs: Iterable[RunRecord]) -> RunRecord | None:
    done = [r for r in runs if r.status == "ok" and r.plan is not None]
    return max(done, key=lambda r: r.started, default=None)


def choose(
    settings: DrillSettings | None,
    runs: Sequence[RunRecord],
    live: frozenset[str],
    leader: str,
) -> Choice:
    """The backup to drill (the newest `ok` one) and the node that restores it."""
    if settings is None or settings.scratch is None:
        return Choice(None, None, "drills are not configured: run `managed backup drill configure`")
    backup = newest_ok(runs)
    if backup is None:
        return Choice(None, None, "no successful backup to restore")
    node = settings.node or leader
    if node not in live:
        return Choice(backup, None, f"drill node {node} is down")
    return Choice(backup, node, None)


@dataclass(frozen=True)
class Assessment:
    action: Literal["wait", "finish", "fail"]
    reason: str


def assess(
    drill: DrillRecord, outcome: DrillOutcome | None, live: frozenset[str], now: float
) -> Assessment:
    """Finish when the node reported; fail on the first sign it never will."""
    if outcome is not None:
        return Assessment("finish", "the drill node reported")
    if drill.node is not None and drill.node not in live:
        return Assessment("fail", f"drill node {drill.node} went down")
    if now - drill.started > drill.timeout:
        return Assessment("fail", f"timed out after {drill.timeout:g}s")
    return Assessment("wait", f"waiting for node {drill.node}")


def proofs(drills: Iterable[DrillRecord]) -> dict[str, DrillRecord]:
    """Per backup id, the newest drill that proved it (`ok`)."""
    found: dict[str, DrillRecord] = {}
    for drill in drills:
        if drill.status != "ok" or drill.backup_id is None:
            continue
        known = found.get(drill.backup_id)
        if known is None or drill.started > known.started:
            found[drill.backup_id] = drill
    return found
