"""A starting node rides out ZooKeeper trouble instead of exiting.

A data center coming back restarts its ZooKeeper servers and its nodes at once: a node's first
calls can time out, or its first session can be lost, while the server it reached is still
syncing with the ensemble. The node must keep trying until it is registered (only a node missing
from the roster is fatal). The daemon runs in this process against the real ensemble; its first
two ZooKeeper calls fail as they would when they time out.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from clusterkit import ZK_AUTH, ClusterUnderTest

from cluster import zk
from cluster.config import NodeSettings
from cluster.errors import MembershipError, ZooKeeperUnavailable
from cluster.node import NodeDaemon


def _settings(c: ClusterUnderTest, node: str, tmp_path: Path) -> NodeSettings:
    return NodeSettings(
        zk=c.hosts,
        cluster=c.name,
        node=node,
        data_dir=tmp_path / node,
        session_timeout=2.0,
        loop_interval=0.5,
        retry_timeout=0.7,
        zk_auth=ZK_AUTH,
    )


def test_a_starting_node_retries_zookeeper_calls_that_time_out(
    cluster: ClusterUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster.join("n1")
    real = zk.ensure_cluster
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise ZooKeeperUnavailable("ZooKeeper call timed out")
        real(*args, **kwargs)

    monkeypatch.setattr(zk, "ensure_cluster", flaky)
    daemon = NodeDaemon(_settings(cluster, "n1", tmp_path))

    async def scenario() -> bool:
        task = asyncio.create_task(daemon.run())
        try:
            for _ in range(150):  # 15 s
                if task.done():
                    task.result()  # an exit is the failure: show why
                live = await asyncio.to_thread(lambda: {m.node for m in cluster.snapshot().live})
                if "n1" in live:
                    return True
                await asyncio.sleep(0.1)
            return False
        finally:
            daemon.request_stop()
            await asyncio.wait_for(task, 15)

    assert asyncio.run(scenario())
    assert len(calls) >= 3


def test_a_node_missing_from_the_roster_still_exits_at_once(
    cluster: ClusterUnderTest, tmp_path: Path
) -> None:
    cluster.join("n1")
    daemon = NodeDaemon(_settings(cluster, "n9", tmp_path))
    with pytest.raises(MembershipError, match="not in the roster"):
        asyncio.run(asyncio.wait_for(daemon.run(), 15))
