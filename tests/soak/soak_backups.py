"""Whether a backup verifies and restores bit-exact: what `backups_sound` is judged on.

Used right after a backup ends (by the workload, while its S3 objects surely exist) and after
the soak (for every backup listed ok whose endpoints were not restarted since).
"""

from __future__ import annotations

import json

from soak_stack import PLANTED, PLANTED_ZNODE, ZK_AUTH, SoakStack, planted_bytes

from cluster import zk
from cluster.paths import ClusterPaths


def verify_and_restore(stack: SoakStack, rid: str) -> str | None:
    """None when backup `rid` verifies with the key and restores bit-exact (every node's
    planted file and the planted znode of its `zookeeper` part), else why not."""
    done = stack.cli("backup", "verify", rid, "--key", str(stack.key_file), timeout=120)
    if done.returncode != 0:
        return f"verify: {done.stderr.strip()}"
    shown = stack.cli("backup", "show", rid, "--json", timeout=60)
    if shown.returncode != 0:
        return f"show: {shown.stderr.strip()}"
    record = json.loads(shown.stdout)
    nodes = sorted({p["node"] for p in record["parts"] if p.get("node")})
    nodes = [n for n in nodes if n != "zookeeper"]
    parent = stack.base / "restored"
    parent.mkdir(parents=True, exist_ok=True)
    number = sum(1 for _ in parent.iterdir())
    into = parent / f"{number}-{rid}"
    into.mkdir()
    dirs = [f"--data-dir={n}={into / n}" for n in nodes]
    cluster = f"soak-restored-{number}"
    restored = stack.cli(
        "--cluster",
        cluster,
        "backup",
        "restore",
        rid,
        "--key",
        str(stack.key_file),
        "--target",
        str(record["targets"][0]),
        *dirs,
        timeout=180,
    )
    if restored.returncode != 0:
        return f"restore: {restored.stderr.strip()}"
    for node in nodes:
        planted = into / node / PLANTED
        if planted.exists() and planted.read_bytes() != planted_bytes(stack.seed, node):
            return f"restore: {node}/{PLANTED} differs from what was written"
        if not planted.exists() and node in {f"n{i}" for i in range(1, 6)}:
            return f"restore: {node}/{PLANTED} missing"
    return _restored_znode_problem(stack, cluster)


def _restored_znode_problem(stack: SoakStack, cluster: str) -> str | None:
    """None when restored `cluster` holds the planted znode byte for byte, else why not."""
    path = f"{ClusterPaths(cluster).base}/{PLANTED_ZNODE}"
    try:
        client = zk.connect(stack.hosts, auth=ZK_AUTH, timeout=20)
    except Exception as e:
        return f"restore: cannot read ZooKeeper to compare {path}: {e!r}"
    try:
        found = client.find(path, timeout=20)
    except Exception as e:
        return f"restore: cannot read {path}: {e!r}"
    finally:
        zk.close(client)
    if found is None:
        return f"restore: {path} missing (the zookeeper part)"
    if found[0] != planted_bytes(stack.seed, "zookeeper"):
        return f"restore: {path} differs from what was written (the zookeeper part)"
    return None
