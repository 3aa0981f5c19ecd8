"""Leadership on a real 3-server ensemble: election, handover, SIGKILL, SIGSTOP, fencing,
and a leader removed from the roster.

"Acting" below means: another node holds the lock *and* has written the health summary with
the new epoch. The bounds are correctness bounds with slack for a busy machine; the speed
itself is measured by benchmarks/failover.py.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from typing import Any

from clusterkit import SESSION_TIMEOUT, ZK_AUTH, ClusterUnderTest
from zk_txnlog import Transaction, transactions

from cluster import zk
from cluster.dev.processes import wait_until
from cluster.dev.zookeeper import Ensemble
from cluster.errors import FencedOut
from cluster.zk import ZooKeeper

# A handover must beat the session's expiry by far (it takes about 0.2 s here); the test
# below also checks that it was a handover, from ZooKeeper's transaction log.
GRACEFUL_BOUND = SESSION_TIMEOUT
SIGKILL_BOUND = SESSION_TIMEOUT + 2 + 4  # the issue asks for session timeout + 2 s


def _leader(c: ClusterUnderTest) -> str:
    snap = c.snapshot()
    assert snap.leader is not None
    return snap.leader.node


def acting_within(c: ClusterUnderTest, old: str, old_epoch: int, bound: float) -> str:
    """Wait until a node other than `old` is acting with an epoch above `old_epoch`."""
    client = zk.connect(c.hosts, auth=ZK_AUTH)
    found: list[str] = []

    def check() -> bool:
        snap = zk.read_snapshot(client, c.paths)
        if snap.leader is None or snap.leader.node == old or snap.epoch.value <= old_epoch:
            return False
        summary = _summary(client, c)
        if (summary.get("leader"), summary.get("epoch")) != (snap.leader.node, snap.epoch.value):
            return False
        found.append(snap.leader.node)
        return True

    try:
        ok = wait_until(check, bound, 0.02)
    finally:
        zk.close(client)
    assert ok, f"no node acting within {bound:g} s:\n{c.logs()}"
    return found[-1]


def _summary(client: ZooKeeper, c: ClusterUnderTest) -> dict[str, Any]:
    data, _ = client.get(c.paths.health)
    loaded = json.loads(data or b"{}")
    return loaded if isinstance(loaded, dict) else {}


def test_leader_publishes_a_fenced_health_summary(cluster: ClusterUnderTest) -> None:
    cluster.start_nodes(3)
    snap = cluster.snapshot()
    assert snap.leader is not None

    def complete() -> bool:
        s = cluster.health_summary()
        nodes = s.get("nodes", {})
        return s.get("epoch") == snap.epoch.value and all(n.get("live") for n in nodes.values())

    # The leader refreshes the summary every loop; wait for one written after all were live.
    assert wait_until(complete, 5), cluster.health_summary()
    summary = cluster.health_summary()
    assert summary["leader"] == snap.leader.node
    assert set(summary["nodes"]) == {"n1", "n2", "n3"}
    for node in summary["nodes"].values():
        assert (
            node["live"]
            and node["health"]["memory_total_bytes"] > 0
            and node["health"]["cpu_cores"] >= 1
        )
    code, body = cluster.status(snap.leader.node)
    assert code == 200 and body["role"] == "leader" and body["leader_work_active"]
    assert cluster.api(snap.leader.node, "/leader")[0] == 200
    follower = next(n for n in ("n1", "n2", "n3") if n != snap.leader.node)
    assert cluster.api(follower, "/leader")[0] == 503
    assert cluster.api(follower, "/health")[0] == 200
    # A follower's metrics reflect its own latest loop, which may lag the join by one.
    assert wait_until(
        lambda: "managed_quorum_ok 1.0" in str(cluster.api(follower, "/metrics")[1]), 10
    )


def test_graceful_stop_hands_over_without_waiting_for_session_expiry(
    cluster: ClusterUnderTest, zk_ensemble: Ensemble
) -> None:
    cluster.start_nodes(3)
    before = cluster.snapshot()
    assert before.leader is not None and before.leader.session_id
    old, session = before.leader.node, before.leader.session_id
    cluster.processes[old].signal(signal.SIGTERM)
    new = acting_within(cluster, old, before.epoch.value, GRACEFUL_BOUND)
    assert new != old
    assert cluster.processes[old].popen.wait(10) == 0

    # The evidence is ZooKeeper's own record, not the node's log line: a session that closes
    # removes its ephemeral znodes too, as fast, but only after the leader services stopped.
    # A handover removes the lock first, itself, in a transaction fenced by the epoch.
    txns: list[Transaction] = []

    def closed() -> bool:
        txns[:] = [t for t in transactions(zk_ensemble.servers[0]) if t.session == session]
        return any(t.kind == "closeSession" for t in txns)

    assert wait_until(closed, 20, 0.5), "the old leader's session never closed"
    leader, epoch = re.escape(cluster.paths.leader), re.escape(cluster.paths.epoch)
    fenced_delete = re.compile(rf"check:[^/]*{epoch}.*delete:[^/]*{leader}(?![\w/-])")
    handover = [t for t in txns if t.kind == "multi" and fenced_delete.search(t.text)]
    (close,) = [t for t in txns if t.kind == "closeSession"]
    assert handover, f"no fenced handover by session {session:#x}:\n" + "\n".join(
        t.text for t in txns[-5:]
    )
    assert handover[0].zxid < close.zxid
    assert not re.search(rf"'{leader}[,}}]", close.text), close.text


def test_sigkill_failover_after_session_expiry(cluster: ClusterUnderTest) -> None:
    cluster.start_nodes(3)
    old = _leader(cluster)
    epoch = cluster.snapshot().epoch.value
    cluster.processes[old].kill()
    acting_within(cluster, old, epoch, SIGKILL_BOUND)


class SummaryWatch:
    """Records every (epoch, leader) of the health summary, polling in a thread."""

    def __init__(self, c: ClusterUnderTest) -> None:
        self.seen: list[tuple[int, str]] = []
        self._client = zk.connect(c.hosts, auth=ZK_AUTH)
        self._c = c
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            s = _summary(self._client, self._c)
            entry = (int(s.get("epoch", 0)), str(s.get("leader", "")))
            if not self.seen or self.seen[-1] != entry:
                self.seen.append(entry)
            time.sleep(0.02)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        zk.close(self._client)


def test_paused_leader_is_fenced_and_rejoins_as_follower(cluster: ClusterUnderTest) -> None:
    cluster.start_nodes(3)
    old = _leader(cluster)
    old_epoch = cluster.snapshot().epoch.value
    assert wait_until(lambda: cluster.health_summary().get("epoch") == old_epoch, 5)
    proc = cluster.processes[old]
    watch = SummaryWatch(cluster)
    try:
        proc.signal(signal.SIGSTOP)
        try:
            new = acting_within(cluster, old, old_epoch, SIGKILL_BOUND)
            new_epoch = cluster.snapshot().epoch.value
        finally:
            proc.signal(signal.SIGCONT)
        # It learns it lost, stops leading, and comes back live as a follower.
        assert wait_until(lambda: (cluster.status(old)[1] or {}).get("role") == "follower", 15), (
            cluster.logs()
        )
        assert cluster.wait(lambda s: s.live_member(old) is not None, 15), (
            f"{old} not live again: {cluster.status(old)[1]}\n{cluster.logs()}"
        )
        time.sleep(1.5)  # a few of its loops as a follower: none may write
    finally:
        watch.close()
    epochs = [e for e, _ in watch.seen]
    assert epochs == sorted(epochs), watch.seen  # the summary's epoch never goes back
    # Once the new epoch is written, the old leader never writes again.
    after = watch.seen[next(i for i, (e, _) in enumerate(watch.seen) if e >= new_epoch) :]
    assert after[0] == (new_epoch, new) and all(leader != old for _, leader in after), watch.seen
    log = proc.log_tail(300)
    assert "LOST" in log or "fenced" in log, log


def test_a_leader_removed_from_the_roster_releases_the_lock(cluster: ClusterUnderTest) -> None:
    cluster.start_nodes(3)
    old = _leader(cluster)
    epoch = cluster.snapshot().epoch.value
    r = cluster.cli("node", "leave", old, "--force")
    assert r.returncode == 0 and "left" in r.stdout, r.stderr
    # Well before its session could end (it is alive and connected), another node acts.
    new = acting_within(cluster, old, epoch, GRACEFUL_BOUND)
    assert new != old
    assert cluster.processes[old].alive()
    assert "releasing it" in cluster.processes[old].log_tail(100)
    snap = cluster.snapshot()
    assert snap.member(old) is None and snap.quorum.ok
    assert wait_until(lambda: (cluster.status(old)[1] or {}).get("role") == "follower", 5)


def test_a_write_with_an_old_epoch_fails_the_epoch_check(cluster: ClusterUnderTest) -> None:
    cluster.join("n1")
    cluster.join("n2")
    a = zk.connect(cluster.hosts, auth=ZK_AUTH)
    b = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        zk.ensure_cluster(a, cluster.paths)
        fence_a = zk.acquire_leadership(
            a, cluster.paths, "n1", zk.read_snapshot(a, cluster.paths).epoch, 0
        )
        assert fence_a is not None
        zk.fenced_commit(
            a, cluster.paths, fence_a, [zk.SetData(cluster.paths.health, b'{"by":"a"}')]
        )
        # a's lock goes away (as when its session expires); b takes over and bumps the epoch
        a.delete(cluster.paths.leader)
        b.sync(cluster.paths.epoch)  # b may sit on a server that has not seen it yet
        fence_b = zk.acquire_leadership(
            b, cluster.paths, "n2", zk.read_snapshot(b, cluster.paths).epoch, 0
        )
        assert fence_b is not None and fence_b.epoch == fence_a.epoch + 1
        try:
            zk.fenced_commit(
                a, cluster.paths, fence_a, [zk.SetData(cluster.paths.health, b'{"by":"stale"}')]
            )
            raise AssertionError("stale write went through")
        except FencedOut:
            pass
        assert b.get(cluster.paths.health)[0] == b'{"by":"a"}'
    finally:
        zk.close(a)
        zk.close(b)
