"""Maintenance mode on a real cluster: a scheduled backup does not start while it is on, status
shows it, and the schedule runs again once it is off. A manual run is still served."""

from __future__ import annotations

import json
from pathlib import Path

from backupkit import configure, data_dir, fill, runs
from clusterkit import ZK_AUTH, ClusterUnderTest

from cluster import zk
from cluster.backups import store
from cluster.dev.processes import wait_until


def _note(cluster: ClusterUnderTest) -> str:
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        mark = store.read_mark(client, cluster.paths)
    finally:
        zk.close(client)
    return mark.note if mark else ""


def test_maintenance_pauses_scheduled_backups(cluster: ClusterUnderTest, tmp_path: Path) -> None:
    for n in ("n1", "n2", "n3"):
        fill(data_dir(cluster, n), n, size=20_000)
    nodes = cluster.start_nodes(3)
    r = cluster.cli("maintenance", "on", "--reason", "storage work")
    assert r.returncode == 0 and "now in maintenance" in r.stdout, r.stderr
    assert "was already in" in cluster.cli("maintenance", "on").stdout  # idempotent
    configure(cluster, f"file://{tmp_path}/target", schedule="*/2 * * * * *")

    # Fires come and are skipped: no scheduled run starts.
    assert wait_until(lambda: _note(cluster) == "maintenance: skipped", 20, 0.2), cluster.logs()
    assert wait_until(lambda: _note(cluster) == "maintenance: skipped", 5, 0.2)
    assert [r for r in runs(cluster) if r.trigger != "manual"] == []

    status = cluster.cli("cluster", "status")
    assert "maintenance ON" in status.stdout and "storage work" in status.stdout, status.stdout
    shown = json.loads(cluster.cli("maintenance", "--json").stdout)
    assert shown["maintenance"] is True and shown["by"] == ZK_AUTH.split(":")[0]
    assert all(cluster.status(n)[1]["maintenance"] is True for n in nodes)

    r = cluster.cli("maintenance", "off")
    assert r.returncode == 0 and "now out of maintenance" in r.stdout, r.stderr

    def scheduled_ran() -> bool:
        return any(r.trigger == "schedule" and r.status == "ok" for r in runs(cluster))

    assert wait_until(scheduled_ran, 40, 0.3), cluster.logs()
    assert "maintenance ON" not in cluster.cli("cluster", "status").stdout
    actions = [e["action"] for e in json.loads(cluster.cli("audit", "log", "--json").stdout)]
    assert actions.count("cluster.maintenance.on") == 1
    assert actions.count("cluster.maintenance.off") == 1
