"""ZooKeeper servers failing under a running cluster (a private ensemble per test)."""

from __future__ import annotations

import time

import pytest
from clusterkit import ZK_AUTH, ClusterUnderTest
from kazoo.exceptions import ConnectionClosedError, ConnectionLoss

from cluster import roster, zk
from cluster.dev.processes import wait_until
from cluster.dev.zookeeper import Ensemble
from cluster.errors import ZooKeeperUnavailable

# A command waits 5 s for ZooKeeper (to connect, then for each answer); this bound leaves slack
# for Python's start-up and a busy machine. It checks "fails, does not hang", not speed.
COMMAND_BOUND = 20.0


def test_one_server_down_keeps_working_two_down_stops_leader_work(
    private_ensemble: Ensemble, private_cluster: ClusterUnderTest
) -> None:
    c = private_cluster
    nodes = c.start_nodes(3)
    # A leader exists once start_nodes returns; its first health summary may follow a loop later.
    assert wait_until(lambda: "at" in c.health_summary(), 10), c.logs()
    first, second, third = private_ensemble.servers
    private_ensemble.kill(first)
    epoch = c.snapshot().epoch.value
    stamp = c.health_summary()["at"]
    assert wait_until(lambda: c.health_summary()["at"] > stamp, 10), c.logs()
    assert c.snapshot().leader is not None and c.snapshot().epoch.value >= epoch

    private_ensemble.kill(second)

    def stopped() -> bool:
        statuses = [c.status(n)[1] or {} for n in nodes]
        # The lock holder, cut off, says it may not act (not plain "leader").
        return all(
            s.get("leader_work_active") is False
            and s.get("role") in ("follower", "leader-suspended")
            for s in statuses
        )

    assert wait_until(stopped, 10), c.logs()

    def no_quorum_reported() -> bool:
        statuses = [c.status(n)[1] or {} for n in nodes]
        return all(s.get("quorum", {}).get("ok") is False for s in statuses) and all(
            c.api(n, "/health")[0] == 503 and c.api(n, "/leader")[0] == 503 for n in nodes
        )

    assert wait_until(no_quorum_reported, 10), c.logs()

    private_ensemble.start_server(first)
    private_ensemble.start_server(second)
    private_ensemble.wait_ready(30)

    def acting() -> bool:
        return any((c.status(n)[1] or {}).get("leader_work_active") for n in nodes)

    assert wait_until(acting, 30), c.logs()
    snap = c.snapshot()
    assert snap.leader is not None and len(snap.live) == 3
    # The roster survived intact.
    assert {e.node for e in snap.roster} == set(nodes)


def test_commands_fail_with_one_line_when_the_ensemble_loses_quorum(
    private_ensemble: Ensemble, private_cluster: ClusterUnderTest
) -> None:
    c = private_cluster
    c.join("n1")
    # A client that connected while ZooKeeper was whole: its requests must not wait forever
    # once the ensemble has lost quorum (kazoo queues them while it reconnects).
    client = zk.connect(c.hosts, auth=ZK_AUTH)
    try:
        first, second, _third = private_ensemble.servers
        private_ensemble.kill(first)
        private_ensemble.kill(second)
        t0 = time.monotonic()
        with pytest.raises((ZooKeeperUnavailable, ConnectionLoss, ConnectionClosedError)):
            roster.join(client, c.paths, "n2", "dc1", "127.0.0.1:7002")
        assert time.monotonic() - t0 < COMMAND_BOUND
    finally:
        zk.close(client)

    commands = [
        ("cluster", "status"),
        ("cluster", "status", "--json"),
        ("node", "list"),
        ("node", "join", "n3", "--datacenter", "dc1", "--api-address", "127.0.0.1:7003"),
        ("node", "leave", "n1"),
    ]
    for args in commands:
        t0 = time.monotonic()
        r = c.cli(*args, timeout=COMMAND_BOUND + 10)
        took = time.monotonic() - t0
        assert r.returncode == 1, (args, r)
        assert r.stderr.count("\n") == 1 and "ZooKeeper" in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
        assert took < COMMAND_BOUND, (args, took)


def test_a_dropped_connection_reconnects_to_a_server_and_keeps_the_session(
    zk_ensemble: Ensemble,
) -> None:
    """What a node does when ZooKeeper stays silent (`NodeDaemon._check_silence`): drop the
    connection; kazoo reconnects, to another server if one answers, with the same session."""
    client = zk.make_client(
        zk_ensemble.connect_string, 6.0, ZK_AUTH, ca_file=str(zk_ensemble.ca_file)
    )
    states: list[str] = []
    client.add_listener(states.append)
    client.start(10)
    try:
        session = client.session_id
        assert session
        assert client.drop_connection()
        assert wait_until(lambda: zk.SUSPENDED in states and states[-1] == zk.CONNECTED, 10)
        assert client.session_id == session and client.connected
        assert client.exists("/") is not None  # and it answers
    finally:
        client.close()
    assert not client.drop_connection()  # nothing to drop once closed
