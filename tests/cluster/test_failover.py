"""Leadership on a real 3-server ensemble: election, handover, SIGKILL, SIGSTOP, fencing."""

from __future__ import annotations

import signal
import time

from clusterkit import SESSION_TIMEOUT, ClusterUnderTest, elapsed

from cluster import zk
from cluster.dev.processes import wait_until
from cluster.errors import FencedOut


def _leader(c: ClusterUnderTest) -> str:
    snap = c.snapshot()
    assert snap.leader is not None
    return snap.leader.node


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
            node["live"] and node["health"]["memory_total"] > 0 and node["health"]["cpu_count"] >= 1
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
    cluster: ClusterUnderTest,
) -> None:
    # Timing is measured by benchmarks/failover.py; here: the lock is released, not expired.
    cluster.start_nodes(3)
    old = _leader(cluster)
    epoch = cluster.snapshot().epoch.value
    cluster.processes[old].signal(signal.SIGTERM)
    took = elapsed(lambda: (s := cluster.snapshot()).leader is not None and s.leader.node != old, 5)
    assert took is not None and took < SESSION_TIMEOUT + 8, took
    assert cluster.processes[old].popen.wait(10) == 0
    assert "handed leadership over" in cluster.processes[old].log_tail(50)
    assert wait_until(lambda: cluster.health_summary().get("epoch") == epoch + 1, 3)


def test_sigkill_failover_after_session_expiry(cluster: ClusterUnderTest) -> None:
    # Timing is measured by benchmarks/failover.py; here a bound that holds on a busy machine.
    cluster.start_nodes(3)
    old = _leader(cluster)
    cluster.processes[old].kill()
    took = elapsed(
        lambda: (s := cluster.snapshot()).leader is not None and s.leader.node != old,
        SESSION_TIMEOUT + 10,
    )
    assert took is not None and took < SESSION_TIMEOUT + 8, took


def test_paused_leader_is_fenced_and_rejoins_as_follower(cluster: ClusterUnderTest) -> None:
    cluster.start_nodes(3)
    old = _leader(cluster)
    old_epoch = cluster.snapshot().epoch.value
    proc = cluster.processes[old]
    proc.signal(signal.SIGSTOP)
    try:
        assert cluster.wait(
            lambda s: s.leader is not None and s.leader.node != old, SESSION_TIMEOUT + 10
        )
        new_epoch = cluster.snapshot().epoch.value
        assert new_epoch > old_epoch
    finally:
        proc.signal(signal.SIGCONT)
    # It learns it lost, stops leading, and comes back live as a follower.
    assert wait_until(lambda: (cluster.status(old)[1] or {}).get("role") == "follower", 15)
    assert cluster.wait(lambda s: s.live_member(old) is not None, 15)
    time.sleep(1.5)
    summary = cluster.health_summary()
    assert summary["epoch"] == new_epoch and summary["leader"] != old
    assert "LOST" in proc.log_tail(200) or "fenced" in proc.log_tail(200)


def test_a_write_with_an_old_epoch_fails_the_epoch_check(cluster: ClusterUnderTest) -> None:
    cluster.join("n1")
    cluster.join("n2")
    a = zk.connect(cluster.hosts)
    b = zk.connect(cluster.hosts)
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
