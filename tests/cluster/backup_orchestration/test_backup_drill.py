"""Restore drills on a real cluster (real node processes, a real ensemble, real S3 endpoints
through moto_server and, for the alert, a real Mission Control over HTTPS).

- A drill restores the newest backup on the configured node, is recorded with RTO and RPO,
  proves the backup in `backup list`, and leaves the scratch directory empty.
- A tampered stored object fails the drill; Mission Control raises the drill_failed alert and
  a later good drill clears it; the scratch directory is empty again.
- A drill never overlaps a backup or another drill (a drill asked for while another drill or a
  backup holds the guard runs after it); it never runs without quorum.
- A leader change during a drill leaves no half state: the drill is recorded failed, the guard
  is released, the scratch copy is gone, and the next drill succeeds; a drill node killed
  mid-drill leaves a scratch copy that it removes when it starts again.
- Bad drill settings are refused with one line and change nothing; a drill without a key checks
  every stored byte and says it decrypted nothing.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backupkit import BackupCluster, data_dir
from clusterkit import ZK_AUTH, ClusterUnderTest

from backup.targets import open_target, parse_target_url
from cluster import zk
from cluster.backups import drill_store, store
from cluster.backups.drills import is_drill
from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import wait_until
from cluster.paths import ClusterPaths


def drills(made: BackupCluster) -> list[dict[str, Any]]:
    return list(json.loads(made.ok("drill", "list", "--json")))


def leftovers(scratch: Path) -> list[str]:
    return sorted(p.name for p in scratch.iterdir()) if scratch.exists() else []


def setup(made: BackupCluster, scratch: Path, *extra: str) -> None:
    os.chmod(made.key, 0o600)
    made.ok("drill", "configure", "--scratch", str(scratch), "--key-file", str(made.key), *extra)


def test_a_drill_restores_the_newest_backup_and_proves_it(
    backup_cluster: Callable[..., BackupCluster], bucket: Callable[..., str], tmp_path: Path
) -> None:
    made = backup_cluster(bucket("eu-west-1"))
    cluster = made.cluster
    r = made.cli("drill", "run")
    assert r.returncode == 1 and "not configured" in r.stderr, r  # type: ignore[attr-defined]
    made.ok("run", "--wait", timeout=90)
    newest = made.ok("run", "--wait", timeout=90).split()[1]
    scratch = tmp_path / "scratch"
    setup(made, scratch, "--node", "n2")
    out = made.ok("drill", "run", "--wait", timeout=120)
    assert "ok, restored and checked" in out and f"of backup {newest}" in out, out
    [drill] = drills(made)
    assert drill["status"] == "ok" and drill["node"] == "n2" and drill["decrypted"]
    assert drill["backup_id"] == newest
    assert drill["rto_seconds"] > 0 and drill["rpo_seconds"] > 0
    assert drill["files"] >= 3 * 6  # every node's files, and the ZooKeeper part
    rows = {row["id"]: row for row in made.runs()}
    assert rows[newest]["proven"]["drill"] == drill["id"]
    assert rows[newest]["proven"]["rto_seconds"] == drill["rto_seconds"]
    assert [row["proven"] for row in rows.values() if row["id"] != newest] == [None]
    assert "proven by drill" in made.ok("list")
    assert leftovers(scratch) == []
    assert "RTO trend" in made.ok("drill", "list")
    assert wait_until(lambda: store_guard(cluster) is None, 5)


def store_guard(cluster: ClusterUnderTest) -> str | None:
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        return store.current_run_id(client, cluster.paths)
    finally:
        zk.close(client)


def tamper(target: str) -> str:
    """Flip one byte in the middle of a node part's stored object; returns its name."""
    opened = open_target(parse_target_url(target))
    [name] = [n for n in opened.list("data/") if n.split("/")[-1].startswith("n1")]
    data = bytearray(b"".join(opened.get(name)))
    data[len(data) // 2] ^= 0x01
    opened.put(name, [bytes(data)])
    return name


def alerts(mc: MissionControlServer, cluster: ClusterUnderTest) -> str:
    r = mc.cli("alerts", "list", "--cluster", cluster.name, "--all")
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_a_tampered_object_fails_the_drill_and_raises_the_alert(
    backup_cluster: Callable[..., BackupCluster],
    bucket: Callable[..., str],
    mc: MissionControlServer,
    tmp_path: Path,
) -> None:
    target = bucket("eu-west-1")
    made = backup_cluster(target, nodes=1)
    cluster = made.cluster
    cluster.enroll(mc)
    made.ok("run", "--wait", timeout=90)
    scratch = tmp_path / "scratch"
    setup(made, scratch)
    tamper(target)
    r = made.cli("drill", "run", "--wait", timeout=120)
    assert r.returncode == 1, r  # type: ignore[attr-defined]
    err = r.stderr  # type: ignore[attr-defined]
    assert "failed" in err and "part n1" in err and err.count("\n") == 1, err
    [drill] = drills(made)
    assert drill["status"] == "failed" and drill["rto_seconds"] is None
    assert leftovers(scratch) == []
    assert [row["proven"] for row in made.runs()] == [None]
    assert wait_until(lambda: "drill_failed" in alerts(mc, cluster), 20), cluster.logs()
    assert "part n1" in alerts(mc, cluster)
    # A good backup and drill clear the alert.
    made.ok("run", "--wait", timeout=90)
    assert "ok" in made.ok("drill", "run", "--wait", timeout=120)
    assert leftovers(scratch) == []

    def cleared() -> bool:
        r = mc.cli("alerts", "list", "--cluster", cluster.name)
        return r.returncode == 0 and "drill_failed" not in r.stdout

    assert wait_until(cleared, 20), alerts(mc, cluster)


def queue_drill_while_held(
    client: zk.ZooKeeper, paths: ClusterPaths, by_drill: bool
) -> tuple[str, str, float]:
    """Queue a drill request in one transaction with a check that the guard is still what it was
    read as, once it is held by a drill (`by_drill`) or by a backup run: the request was
    pending while that holder ran. Returns (holder id, request name, time of the request)."""
    drill_store.ensure_layout(client, paths)
    queued: list[tuple[str, str, float]] = []

    def attempt() -> bool:
        found = client.find(paths.backup_current)
        if found is None or is_drill(found[0].decode()) != by_drill:
            return False
        at = time.time()
        body = json.dumps({"by": "test", "at": at}).encode()
        prefix = f"{paths.backup_drill_requests}/{drill_store.REQUEST_PREFIX}"
        unchanged = zk.Check(paths.backup_current, found[1].version)
        outcome = client.commit([unchanged, zk.Create(prefix, body, sequence=True)])
        if outcome.applied:
            created = outcome.results[1]
            assert isinstance(created, str)
            queued.append((found[0].decode(), created.rsplit("/", 1)[1], at))
        return outcome.applied

    assert wait_until(attempt, 60, 0.02), "the guard was never held long enough to queue behind"
    return queued[0]


def test_drills_never_overlap_backups_or_each_other(
    backup_cluster: Callable[..., BackupCluster], bucket: Callable[..., str], tmp_path: Path
) -> None:
    made = backup_cluster(bucket("eu-west-1"), nodes=1)
    cluster = made.cluster
    large = data_dir(cluster, "n1") / "segments" / "large.bin"
    large.write_bytes(os.urandom(40 << 20))  # a drill of this backup takes a while
    made.ok("run", "--wait", timeout=120)
    setup(made, tmp_path / "scratch")
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)

    def settled() -> bool:
        busy = store.current_run_id(client, cluster.paths) is not None
        queued = drill_store.pending_requests(client, cluster.paths) or store.pending_requests(
            client, cluster.paths
        )
        return not busy and not queued

    try:
        # A second drill asked for while the first one holds the guard.
        drill_store.request_drill(client, cluster.paths, by="test")
        first, behind_drill, asked = queue_drill_while_held(client, cluster.paths, by_drill=True)
        assert wait_until(settled, 120, 0.2), cluster.logs()
        # A drill asked for while a backup holds the guard (a small, throttled backup: ~1 s).
        large.unlink()
        made.ok("configure", "--bandwidth-limit", "300KiB/s")
        store.request_run(client, cluster.paths, by="test")
        backup, behind_backup, _ = queue_drill_while_held(client, cluster.paths, by_drill=False)
        assert wait_until(settled, 120, 0.2), cluster.logs()
        runs = store.list_runs(client, cluster.paths)
        found = drill_store.list_drills(client, cluster.paths)
    finally:
        zk.close(client)
    assert [d.status for d in found] == ["ok"] * 3, found
    by_id = {d.id: d for d in found}
    [second] = [d for d in found if behind_drill in d.requests]
    [third] = [d for d in found if behind_backup in d.requests]
    assert len({first, second.id, third.id}) == 3 and backup in {r.id for r in runs}
    finished = by_id[first].finished
    assert finished is not None and by_id[first].started <= asked <= finished
    spans = [(r.started, r.finished, r.id) for r in runs]
    spans += [(d.started, d.finished, d.id) for d in found]
    assert all(end is not None for _s, end, _i in spans), spans
    ordered = sorted(spans, key=lambda s: s[0])
    for (_s, end, one), (start, _e, other) in zip(ordered, ordered[1:], strict=False):
        assert end is not None and end <= start, f"{one} overlaps {other}"
    assert [i for _s, _e, i in ordered][-4:] == [first, second.id, backup, third.id]


def test_no_drill_without_quorum_and_a_leader_change_leaves_no_half_state(
    backup_cluster: Callable[..., BackupCluster], bucket: Callable[..., str], tmp_path: Path
) -> None:
    made = backup_cluster(bucket("eu-west-1"))
    cluster = made.cluster
    (data_dir(cluster, "n3") / "segments" / "large.bin").write_bytes(os.urandom(40 << 20))
    made.ok("run", "--wait", timeout=120)
    scratch = tmp_path / "scratch"
    setup(made, scratch, "--node", "n3")
    leader = cluster.snapshot().leader
    assert leader is not None
    # A leader change during the drill (the drill node is not the leader).
    if leader.node == "n3":
        cluster.processes["n3"].stop(timeout=10)
        cluster.run("n3")
        assert cluster.wait(lambda s: s.leader is not None and len(s.live) == 3, 20)
        leader = cluster.snapshot().leader
        assert leader is not None and leader.node != "n3"
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        drill_store.request_drill(client, cluster.paths, by="test")

        def restoring() -> bool:
            return bool(leftovers(scratch))

        assert wait_until(restoring, 30, 0.05), cluster.logs()
        cluster.processes[leader.node].stop(timeout=10)  # hands leadership over
        assert wait_until(lambda: store.current_run_id(client, cluster.paths) is None, 30)
        [broken] = drill_store.list_drills(client, cluster.paths)
    finally:
        zk.close(client)
    assert broken.status == "failed" and "leader changed" in (broken.reason or ""), broken
    assert wait_until(lambda: leftovers(scratch) == [], 30), leftovers(scratch)
    # Quorum lost: nothing starts; the request waits for quorum.
    survivors = [n for n in ("n1", "n2", "n3") if n != leader.node]
    cluster.processes[survivors[0]].stop(timeout=10)
    assert cluster.wait(lambda s: not s.quorum.ok, 20), cluster.logs()
    r = made.cli("drill", "run")
    assert r.returncode == 0 and "no leader has taken it up" in r.stdout, r  # type: ignore[attr-defined]
    assert len(drills(made)) == 1
    cluster.run(survivors[0])
    assert cluster.wait(lambda s: s.leader is not None, 20), cluster.logs()

    def drilled_again() -> bool:
        found = drills(made)
        return len(found) == 2 and found[-1]["status"] != "running"

    assert wait_until(drilled_again, 120, 0.5), cluster.logs()
    assert drills(made)[-1]["status"] == "ok", drills(made)[-1]
    assert leftovers(scratch) == []

    # The drill node killed mid-drill: the leader fails the drill, and the scratch copy the
    # dead process left is removed when the node starts again.
    cluster.run(leader.node)
    assert cluster.wait(lambda s: len(s.live) == 3, 20), cluster.logs()
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        drill_store.request_drill(client, cluster.paths, by="test")
        assert wait_until(restoring, 30, 0.05), cluster.logs()
        cluster.processes["n3"].kill()
        assert wait_until(lambda: store.current_run_id(client, cluster.paths) is None, 30)
    finally:
        zk.close(client)
    assert drills(made)[-1]["status"] == "failed", drills(made)[-1]
    assert leftovers(scratch) != []  # what the killed process left
    cluster.run("n3")
    assert wait_until(lambda: leftovers(scratch) == [], 30), leftovers(scratch)


def test_bad_drill_settings_are_refused_and_a_drill_without_key_checks_digests(
    backup_cluster: Callable[..., BackupCluster], bucket: Callable[..., str], tmp_path: Path
) -> None:
    made = backup_cluster(bucket("eu-west-1"), nodes=1)
    setup(made, tmp_path / "scratch")
    before = made.config()
    for args, words in (
        (("--scratch", "relative/dir"), "absolute path"),
        (("--key-file", "key.pem"), "absolute path"),
        (("--schedule", "61 * * * *"), "61"),
        (("--node", "N 1"), "drill node"),
        (("--key-file", "/k", "--no-key"), "exclude each other"),
    ):
        r: Any = made.cli("drill", "configure", *args)
        assert r.returncode in (1, 2) and words in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
    assert made.config() == before
    out = made.ok("drill", "configure", "--no-key", "--schedule", "0 4 * * 0")
    assert "digests only" in out
    drill = made.config()["backup"]["drill"]  # type: ignore[index]
    assert drill["key_file"] is None and drill["schedule"] == "0 4 * * 0"
    assert drill["scratch"] == str(tmp_path / "scratch")
    # Without a key the drill proves every stored byte, decrypts nothing, and says so.
    made.ok("run", "--wait", timeout=90)
    out = made.ok("drill", "run", "--wait", timeout=120)
    assert "ok, every stored byte checked" in out, out
    [drill] = drills(made)
    assert not drill["decrypted"] and drill["bytes"] > 300_000 and drill["rto_seconds"] > 0
    assert "digests only" in made.ok("drill", "list")
    assert leftovers(tmp_path / "scratch") == []
