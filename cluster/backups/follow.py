"""Following a run from the CLI (`managed backup run --wait`): find it, then watch it end.

Guarantees: every wait is bounded by its timeout (BackupRunError names what did not happen);
the caller gets each observation (run record and per-part progress) to draw, and the final
record once the run is `ok` or `failed`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cluster.backups import store
from cluster.backups.errors import BackupRunError
from cluster.backups.runs import PartProgress, RunRecord
from cluster.paths import ClusterPaths
from cluster.zk import ZooKeeper

Observer = Callable[[RunRecord, dict[str, PartProgress]], None]


def find_run(
    client: ZooKeeper,
    paths: ClusterPaths,
    request: str,
    timeout: float,
    interval: float = 0.2,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RunRecord:
    """The run that took up `request`; BackupRunError if no leader did within `timeout`."""
    deadline = clock() + timeout
    while True:
        for run in reversed(store.list_runs(client, paths)):
            if request in run.requests:
                return run
        if clock() >= deadline:
            raise BackupRunError(
                f"no leader took up backup request {request} within {timeout:g}s: is a node "
                "leading with quorum (`managed cluster status`)? The request stays queued."
            )
        sleep(interval)


def follow(
    client: ZooKeeper,
    paths: ClusterPaths,
    backup_id: str,
    timeout: float,
    observe: Observer,
    interval: float = 0.25,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RunRecord:
    """Watch run `backup_id` until it ends; returns its final record."""
    deadline = clock() + timeout
    while True:
        run = store.read_run(client, paths, backup_id)
        if run is None:
            raise BackupRunError(f"backup run {backup_id} disappeared from ZooKeeper")
        observe(run, store.read_progress(client, paths, backup_id))
        if run.status != "running":
            return run
        if clock() >= deadline:
            raise BackupRunError(
                f"backup {backup_id} still running after {timeout:g}s; "
                f"follow it with `managed backup show {backup_id}`"
            )
        sleep(interval)
