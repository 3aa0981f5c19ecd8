"""The rolling upgrade, for real: a 3-node cluster upgraded node by node to a bumped release
(real wheels made on this machine, signed with `mission-control releases`), the leader last
after a switchover, while `/leader` is probed every 50 ms; then a release made to fail at start
is rolled back by the launcher, the plan stops and Mission Control's alert is queued; then a
release that starts but is never healthy is given up by its node when the deadline passes.
The cluster is enrolled at a real Mission Control throughout: its exchange goes on through every
handover, and nothing is left in the outbox at the end.

The test plays the supervisor (systemd's `Restart=always`): a node process that exits is
started again with the same command."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from clusterkit import TIMING, ZK_AUTH, ClusterUnderTest, http_get
from releasekit import Vendor, stored_plan
from wheelhouse import project_wheel

from cluster import zk
from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import wait_until
from cluster.link.outbox import Outbox
from cluster.upgrade.plan import Plan

NEW, BROKEN, SICK = "0.1.1", "0.1.2", "0.1.3"
# A release that comes up live but whose health probe always fails.
SICK_PREFIX = (
    "import cluster.health as _health\n"
    "_health.HealthProbe.error = property(lambda s: 'sick release', lambda s, v: None)"
)
# A 4 s session rather than the loopback tests' 2 s: a node stops leader work after two thirds
# of its session without an answer from ZooKeeper, and with 2 s (1.3 s) the installs of this
# test (pip, on every node at once) slowed ZooKeeper's answers past that on a loaded CI
# machine, a stop no handover caused. Handovers here are switchovers, not session expiries,
# so the session's length does not lengthen them (the product's default session is 10 s).
ROLLOUT_TIMING = {**TIMING, "MANAGED_SESSION_TIMEOUT": "4"}


class LeaderProbe:
    """Asks every node's `/leader` every 50 ms; records the longest stretch with no 200."""

    def __init__(self, cluster: ClusterUnderTest, nodes: list[str]) -> None:
        self.urls = [f"http://{cluster.addresses[n]}/leader" for n in nodes]
        self.gaps: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _answered(self) -> bool:
        return any(http_get(url, timeout=0.2)[0] == 200 for url in self.urls)

    def _run(self) -> None:
        last_ok = time.monotonic()
        while not self._stop.wait(0.05):
            now = time.monotonic()
            if self._answered():
                if now - last_ok > 0.1:
                    self.gaps.append(now - last_ok)
                last_ok = now

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class Supervisor:
    """Restarts a node process that exited, with the same command (as systemd would)."""

    def __init__(self, cluster: ClusterUnderTest, nodes: list[str]) -> None:
        self.cluster, self.nodes = cluster, nodes
        self.timing = ROLLOUT_TIMING
        self.restarts: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for node in self.nodes:
                if not self.cluster.processes[node].alive():
                    self.restarts.append(node)
                    self.cluster.run(node, timing=self.timing)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _versions(c: ClusterUnderTest) -> dict[str, str]:
    return {m.node: m.version for m in c.snapshot().live}


def _queued(c: ClusterUnderTest) -> int:
    client = zk.connect(c.hosts, auth=ZK_AUTH)
    try:
        return len(Outbox(c.paths).pending(client))
    finally:
        zk.close(client)


def _received(mc: MissionControlServer) -> tuple[set[int], list[str]]:
    """The epochs of the health checks Mission Control applied, and its release alerts."""
    with sqlite3.connect(mc.base / "mc.db") as db:
        epochs = db.execute("SELECT DISTINCT epoch FROM messages WHERE kind = 'health'")
        alerts = db.execute("SELECT detail FROM alerts WHERE kind = 'release_refused'")
        return {int(e) for (e,) in epochs.fetchall()}, [str(d) for (d,) in alerts.fetchall()]


def _wait_plan(c: ClusterUnderTest, state: str, timeout: float) -> Plan:
    assert wait_until(
        lambda: (p := stored_plan(c)) is not None and p.state != "running", timeout, 1.0
    ), c.cli("upgrade", "status").stdout + c.logs()
    plan = stored_plan(c)
    assert plan is not None and plan.state == state, (plan, c.logs())
    return plan


@pytest.mark.slow
@pytest.mark.timeout(720)
def test_rolling_upgrade_keeps_a_leader_and_a_broken_release_is_rolled_back(
    cluster: ClusterUnderTest,
    dependency_wheelhouse: list[Path],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    nodes = cluster.start_nodes(3, timing=ROLLOUT_TIMING)
    base = _versions(cluster)["n1"]
    mc = MissionControlServer(tmp_path / "mc")
    mc.start()
    request.addfinalizer(mc.stop)
    cluster.enroll(mc)
    signed = Vendor(tmp_path / "vendor")
    good = signed.bundle(NEW, files=[project_wheel(tmp_path / "new", NEW), *dependency_wheelhouse])
    r = cluster.cli("upgrade", "trust", str(signed.repo / "metadata" / "1.root.json"))
    assert r.returncode == 0, r.stderr
    leader = cluster.snapshot().leader
    assert leader is not None

    probe, supervisor = LeaderProbe(cluster, nodes), Supervisor(cluster, nodes)
    # Whatever fails, the supervisor stops before the cluster's processes are stopped: else
    # it would start again the nodes the clean-up stops, and leave them running.
    request.addfinalizer(supervisor.stop)
    request.addfinalizer(probe.stop)
    try:
        started = time.monotonic()
        r = cluster.cli("upgrade", "apply", "--bundle", str(good), "--timeout", "90", timeout=60)
        assert r.returncode == 0 and f"upgrade to {NEW} planned" in r.stdout, r.stderr
        again = cluster.cli("upgrade", "apply", "--bundle", str(good), timeout=60)
        assert again.returncode == 1 and "is running" in again.stderr, again.stderr
        plan = _wait_plan(cluster, "done", 420)
        took = time.monotonic() - started
        assert plan.order[-1] == leader.node  # the leader last
        assert _versions(cluster) == dict.fromkeys(nodes, NEW)
        assert (now_leading := cluster.snapshot().leader) and now_leading.node != leader.node
        assert supervisor.restarts == []  # every node re-exec'ed itself: same PIDs
    finally:
        probe.stop()
    print(f"rolling upgrade of 3 nodes: {took:.1f} s; gaps without a leader: {probe.gaps}")
    assert max(probe.gaps, default=0.0) <= 1.0, probe.gaps

    shown = json.loads(cluster.cli("upgrade", "status", "--json").stdout)
    assert shown["plan"]["state"] == "done" and shown["nodes"] == dict.fromkeys(nodes, NEW)
    r = cluster.cli("upgrade", "finalize")
    assert r.returncode == 0 and "finalized" in r.stdout, r.stderr
    data = [cluster.base / "data" / n / "versions" for n in nodes]
    assert wait_until(lambda: not any((d / "previous").is_symlink() for d in data), 20)

    try:
        broken = signed.bundle(
            BROKEN,
            files=[
                project_wheel(tmp_path / "broken", BROKEN, 'raise SystemExit("broken release")'),
                *dependency_wheelhouse,
            ],
        )
        r = cluster.cli("upgrade", "apply", "--bundle", str(broken), "--timeout", "60", timeout=60)
        assert r.returncode == 0, r.stderr
        plan = _wait_plan(cluster, "failed", 300)
        first = plan.order[0]
        assert plan.nodes[first].state == "rolled-back", plan
        assert all(plan.nodes[n].state == "pending" for n in plan.order[1:]), plan
        assert supervisor.restarts == [first]
        assert wait_until(lambda: _versions(cluster) == dict.fromkeys(nodes, NEW), 30)
        _sick_release_is_given_up(cluster, signed, dependency_wheelhouse, tmp_path)
        assert supervisor.restarts == [first]  # the sick node went back by exec
    finally:
        supervisor.stop()
    assert wait_until(lambda: _versions(cluster) == dict.fromkeys(nodes, NEW), 30), cluster.logs()
    assert (cluster.base / "data" / first / "versions" / "current").readlink() == Path(NEW)
    # The exchange went on through every handover: everything queued reached Mission Control
    # (both failed releases' alerts among it), from more than one leader.
    assert wait_until(lambda: _queued(cluster) == 0, 60), cluster.logs()
    epochs, alerts = _received(mc)
    assert len(epochs) >= 2, epochs
    # One open alert per kind, updated by each refusal: the last one's words.
    assert any(SICK in a and "healthy" in a for a in alerts), alerts

    # The failed plans' installs are removed; the running version stays.
    def installed() -> set[str]:
        return {v.name for d in data for v in d.iterdir() if v.is_dir() and not v.is_symlink()}

    assert wait_until(lambda: installed() == {NEW}, 30), installed()
    entries = json.loads(cluster.cli("audit", "log", "--json").stdout)
    actions = [(e["action"], e["subject"]) for e in entries if e["action"].startswith("upgrade.")]
    assert ("upgrade.done", NEW) in actions and ("upgrade.finalized", NEW) in actions
    assert ("upgrade.node_rolled_back", BROKEN) in actions and (
        "upgrade.node_failed",
        SICK,
    ) in actions
    assert actions.count(("upgrade.verified", NEW)) == 1  # the refused second apply wrote nothing
    assert base != NEW


def _sick_release_is_given_up(
    cluster: ClusterUnderTest, signed: Vendor, wheels: list[Path], tmp_path: Path
) -> None:
    """Live on the new version but never healthy: when the deadline passes the leader fails
    the node's step, and the node goes back to the previous version by itself (exec, no
    restart by the supervisor)."""
    sick_wheel = project_wheel(tmp_path / "sick", SICK, SICK_PREFIX)
    sick = signed.bundle(SICK, files=[sick_wheel, *wheels])
    r = cluster.cli("upgrade", "apply", "--bundle", str(sick), "--timeout", "15", timeout=60)
    assert r.returncode == 0, r.stderr
    plan = _wait_plan(cluster, "failed", 300)
    first = plan.order[0]
    assert plan.nodes[first].state == "failed" and "healthy" in plan.reason, plan
    nodes = list(plan.order)
    assert wait_until(lambda: _versions(cluster) == dict.fromkeys(nodes, NEW), 60), cluster.logs()
    assert (cluster.base / "data" / first / "versions" / "current").readlink() == Path(NEW)
