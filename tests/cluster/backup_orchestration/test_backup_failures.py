"""Failures: configure refuses bad input and stores nothing; an EU cluster never writes to a
bucket that really lives in the US (even when the config claims otherwise) and raises the
Mission Control event; a leader killed mid-backup leaves no manifest and no orphaned parts."""

from __future__ import annotations

import json
from collections.abc import Callable

from backupkit import Regions, change_settings, configure, data_dir, fill, runs
from clusterkit import ZK_AUTH, ClusterUnderTest

from backup.targets import open_target, parse_target_url
from cluster import zk
from cluster.backups import store
from cluster.dev import s3 as devs3
from cluster.dev.processes import wait_until
from cluster.link import outbox


def test_configure_refuses_bad_input_and_stores_nothing(
    cluster: ClusterUnderTest, bucket: Callable[..., str]
) -> None:
    us = bucket("us-east-1")
    cases = [
        (("--geography", "EU", "--target", "ftp://x/y"), "use file:///path or s3://"),
        (("--geography", "EU", "--target", "file:///tmp/x", "--mirror", us), "us-east-1"),
    ]
    for args, words in cases:
        r = cluster.cli("backup", "configure", *args)
        assert r.returncode == 1, r
        assert words in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = cluster.cli("backup", "run")
    assert r.returncode == 1 and "not configured" in r.stderr
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        data, _ = client.get(cluster.paths.config)
        assert json.loads(data) == {}
        assert not client.exists(f"{cluster.paths.base}/secrets/backup-signing-key")
    finally:
        zk.close(client)


def test_an_eu_cluster_never_writes_to_a_us_bucket_and_raises_the_event(
    cluster: ClusterUnderTest, bucket: Callable[..., str], regions: Regions
) -> None:
    lying = bucket("us-east-1", declare="eu-west-1")  # says Ireland, lives in Virginia
    for region in ("eu-west-1", "eu-central-1", "us-west-2"):
        regions(region)  # every region's endpoint is counted, not only the lying bucket's
    before = {r: devs3.count_objects(server) for r, server in regions.servers.items()}
    fill(data_dir(cluster, "n1"), "n1")
    cluster.start_nodes(1)
    configure(cluster, lying, enrolled=True)
    r = cluster.cli("backup", "run", "--wait")
    assert r.returncode == 1, r.stdout
    assert "really lives in us-east-1" in r.stderr and r.stderr.count("\n") == 1
    [run] = runs(cluster)
    assert run.status == "failed" and "us-east-1" in (run.reason or "")
    after = {r: devs3.count_objects(server) for r, server in regions.servers.items()}
    assert after == before and len(after) >= 4  # nothing written anywhere
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        events = [m for m in outbox.Outbox(cluster.paths).pending(client) if m.kind == "event"]
    finally:
        zk.close(client)
    backup_events = [e for e in events if e.payload["kind"].startswith("backup_")]
    assert [e.payload["kind"] for e in backup_events] == ["backup_failed"]
    assert run.id in backup_events[0].payload["detail"]


def test_leader_killed_during_a_backup_leaves_no_manifest_and_no_orphans(
    cluster: ClusterUnderTest, bucket: Callable[..., str]
) -> None:
    target = bucket("eu-west-1")
    for n in ("n1", "n2", "n3"):
        fill(data_dir(cluster, n), n, size=1_500_000)
    cluster.start_nodes(3)
    configure(cluster, target, keep_last=2, bandwidth_limit="200KiB/s")
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        store.request_run(client, cluster.paths, by="test")

        def writing() -> bool:
            current = store.current_run_id(client, cluster.paths)
            progress = store.read_progress(client, cluster.paths, current) if current else {}
            return any(p.done > 0 for p in progress.values())

        assert wait_until(writing, 20), cluster.logs()
        broken = store.current_run_id(client, cluster.paths)
        assert broken is not None
    finally:
        zk.close(client)
    old = cluster.snapshot().leader
    assert old is not None
    cluster.processes[old.node].kill()
    assert cluster.wait(lambda s: s.leader is not None and s.leader.node != old.node, 15)

    def failed() -> bool:
        return any(r.id == broken and r.status == "failed" for r in runs(cluster))

    assert wait_until(failed, 15, 0.2), cluster.logs()
    [first] = runs(cluster)
    assert "leader changed" in (first.reason or "")
    change_settings(cluster, bandwidth_limit=None)
    r = cluster.cli("backup", "run", "--wait", timeout=90)
    assert r.returncode == 0, r.stderr + cluster.logs()
    objects = open_target(parse_target_url(target)).list()
    assert not [o for o in objects if broken in o], objects  # no manifest, no orphaned part
    assert any(o.startswith("manifests/") for o in objects)
