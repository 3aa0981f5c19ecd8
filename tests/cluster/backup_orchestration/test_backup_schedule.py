"""The schedule on a real cluster: fires on the leader, runs never overlap, fire times missed
while leadership changed hands are caught up exactly once, and `managed backup pause|resume`."""

from __future__ import annotations

import time
from collections.abc import Callable

from backupkit import BackupCluster, change_settings, configure, data_dir, fill, runs
from clusterkit import ZK_AUTH, ClusterUnderTest

from cluster import zk
from cluster.backups import store
from cluster.backups.runs import RunRecord, ScheduleMark
from cluster.dev.processes import wait_until


def test_schedule_fires_never_overlaps_and_catches_up_once(
    cluster: ClusterUnderTest, bucket: Callable[..., str]
) -> None:
    for n in ("n1", "n2", "n3"):
        fill(data_dir(cluster, n), n, size=200_000)
    cluster.start_nodes(3)
    # Every 2 s, with runs slowed to about as long: some fires find a run in progress.
    configure(cluster, bucket("eu-west-1"), schedule="*/2 * * * * *", bandwidth_limit="150KiB/s")

    def scheduled_done() -> bool:
        return sum(r.trigger == "schedule" and r.status == "ok" for r in runs(cluster)) >= 2

    assert wait_until(scheduled_done, 40, 0.3), cluster.logs()
    change_settings(cluster, schedule="0 2 * * *")  # daily from now on
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:

        def settled() -> bool:
            mark = store.read_mark(client, cluster.paths)
            idle = store.current_run_id(client, cluster.paths) is None
            return idle and mark is not None and mark.expression == "0 2 * * *"

        assert wait_until(settled, 30, 0.2), cluster.logs()
        finished = runs(cluster)
        spans = sorted((r.started, r.finished or 0.0) for r in finished)
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert start >= end, spans  # never two runs at once
        # The leader dies; the fire times of the last three days were never handled.
        missed = ScheduleMark(expression="0 2 * * *", handled_through=time.time() - 3 * 86400)
        client.set(cluster.paths.backup_schedule, store.encode(missed))
    finally:
        zk.close(client)
    old = cluster.snapshot().leader
    assert old is not None
    killed_at = time.time()
    cluster.processes[old.node].kill()

    def caught_up() -> list[str]:
        return [r.id for r in runs(cluster) if r.trigger == "catch-up"]

    def handled() -> bool:
        """The catch-up run ended, and the mark written with its start covers every missed
        fire time: nothing is left for another catch-up (no sleeping to see none come)."""
        client = zk.connect(cluster.hosts, auth=ZK_AUTH)
        try:
            mark = store.read_mark(client, cluster.paths)
            idle = store.current_run_id(client, cluster.paths) is None
        finally:
            zk.close(client)
        ended = [r for r in runs(cluster) if r.trigger == "catch-up" and r.finished]
        return idle and bool(ended) and mark is not None and mark.handled_through >= killed_at

    assert wait_until(handled, 30, 0.3), cluster.logs()
    assert len(caught_up()) == 1  # once, coalesced
    assert len(runs(cluster)) == len(finished) + 1


def test_pause_skips_scheduled_runs_a_manual_run_still_works_and_resume_restarts_them(
    cluster: ClusterUnderTest,
    backup_cluster: Callable[..., BackupCluster],
    bucket: Callable[..., str],
) -> None:
    bc = backup_cluster(bucket("eu-west-1"))
    bc.ok("configure", "--schedule", "*/2 * * * * *")

    def scheduled_after(t: float) -> list[RunRecord]:
        return [r for r in runs(cluster) if r.trigger == "schedule" and r.started > t]

    assert wait_until(lambda: any(r.status == "ok" for r in scheduled_after(0)), 40, 0.3)

    out = bc.ok("pause")
    assert out.strip() == f"scheduled backups of cluster {cluster.name} paused"
    assert bc.config()["backup"]["paused"] is True  # type: ignore[index]
    assert "(paused)" in bc.ok("configure")  # the settings say so

    # The leader handles each fire time by skipping it: the mark says so, and no run starts.
    skipped: list[float] = []

    def skipping() -> bool:
        client = zk.connect(cluster.hosts, auth=ZK_AUTH)
        try:
            mark = store.read_mark(client, cluster.paths)
        finally:
            zk.close(client)
        new = mark is not None and mark.handled_through not in skipped
        if new and mark is not None and mark.note == "paused: skipped":
            skipped.append(mark.handled_through)
        return len(skipped) >= 3

    assert wait_until(skipping, 30, 0.2), cluster.logs()
    assert scheduled_after(skipped[0]) == []

    # A manual run still works while paused.
    before = len(runs(cluster))
    bc.ok("run", "--wait", timeout=90)
    manual = runs(cluster)[before:]
    assert [(r.trigger, r.status) for r in manual] == [("manual", "ok")], manual
    assert scheduled_after(skipped[0]) == []

    resumed_at = time.time()
    out = bc.ok("resume")
    assert out.strip() == f"scheduled backups of cluster {cluster.name} resumed"
    assert bc.config()["backup"]["paused"] is False  # type: ignore[index]
    assert wait_until(
        lambda: any(r.status == "ok" for r in scheduled_after(resumed_at)), 40, 0.3
    ), cluster.logs()
