"""Roster changes are compare-and-set, on a real ensemble."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from clusterkit import ZK_AUTH, ClusterUnderTest

from cluster import roster, zk
from cluster.errors import MembershipError
from cluster.model import ClusterSnapshot
from cluster.zk import ZooKeeper


@pytest.fixture
def clients(cluster: ClusterUnderTest) -> Iterator[tuple[ZooKeeper, ZooKeeper]]:
    a, b = zk.connect(cluster.hosts, auth=ZK_AUTH), zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        yield a, b
    finally:
        zk.close(a)
        zk.close(b)


def test_a_join_between_a_leaves_check_and_its_commit_makes_it_check_again(
    cluster: ClusterUnderTest,
    clients: tuple[ZooKeeper, ZooKeeper],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours, theirs = clients
    paths = cluster.paths
    for i, node in enumerate(("a", "b", "c", "x")):
        roster.join(ours, paths, node, "dc1", f"127.0.0.1:{7100 + i}")
    for node in ("a", "b"):  # a and b are up
        ours.create(paths.live_member(node), b"{}", ephemeral=True)
    # Alone, removing x is fine: a, b, c need 2 and have 2. But if y joins meanwhile (down),
    # a, b, c, y need 3: the leave must see that and refuse.
    real = zk.read_snapshot
    raced: list[bool] = []

    def read_then_race(*args: Any, **kwargs: Any) -> ClusterSnapshot:
        snap = real(*args, **kwargs)
        if not raced:
            raced.append(True)  # first, so the racing join's own read is not intercepted
            assert roster.join(theirs, paths, "y", "dc1", "127.0.0.1:7199")
        return snap

    monkeypatch.setattr(zk, "read_snapshot", read_then_race)
    with pytest.raises(MembershipError, match="could not form quorum"):
        roster.leave(ours, paths, "x", force=False)
    monkeypatch.undo()
    assert raced == [True]
    assert {e.node for e in cluster.snapshot().roster} == {"a", "b", "c", "x", "y"}


def test_concurrent_joins_of_one_address_let_only_one_in(
    cluster: ClusterUnderTest,
    clients: tuple[ZooKeeper, ZooKeeper],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours, theirs = clients
    paths = cluster.paths
    zk.ensure_cluster(ours, paths)
    real = zk.read_snapshot
    raced: list[bool] = []

    def read_then_race(*args: Any, **kwargs: Any) -> ClusterSnapshot:
        snap = real(*args, **kwargs)
        if not raced:
            raced.append(True)
            assert roster.join(theirs, paths, "p", "dc1", "127.0.0.1:7200")
        return snap

    monkeypatch.setattr(zk, "read_snapshot", read_then_race)
    with pytest.raises(MembershipError, match="already used by node p"):
        roster.join(ours, paths, "q", "dc1", "127.0.0.1:7200")
    monkeypatch.undo()
    assert [e.node for e in cluster.snapshot().roster] == ["p"]
