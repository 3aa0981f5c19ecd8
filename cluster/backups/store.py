"""ZooKeeper I/O for backup runs (blocking calls: run them through `blocking` or a worker).

Guarantees: every record is parsed into its pydantic model, and an unreadable znode is skipped
rather than allowed to wedge the leader. The operations that start and finish a run are built
here (`start_ops`, `finish_ops`) and applied by the leader in one fenced transaction, so the run
record, the no-overlap guard, the consumed requests, the schedule mark and the Mission Control
event change together or not at all.
"""

from __future__ import annotations

import contextlib
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from cluster import zk
from cluster.backups import queued
from cluster.backups.runs import PartOutcome, PartProgress, RunRecord, ScheduleMark
from cluster.link.outbox import Outbox
from cluster.paths import ClusterPaths
from cluster.zk import ZooKeeper
from cluster.zk.errors import NodeExistsError, NoNodeError
from contract.limits import printable

REQUEST_PREFIX = queued.REQUEST_PREFIX
KEEP_RUN_RECORDS = 50
READ_TIMEOUT = 10.0  # seconds for each read of a listing
M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], data: bytes | None) -> M | None:
    try:
        return model.model_validate_json(data or b"")
    except (ValidationError, ValueError):
        return None


def encode(value: BaseModel) -> bytes:
    return value.model_dump_json().encode()


def ensure_layout(client: ZooKeeper, paths: ClusterPaths) -> None:
    for path in (paths.backup_runs, paths.backup_requests):
        client.ensure_path(path)


def _get(client: ZooKeeper, path: str) -> bytes | None:
    try:
        data, _ = client.get(path)
    except NoNodeError:
        return None
    return bytes(data)


def _children(client: ZooKeeper, path: str) -> list[str]:
    try:
        return sorted(client.children(path))
    except NoNodeError:
        return []


def read_model(client: ZooKeeper, path: str, model: type[M]) -> M | None:
    """The record at `path`, or None when it is absent or unreadable."""
    return _parse(model, _get(client, path))


def child_names(client: ZooKeeper, path: str) -> list[str]:
    """The children of `path`, sorted; none when it is absent."""
    return _children(client, path)


def read_run(client: ZooKeeper, paths: ClusterPaths, backup_id: str) -> RunRecord | None:
    return _parse(RunRecord, _get(client, paths.backup_run(backup_id)))


def list_runs(client: ZooKeeper, paths: ClusterPaths) -> list[RunRecord]:
    """All run records, oldest first (requests issued in parallel)."""
    ids = _children(client, paths.backup_runs)
    got = client.get_many((paths.backup_run(i) for i in ids), READ_TIMEOUT)
    parsed = (_parse(RunRecord, read[0]) for read in got if read is not None)
    return [run for run in parsed if run is not None]


def current_run_id(client: ZooKeeper, paths: ClusterPaths) -> str | None:
    data = _get(client, paths.backup_current)
    return data.decode() if data else None


def _records(client: ZooKeeper, base: str, model: type[M]) -> dict[str, M]:
    """The parsable records among `base`'s children, by child name."""
    found = {}
    for name in _children(client, base):
        record = _parse(model, _get(client, f"{base}/{name}"))
        if record is not None:
            found[name] = record
    return found


def read_outcomes(client: ZooKeeper, paths: ClusterPaths, backup_id: str) -> dict[str, PartOutcome]:
    """Reported parts by part name (a znode is named after its part)."""
    return _records(client, paths.backup_parts(backup_id), PartOutcome)


def read_progress(
    client: ZooKeeper, paths: ClusterPaths, backup_id: str
) -> dict[str, PartProgress]:
    return _records(client, f"{paths.backup_run(backup_id)}/progress", PartProgress)


def report_part(
    client: ZooKeeper, paths: ClusterPaths, backup_id: str, outcome: PartOutcome
) -> bool:
    """Record a part's outcome; False if the run is gone or the part was already reported."""
    try:
        client.create(f"{paths.backup_parts(backup_id)}/{outcome.part}", encode(outcome))
    except (NoNodeError, NodeExistsError):
        return False
    return True


def publish_progress(
    client: ZooKeeper, paths: ClusterPaths, backup_id: str, part: str, progress: PartProgress
) -> None:
    path = f"{paths.backup_run(backup_id)}/progress/{part}"
    try:
        client.set(path, encode(progress))
    except NoNodeError:
        # The run is gone, or a racing update won: progress is advisory.
        with contextlib.suppress(NoNodeError, NodeExistsError):
            client.create(path, encode(progress))


def pending_requests(client: ZooKeeper, paths: ClusterPaths) -> list[str]:
    return [n for n in _children(client, paths.backup_requests) if n.startswith(REQUEST_PREFIX)]


request_run = queued.request_run


def read_mark(client: ZooKeeper, paths: ClusterPaths) -> ScheduleMark | None:
    return _parse(ScheduleMark, _get(client, paths.backup_schedule))


def mark_op(client: ZooKeeper, paths: ClusterPaths, mark: ScheduleMark) -> zk.Op:
    """Set or create the schedule mark (checked now; the fenced transaction re-checks)."""
    if client.exists(paths.backup_schedule):
        return zk.SetData(paths.backup_schedule, encode(mark))
    return zk.Create(paths.backup_schedule, encode(mark))


def start_ops(paths: ClusterPaths, run: RunRecord, mark: zk.Op | None) -> list[zk.Op]:
    """Create the run and take the guard (fails with NodeExistsError if a run is in progress)."""
    base = paths.backup_run(run.id)
    ops: list[zk.Op] = [
        zk.Create(paths.backup_current, run.id.encode()),
        zk.Create(base, encode(run)),
        zk.Create(f"{base}/parts", b""),
        zk.Create(f"{base}/progress", b""),
    ]
    ops += [zk.Delete(f"{paths.backup_requests}/{r}") for r in run.requests]
    if mark is not None:
        ops.append(mark)
    return ops


def event_op(paths: ClusterPaths, enrolled: bool, run: RunRecord, now: float) -> list[zk.Op]:
    """The Mission Control event for a finished run, queued only when the cluster is enrolled."""
    if not enrolled or run.status == "running":
        return []
    detail = f"backup {run.id}: {run.reason or run.status}"
    from contract.messages import ClusterEventBody  # deferred: start-up time of the CLI

    event = ClusterEventBody(
        kind="backup_succeeded" if run.status == "ok" else "backup_failed",
        detail=printable(detail, 4000),
    )
    return [Outbox(paths).message(event, now)]


def finish_ops(
    paths: ClusterPaths, run: RunRecord, enrolled: bool, now: float, holds_guard: bool
) -> list[zk.Op]:
    """Record the final state, release the guard and queue the event, together."""
    ops: list[zk.Op] = [zk.SetData(paths.backup_run(run.id), encode(run))]
    if holds_guard:
        ops.append(zk.Delete(paths.backup_current))
    return ops + event_op(paths, enrolled, run, now)


def prune_ops(client: ZooKeeper, paths: ClusterPaths, keep: int = KEEP_RUN_RECORDS) -> list[zk.Op]:
    """Delete finished run records beyond the newest `keep` (children first)."""
    ids = _children(client, paths.backup_runs)
    current = current_run_id(client, paths)
    ops: list[zk.Op] = []
    for backup_id in ids[: max(0, len(ids) - keep)]:
        if backup_id == current:
            continue
        base = paths.backup_run(backup_id)
        for sub in ("parts", "progress"):
            ops += [zk.Delete(f"{base}/{sub}/{n}") for n in _children(client, f"{base}/{sub}")]
            if client.exists(f"{base}/{sub}"):
                ops.append(zk.Delete(f"{base}/{sub}"))
        ops.append(zk.Delete(base))
    return ops
