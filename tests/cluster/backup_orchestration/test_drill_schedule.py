"""Scheduled drills on a real cluster (real node processes, a real ensemble, moto_server): the
leader's drill schedule fires drills, and a fire that finds a backup (or a drill) holding the
guard is skipped, not queued: no request is left behind, nothing runs during the backup, and
afterwards each fire time starts one drill at most (no burst of delayed fires)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from backupkit import BackupCluster, data_dir
from clusterkit import ZK_AUTH

from cluster import zk
from cluster.backups import drill_store, store
from cluster.backups.drills import DrillRecord, is_drill
from cluster.dev.processes import wait_until

EVERY = 2  # seconds between fire times


def test_a_schedule_fires_drills_and_a_fire_during_a_backup_is_skipped(
    backup_cluster: Callable[..., BackupCluster], bucket: Callable[..., str], tmp_path: Path
) -> None:
    made = backup_cluster(bucket("eu-west-1"), nodes=1)
    cluster = made.cluster
    made.ok("run", "--wait", timeout=90)
    os.chmod(made.key, 0o600)
    made.ok(
        "drill", "configure", "--scratch", str(tmp_path / "scratch"), "--key-file",
        str(made.key), "--schedule", f"*/{EVERY} * * * * *",
    )  # fmt: skip
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)

    def scheduled() -> list[DrillRecord]:
        found = drill_store.list_drills(client, cluster.paths)
        return [d for d in found if d.trigger == "schedule"]

    try:
        assert wait_until(lambda: any(d.status == "ok" for d in scheduled()), 60, 0.2), (
            cluster.logs()
        )
        # A backup slowed to span several fire times (about 1.5 MiB at 150 KiB/s).
        (data_dir(cluster, "n1") / "segments" / "more.bin").write_bytes(os.urandom(1500_000))
        made.ok("configure", "--bandwidth-limit", "150KiB/s")
        request = store.request_run(client, cluster.paths, by="test")

        def backing_up() -> bool:
            guard = store.current_run_id(client, cluster.paths)
            return guard is not None and not is_drill(guard)

        assert wait_until(backing_up, 60, 0.02), cluster.logs()
        [run] = [r for r in store.list_runs(client, cluster.paths) if request in r.requests]

        def backup_ended() -> bool:
            assert drill_store.pending_requests(client, cluster.paths) == []  # fires queue none
            return store.current_run_id(client, cluster.paths) != run.id

        assert wait_until(backup_ended, 90, 0.1), cluster.logs()
        [run] = [r for r in store.list_runs(client, cluster.paths) if r.id == run.id]
        assert run.status == "ok" and run.finished is not None
        assert run.finished - run.started > 2 * EVERY, "the backup spanned too few fire times"

        def drilled_after_backup() -> bool:
            later = [d for d in scheduled() if d.started >= (run.finished or 0.0)]
            return len(later) >= 2 and all(d.finished for d in later)

        assert wait_until(drilled_after_backup, 60, 0.2), cluster.logs()
        found = scheduled()
    finally:
        zk.close(client)
    during = [d.id for d in found if run.started <= d.started <= run.finished]
    assert during == [], during  # every fire while the backup ran was skipped
    assert all(d.status == "ok" for d in found), found
    # One drill per fire time at most: skipped fires did not pile up and run afterwards.
    slots = [int(d.started // EVERY) for d in found]
    assert len(slots) == len(set(slots)), sorted(d.started for d in found)
