"""ZooKeeper servers failing under a running cluster (a private ensemble per test)."""

from __future__ import annotations

from clusterkit import ClusterUnderTest

from cluster.dev.processes import wait_until
from cluster.dev.zookeeper import Ensemble


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
        return all(s.get("leader_work_active") is False for s in statuses)

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
