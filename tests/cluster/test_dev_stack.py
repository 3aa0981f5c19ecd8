"""`managed dev up --detach` / `managed dev down`: the whole local stack, then nothing left."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import psutil
import pytest
from clusterkit import managed

from cluster.dev.stack import DevStack


@pytest.mark.slow
def test_dev_up_detached_then_down_leaves_nothing_running_and_up_again_starts_afresh(
    tmp_path: Path,
) -> None:
    """The whole stack up and down; then `make demo` a second time over the stopped stack: its
    nodes, cluster and enrollment are gone with their ports, so their state is replaced (and
    nothing else in the directory)."""
    state = tmp_path / "stack"
    up = managed("dev", "up", "--detach", "--state-dir", str(state), timeout=300)
    pids = [json.loads(p.read_text())["pid"] for p in (state / "pids").glob("*.pid")]
    try:
        assert up.returncode == 0, up.stderr
        assert "replacing the stopped dev stack" not in up.stderr
        info = json.loads((state / "stack.json").read_text())
        assert len(info["nodes"]) == 3 and info["mission_control"]["url"].startswith("https://")
        assert set(info["s3"]["endpoints"]) == {"eu-west-1", "eu-central-1"}
        assert len(pids) == 9  # 3 ZooKeeper, 3 nodes, Mission Control, 2 S3 endpoints
        env = {"MANAGED_ZK_AUTH": (state / "zk-auth").read_text()}
        # ZooKeeper speaks TLS only, with the stack's own CA: the tests' CA does not verify it.
        refused = managed(
            "--zk", info["zookeeper"], "--cluster", "dev", "cluster", "status", env=env
        )
        assert refused.returncode == 1 and "cannot reach ZooKeeper" in refused.stderr
        env["MANAGED_ZK_CA"] = info["zk_ca_file"]
        # Secrets at rest: the state directory is the owner's alone, and so is each secret.
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        for secret in ("stack.json", "zk-auth", "zk/tls/keystore.pem", "zk/tls/server-key.pem"):
            assert stat.S_IMODE((state / secret).stat().st_mode) == 0o600, secret
        for data in (state / "zk").glob("zk[0-9]"):
            assert stat.S_IMODE(data.stat().st_mode) == 0o700, data
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

    try:
        up = managed("dev", "up", "--detach", "--state-dir", str(state), timeout=300)
        assert up.returncode == 0, up.stderr
        assert "replacing the stopped dev stack" in up.stderr
    finally:
        down = managed("dev", "down", "--state-dir", str(state), timeout=120)
    assert "stopped 9 processes" in down.stdout, down


def test_only_a_stopped_stacks_own_entries_are_removed(tmp_path: Path) -> None:
    state = tmp_path / "mine"
    (state / "zk" / "data").mkdir(parents=True)
    (state / "stack.json").write_text("{}")
    (state / "notes.txt").write_text("kept")
    stack = DevStack(state)
    assert stack.has_stopped_state()
    stack.clear_stopped()
    assert sorted(p.name for p in state.iterdir()) == ["notes.txt"]
    foreign = tmp_path / "not-a-stack"
    (foreign / "logs").mkdir(parents=True)
    DevStack(foreign).clear_stopped()
    assert (foreign / "logs").is_dir()  # no marker: never touched
