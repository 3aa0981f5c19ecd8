"""Monitoring data survives a backup and a restore into a new cluster: the store travels in the
node's part, environments and tokens in the ZooKeeper part, so the same read token reads the
same rows from the restored node; a forget asked after the backup is named by `data forget`."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from clusterkit import ZK_AUTH, ClusterUnderTest, managed
from datakit import DataCluster, beacon, load


def test_data_survives_backup_and_restore(cluster: ClusterUnderTest, tmp_path: Path) -> None:
    dc = DataCluster.create(cluster)
    dc.start(1)
    dc.cli("env", "create", "prod")
    dc.cli("env", "app", "prod", "shop", "--user-tags")
    ingest = dc.cli("token", "create", "--env", "prod", "--scope", "ingest").strip()
    reader = dc.cli("token", "create", "--scope", "read", "--for", "alice").strip()
    dc.cli("data", "sensitive-data", "grant", "alice")
    for _ in range(100):  # the node picks new tokens up within about a second
        status, _ = dc.request("n1", "/v1/capture-rules", token=reader)
        if status == 403:
            break
    body = beacon("shop", "sess-kept-0001", load("https://shop/"), user_tag="ann@example.com")
    assert dc.request("n1", "/v1/beacon", body, token=ingest)[0] == 204
    logs = b'{"message": "card 4111111111111111 declined"}\n{"message": "retry ok"}'
    assert dc.request("n1", "/v1/logs", logs, token=ingest)[0] == 200

    def read_all() -> dict[str, Any]:
        return {k: dc.read(k, "--env", "prod", token=reader)["rows"] for k in ("sessions", "logs")}

    # The sensitive-data grant reaches the node within about a second, as tokens do.
    before = read_all()
    deadline = time.monotonic() + 15
    while before["sessions"][0]["user_tag"] == "*****" and time.monotonic() < deadline:
        time.sleep(0.2)
        before = read_all()
    assert before["sessions"][0]["user_tag"] == "ann@example.com"
    assert len(before["sessions"]) == 1 and len(before["logs"]) == 2

    key = tmp_path / "customer.key"
    target = f"file://{tmp_path / 'backups'}"
    dc.cli("backup", "configure", "--geography", "EU", "--target", target)
    dc.cli("backup", "keygen", str(key))
    out = dc.cli("backup", "run", "--wait")
    assert " ok: " in out, out
    backup_id = json.loads(dc.cli("backup", "list", "--json"))[0]["id"]
    out = dc.cli("data", "forget", "--env", "prod", "--user-tag", "ann@example.com", "--yes")
    assert "1 existing backup(s) may still hold these sessions" in out and backup_id in out
    cluster.stop()

    new = ClusterUnderTest(cluster.hosts, f"r{uuid.uuid4().hex[:12]}", tmp_path / "restored")
    restored_dir = tmp_path / "restored" / "data" / "n1"
    r = managed("--zk", cluster.hosts, "--cluster", new.name, "--zk-auth", ZK_AUTH,
                "backup", "restore", str(backup_id), "--key", str(key), "--target", target,
                f"--data-dir=n1={restored_dir}", timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    restored = DataCluster(new, dc.tls)
    try:
        new.addresses["n1"] = cluster.addresses["n1"]
        restored.run("n1", data_dir=restored_dir)
        restored.wait_serving(["n1"])
        # The same read token (restored with the cluster), the same rows; the forget asked
        # after the backup is not in the restored cluster's jobs: ann's session is back.
        after = {k: restored.read(k, "--env", "prod", token=reader)["rows"] for k in before}
        strip = lambda rows: [{k: v for k, v in r.items() if k != "node"} for r in rows]  # noqa: E731
        assert strip(after["sessions"]) == strip(before["sessions"])
        assert strip(after["logs"]) == strip(before["logs"])
        assert after["sessions"][0]["user_tag"] == "ann@example.com"
        assert "4111111111111111" not in json.dumps(after)
    finally:
        new.stop()
