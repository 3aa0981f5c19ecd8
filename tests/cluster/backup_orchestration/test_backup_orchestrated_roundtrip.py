"""Configure, keygen, run --wait with 3 nodes to an S3 primary and an in-region mirror, list,
show, verify (with and without the key) and restore into a new empty cluster, bit for bit."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import boto3
from backupkit import BackupCluster, Regions, data_dir
from clusterkit import ClusterUnderTest, managed

from backup.engine import restore_part_bytes
from backup.keys import read_private_key
from backup.targets import open_target, parse_target_url
from cluster import zk
from cluster.backups import zkdump
from cluster.paths import ClusterPaths


def tree_digest(root: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def test_run_list_verify_and_restore_bit_exact(
    backup_cluster: Callable[..., BackupCluster],
    bucket: Callable[..., str],
    regions: Regions,
    tmp_path: Path,
) -> None:
    primary, mirror = bucket("eu-west-1"), bucket("eu-central-1")
    bc = backup_cluster(primary, "--mirror", mirror, "--keep-last", "3")
    cluster = bc.cluster
    assert oct(bc.key.stat().st_mode & 0o777) == "0o600"
    assert "PRIVATE" not in str(bc.config())  # only the public key is in the cluster config

    out = bc.ok("run", "--wait")
    assert " ok: " in out, out
    [run] = bc.runs()
    assert {"id", "status", "started", "finished", "bytes"} <= set(run)
    assert run["status"] == "ok" and run["bytes"] > 3 * 300_000
    assert run["finished"] >= run["started"]
    backup_id = str(run["id"])
    shown = bc.ok("show", backup_id)
    for part in ("n1", "n2", "n3", "zookeeper"):
        assert f"part {part}" in shown
    assert mirror.split("?")[0] in shown

    assert "ciphertext digests checked" in bc.ok("verify", backup_id)
    assert "decrypted and authenticated" in bc.ok("verify", backup_id, "--key", str(bc.key))

    # A flipped byte on the mirror: verify names the part and the frame, exit 1.
    server = regions("eu-central-1")
    bucket_name = mirror.split("://")[1].split("/")[0]
    s3 = boto3.client("s3", region_name="eu-central-1", endpoint_url=server.endpoint)
    key = f"backups/data/{backup_id}/n2.part"
    body = bytearray(s3.get_object(Bucket=bucket_name, Key=key)["Body"].read())
    original = bytes(body)
    body[100] ^= 1
    s3.put_object(Bucket=bucket_name, Key=key, Body=bytes(body))
    r = bc.cli("verify", backup_id, "--key", str(bc.key))
    assert r.returncode == 1 and "part n2, frame 0" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    s3.put_object(Bucket=bucket_name, Key=key, Body=original)

    # What was backed up: the ZooKeeper part, decrypted with the customer's key.
    private = read_private_key(bc.key)
    source = open_target(parse_target_url(primary))
    plain = restore_part_bytes(backup_id, "zookeeper", source=source, private_key=private)
    dumped = zkdump.parse(plain)
    assert any(z.protected and z.path == "secrets/backup-signing-key" for z in dumped.znodes)
    cluster.stop()  # quiesce the data directories before comparing them

    new = f"r{uuid.uuid4().hex[:12]}"
    fresh = {n: tmp_path / "restored" / n for n in ("n1", "n2", "n3")}
    args = [f"--data-dir={n}={d}" for n, d in fresh.items()]
    r = managed(
        "--zk", cluster.hosts, "--cluster", new, "--zk-auth", "operators:test-secret",
        "backup", "restore", backup_id, "--key", str(bc.key), "--target", primary, *args,
        timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    for node, restored in fresh.items():
        before, after = tree_digest(data_dir(cluster, node)), tree_digest(restored)
        for changed in ("logs/node.log", "node.json"):  # logs grew after the backup; relabelled
            before.pop(changed, None)
            after.pop(changed, None)
        assert before == after
        assert f'"cluster": "{new}"' in (restored / "node.json").read_text()
    assert "backups are paused" in r.stdout and "backup resume" in r.stdout
    client = zk.connect(cluster.hosts, auth="operators:test-secret")
    try:
        restored_tree = zkdump.read_tree(client, ClusterPaths(new))
    finally:
        zk.close(client)
    # Bit for bit, but for the two changes a restore makes: backups paused, epoch raised.
    changed = ("config", "epoch")
    assert [z for z in restored_tree if z.path not in changed] == [
        z for z in dumped.znodes if z.path not in changed
    ]
    restored = {z.path: z.data for z in restored_tree}
    original = json.loads(dumped.data_of("config") or b"{}")
    assert json.loads(restored["config"]) == {
        **original,
        "backup": {**original["backup"], "paused": True},
    }
    assert int(restored["epoch"]) >= int(run["epoch"]) + 1

    # A cluster that is not empty is refused, and nothing changes.
    again = tmp_path / "again"
    r = managed(
        "--zk", cluster.hosts, "--cluster", new, "--zk-auth", "operators:test-secret",
        "backup", "restore", backup_id, "--key", str(bc.key), "--target", primary,
        f"--data-dir=n1={again}",
    )  # fmt: skip
    assert r.returncode == 1 and "empty cluster" in r.stderr and not again.exists()


def _unused(_: ClusterUnderTest) -> None:
    return None
