"""`managed dev up --detach` / `managed dev down`: the whole local stack, then nothing left."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
from clusterkit import managed


def test_dev_up_detached_then_down_leaves_nothing_running(tmp_path: Path) -> None:
    state = tmp_path / "stack"
    up = managed("dev", "up", "--detach", "--state-dir", str(state), timeout=300)
    pids = [json.loads(p.read_text())["pid"] for p in (state / "pids").glob("*.pid")]
    try:
        assert up.returncode == 0, up.stderr
        info = json.loads((state / "stack.json").read_text())
        assert len(info["nodes"]) == 3 and info["mission_control"]["url"].startswith("https://")
        assert set(info["s3"]["endpoints"]) == {"eu-west-1", "eu-central-1"}
        assert len(pids) == 9  # 3 ZooKeeper, 3 nodes, Mission Control, 2 S3 endpoints
        env = {"MANAGED_ZK_AUTH": (state / "zk-auth").read_text()}
        status = managed(
            "--zk", info["zookeeper"], "--cluster", "dev", "cluster", "status", "--json", env=env
        )
        doc = json.loads(status.stdout)
        assert doc["quorum"]["ok"] and doc["leader"]
        again = managed("dev", "up", "--detach", "--state-dir", str(state))
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        down = managed("dev", "down", "--state-dir", str(state), timeout=120)
    assert down.returncode == 0 and "stopped 9 processes" in down.stdout, down
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert managed("dev", "down", "--state-dir", str(state)).stdout.strip() == "nothing was running"
