"""ZooKeeper I/O for restore drills (blocking calls: run them through `blocking`).

Guarantees: the operations that start and finish a drill are built here and applied by the
leader in one fenced transaction each, so the drill record, the no-overlap guard it shares with
backup runs, the consumed requests and the Mission Control event change together or not at all.
An unreadable record is skipped, never allowed to wedge the leader.
"""

from __future__ import annotations

import contextlib

from cluster import zk
from cluster.backups.drills import DrillOutcome, DrillRecord
from cluster.backups.queued import queue_request
from cluster.backups.store import child_names, encode, read_model
from cluster.link.outbox import Outbox
from cluster.paths import ClusterPaths
from cluster.zk import ZooKeeper
from cluster.zk.errors import NodeExistsError, NoNodeError
from contract.limits import printable

REQUEST_PREFIX = "d-"
OUTCOME = "outcome"
KEEP_DRILL_RECORDS = 50


def ensure_layout(client: ZooKeeper, paths: ClusterPaths) -> None:
    for path in (paths.backup_drills, paths.backup_drill_requests):
        client.ensure_path(path)


def read_drill(client: ZooKeeper, paths: ClusterPaths, drill_id: str) -> DrillRecord | None:
    return read_model(client, paths.backup_drill(drill_id), DrillRecord)


def list_drills(client: ZooKeeper, paths: ClusterPaths) -> list[DrillRecord]:
    """All drill records, oldest first."""
    ids = child_names(client, paths.backup_drills)
    found = (read_drill(client, paths, i) for i in ids)
    return [d for d in found if d is not None]


def read_outcome(client: ZooKeeper, paths: ClusterPaths, drill_id: str) -> DrillOutcome | None:
    return read_model(client, f"{paths.backup_drill(drill_id)}/{OUTCOME}", DrillOutcome)


def report_outcome(
    client: ZooKeeper, paths: ClusterPaths, drill_id: str, outcome: DrillOutcome
) -> bool:
    """Record the node's outcome; False if the drill is gone or already reported."""
    try:
        client.create(f"{paths.backup_drill(drill_id)}/{OUTCOME}", encode(outcome))
    except (NoNodeError, NodeExistsError):
        return False
    return True


def pending_requests(client: ZooKeeper, paths: ClusterPaths) -> list[str]:
    names = child_names(client, paths.backup_drill_requests)
    return [n for n in names if n.startswith(REQUEST_PREFIX)]


def request_drill(client: ZooKeeper, paths: ClusterPaths, by: str) -> str:
    """Ask the leader for a drill; returns the request's name (later in the record)."""
    ensure_layout(client, paths)
    return queue_request(client, f"{paths.backup_drill_requests}/{REQUEST_PREFIX}", by)


def start_ops(paths: ClusterPaths, drill: DrillRecord) -> list[zk.Op]:
    """Take the shared guard and create the record (NodeExistsError while anything runs)."""
    return [
        zk.Create(paths.backup_current, drill.id.encode()),
        zk.Create(paths.backup_drill(drill.id), encode(drill)),
        *request_ops(paths, drill.requests),
    ]


def request_ops(paths: ClusterPaths, requests: tuple[str, ...]) -> list[zk.Op]:
    return [zk.Delete(f"{paths.backup_drill_requests}/{r}") for r in requests]


def event_op(paths: ClusterPaths, enrolled: bool, drill: DrillRecord, now: float) -> list[zk.Op]:
    """The Mission Control event for an ended drill, queued only when the cluster is enrolled."""
    if not enrolled or drill.status == "running":
        return []
    from contract.messages import ClusterEventBody, DrillReport  # deferred: start-up time

    report = DrillReport(
        drill_id=drill.id,
        backup_id=drill.backup_id,
        ok=drill.status == "ok",
        rto_seconds=drill.rto,
        rpo_seconds=drill.rpo,
        bytes=drill.bytes,
        files=drill.files,
        decrypted=drill.decrypted,
    )
    event = ClusterEventBody(
        kind="drill_succeeded" if drill.status == "ok" else "drill_failed",
        detail=printable(drill.describe(), 4000),
        drill=report,
    )
    return [Outbox(paths).message(event, now)]


def finish_ops(
    client: ZooKeeper, paths: ClusterPaths, drill: DrillRecord, enrolled: bool, now: float
) -> list[zk.Op]:
    """Record the end, release the guard if this drill holds it, queue the event: together."""
    ops: list[zk.Op] = [zk.SetData(paths.backup_drill(drill.id), encode(drill))]
    with contextlib.suppress(NoNodeError):
        held, _ = client.get(paths.backup_current)
        if bytes(held).decode() == drill.id:
            ops.append(zk.Delete(paths.backup_current))
    return ops + event_op(paths, enrolled, drill, now)


def prune_ops(
    client: ZooKeeper, paths: ClusterPaths, keep: int = KEEP_DRILL_RECORDS
) -> list[zk.Op]:
    """Delete ended drill records beyond the newest `keep` (the outcome first)."""
    ids = child_names(client, paths.backup_drills)
    ops: list[zk.Op] = []
    for drill_id in ids[: max(0, len(ids) - keep)]:
        drill = read_drill(client, paths, drill_id)
        if drill is not None and drill.status == "running":
            continue
        base = paths.backup_drill(drill_id)
        ops += [zk.Delete(f"{base}/{name}") for name in child_names(client, base)]
        ops.append(zk.Delete(base))
    return ops
