"""Who signed a backup, and what is missing from it, on a real cluster (two of three nodes up)
with an S3 primary: restore refuses a tampered backup and a forged self-signed one planted in
the bucket, writing nothing; it names the node whose data is absent; keygen does not replace an
installed key silently; rotate-key moves the backups to a new key."""

from __future__ import annotations

import io
import json
import re
import subprocess
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import boto3
from backupkit import BackupCluster, Regions, data_dir, fill
from clusterkit import ZK_AUTH, ClusterUnderTest, managed
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backup.engine import (
    BackupContext,
    ResidencyPolicy,
    commit_manifest,
    new_backup_id,
    open_targets,
    write_directory_part,
    write_part,
)
from backup.keys import generate_private_key, public_key_pem, read_public_key
from cluster import zk
from cluster.backups import zkdump
from cluster.backups.signing import encode_public
from cluster.paths import ClusterPaths


def plant_forgery(target: str, public_key: Path, cluster: str, tree: Path) -> str:
    """What anyone with write access to the bucket can make: the customer's public key is not
    secret, so a complete backup, encrypted for it and signed with a key of one's own."""
    forger = Ed25519PrivateKey.generate()
    targets = open_targets(target, [], ResidencyPolicy("EU"))
    now = datetime.now(UTC)
    ctx = BackupContext(new_backup_id(now), read_public_key(public_key))
    config = {
        "geography": "EU",
        "backup": {"signing_public_key": encode_public(forger.public_key())},
    }
    dump = zkdump.encode(
        cluster,
        [
            zkdump.Znode("", b"", False),
            zkdump.Znode("config", json.dumps(config).encode(), False),
            zkdump.Znode("roster", b"", False),
            zkdump.Znode("roster/n1", b'{"datacenter": "evil"}', False),
        ],
    )
    parts = [
        write_part(io.BytesIO(dump), ctx=ctx, part="zookeeper", node="n1", targets=targets),
        write_directory_part(tree, ctx=ctx, part="n1", node="n1", targets=targets),
    ]
    commit_manifest(
        ctx=ctx, cluster=cluster, epoch=99, created=now, parts=parts, targets=targets,
        signing_key=forger,
    )  # fmt: skip
    return ctx.backup_id


def test_trusted_signer_tampering_missing_nodes_and_key_rotation(
    cluster: ClusterUnderTest,
    bucket: Callable[..., str],
    regions: Regions,
    tmp_path: Path,
) -> None:
    target = bucket("eu-west-1")
    for n in ("n1", "n2", "n3"):
        fill(data_dir(cluster, n), n)
        cluster.join(n)
    cluster.run("n1")
    cluster.run("n2")  # n3 stays down
    assert cluster.wait(lambda s: s.leader is not None and len(s.live) == 2, 20), cluster.logs()
    bc = BackupCluster(cluster, tmp_path / "customer.key")
    out = bc.ok("configure", "--geography", "EU", "--target", target)
    found = re.search(r"signed by ([0-9a-f]{64})", out)
    assert found, out
    signer = found.group(1)
    bc.ok("keygen", str(bc.key))
    assert (tmp_path / "customer.key.signers").read_text().startswith(signer)

    r = bc.cli("keygen", str(tmp_path / "other.key"))  # not silently over the installed key
    assert r.returncode == 1 and "--yes" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "other.key").exists()

    r = bc.cli("run", "--wait", timeout=90)
    assert r.returncode == 0 and "no data from n3" in r.stderr, r.stderr + cluster.logs()
    [row] = bc.runs()
    assert row["missing_nodes"] == ["n3"] and row["signer"] == signer
    backup_id = str(row["id"])
    shown = bc.ok("show", backup_id)
    assert "no data from n3" in shown and signer in shown
    assert "(no data from n3)" in bc.ok("list")
    assert signer in bc.ok("verify", backup_id)
    # Each backup names the key it was written for, next to the one configured now.
    written_for = str(row["key_id"])
    assert len(written_for) == 64 and written_for[:16] in bc.ok("list")
    assert f"written for backup key {written_for[:16]}" in bc.ok("verify", backup_id)
    r = bc.cli("verify", backup_id, "--signer", "ab" * 32)
    assert r.returncode == 1 and "not by a signer you trust" in r.stderr

    def restore(
        backup: str, empty_n1: bool = False
    ) -> tuple[subprocess.CompletedProcess[str], str, Path]:
        new = f"r{uuid.uuid4().hex[:12]}"
        dest = tmp_path / new
        if empty_n1:  # a destination that exists, empty, beforehand
            (dest / "n1").mkdir(parents=True, mode=0o750)
        r = managed(
            "--zk", cluster.hosts, "--cluster", new, "--zk-auth", ZK_AUTH,
            "backup", "restore", backup, "--key", str(bc.key), "--target", target,
            f"--data-dir=n1={dest / 'n1'}", f"--data-dir=n2={dest / 'n2'}",
            timeout=60,
        )  # fmt: skip
        return r, new, dest

    def refused(
        r: subprocess.CompletedProcess[str], new: str, dest: Path, words: str, kept: bool = False
    ) -> None:
        assert r.returncode == 1 and words in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
        if kept:  # left in place, empty, with its mode
            assert [p.name for p in dest.iterdir()] == ["n1"] and not any((dest / "n1").iterdir())
            assert oct((dest / "n1").stat().st_mode & 0o777) == "0o750"
        else:
            assert not dest.exists()
        client = zk.connect(cluster.hosts, auth=ZK_AUTH)
        try:
            assert client.exists(ClusterPaths(new).base) is None
        finally:
            zk.close(client)

    # Tampered: one byte of n2's part, on the primary.
    server = regions("eu-west-1")
    bucket_name = target.split("://")[1].split("/")[0]
    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=server.endpoint)
    key = f"backups/data/{backup_id}/n2.part"
    original = s3.get_object(Bucket=bucket_name, Key=key)["Body"].read()
    flipped = bytes([original[200] ^ 0x01])  # one bit: never the byte that was there
    s3.put_object(Bucket=bucket_name, Key=key, Body=original[:200] + flipped + original[201:])
    refused(*restore(backup_id, empty_n1=True), "failed authentication", kept=True)
    s3.put_object(Bucket=bucket_name, Key=key, Body=original)

    # Forged: complete, encrypted for the customer's key, self-signed.
    forged = plant_forgery(
        target, tmp_path / "customer.key.pub", cluster.name, data_dir(cluster, "n3")
    )
    refused(*restore(forged), "not by a signer you trust")

    r, new, dest = restore(backup_id)
    assert r.returncode == 0, r.stderr
    assert "no data from n3" in r.stderr and "backups are paused" in r.stdout
    assert (dest / "n1" / "segments").is_dir() and (dest / "n2" / "segments").is_dir()

    new_key = tmp_path / "new.key"
    out = bc.ok("rotate-key", "--old-key", str(bc.key), "--new-key", str(new_key))
    assert "re-wrapped 1 backup(s)" in out and "1 unreadable" in out, out
    assert "decrypted and authenticated" in bc.ok("verify", backup_id, "--key", str(new_key))
    r = bc.cli("verify", backup_id, "--key", str(bc.key))
    assert r.returncode == 1 and "wrong private key" in r.stderr

    # Someone holding the credential installs a key of their own: every backup still listed
    # is marked as written for another key, and verify says so.
    stranger = public_key_pem(generate_private_key("x25519").public_key()).decode()
    owner = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        data, stat = owner.get(cluster.paths.config)
        config = json.loads(data)
        config["backup"]["public_key"] = stranger
        config["backup"].pop("key_id", None)
        owner.set(cluster.paths.config, json.dumps(config).encode(), stat.version)
    finally:
        zk.close(owner)
    assert "(written for another key than the current one)" in bc.ok("list")
    r = bc.cli("verify", backup_id)
    assert r.returncode == 0 and "not the cluster's current key" in r.stderr, r.stderr
