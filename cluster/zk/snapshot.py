"""A cluster's subtree in ZooKeeper: created once, read into an immutable `ClusterSnapshot`.

Guarantees:
- `ensure_cluster` is idempotent and safe to race: every persistent znode of the cluster exists
  afterwards, with its initial value if it was created now.
- A snapshot is read with requests issued in parallel (one round trip per level of the tree),
  each bounded by the timeout given.

Does not guarantee: that a snapshot is a consistent cut across znodes (ZooKeeper has no
multi-read); decisions built on it are re-checked by the fenced write itself.
"""

from __future__ import annotations

import json
from typing import Any

from cluster.model import ClusterSnapshot, Epoch, Leader, LiveMember, RosterEntry, Switchover
from cluster.paths import ClusterPaths
from cluster.zk.client import Watcher, ZooKeeper


def ensure_path(zk: ZooKeeper, path: str, timeout: float = 5.0) -> None:
    """Create `path` and its parents if missing (idempotent, safe to race, bounded)."""
    zk.ensure_path(path, timeout=timeout)


def ensure_cluster(zk: ZooKeeper, paths: ClusterPaths, timeout: float = 5.0) -> None:
    """Create the cluster's persistent znodes if missing (idempotent, safe to race)."""
    for path in paths.persistent_nodes():
        ensure_path(zk, path, timeout)
    initial_values = (
        (paths.epoch, b"0"),
        (paths.config, b"{}"),
        (paths.health, b"{}"),
        (paths.mission_control, b"{}"),
        (paths.switchover, b"{}"),  # exists, so a watch on it sees the first request
    )
    for path, initial in initial_values:
        zk.create_if_missing(path, initial, timeout)


def parse_config(data: bytes | None) -> dict[str, Any]:
    """The cluster config znode's content as a dict: {} when empty, not JSON or not an object
    (readers of the config tolerate a damaged one; writers validate before writing)."""
    try:
        loaded = json.loads(data or b"{}")
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def read_snapshot(
    zk: ZooKeeper,
    paths: ClusterPaths,
    timeout: float = 5.0,
    watch: Watcher | None = None,
) -> ClusterSnapshot:
    """Read roster, live members, leader, epoch, config and a switchover request; `watch` fires
    on any change of them but the epoch.

    Raises `ZooKeeperUnavailable` when ZooKeeper cannot answer, its errors otherwise.
    """
    roster_req = zk.request_children(paths.roster, watch, timeout)
    live_req = zk.request_children(paths.live, watch, timeout)
    leader_req = zk.request_get(paths.leader, watch, timeout)
    epoch_req = zk.request_get(paths.epoch, None, timeout)
    # Watched: draining the leader or a switchover request must act at once, not next loop.
    config_req = zk.request_get(paths.config, watch, timeout)
    switchover_req = zk.request_get(paths.switchover, watch, timeout)
    roster_ids = roster_req.get_or_none() or []
    live_ids = live_req.get_or_none() or []
    roster_data = [zk.request_get(paths.roster_member(n), None, timeout) for n in roster_ids]
    live_data = [zk.request_get(paths.live_member(n), None, timeout) for n in live_ids]

    roster = []
    for node, req in zip(roster_ids, roster_data, strict=True):
        got = req.get_or_none()
        if got is not None:
            roster.append(RosterEntry.from_node(node, got[0]))
    live = []
    for node, req in zip(live_ids, live_data, strict=True):
        got = req.get_or_none()
        if got is not None:
            live.append(LiveMember.from_node(node, got[0], got[1].ephemeral_owner))
    leader_got = leader_req.get_or_none()
    leader = Leader.from_node(leader_got[0], leader_got[1].ephemeral_owner) if leader_got else None
    epoch_got = epoch_req.get_or_none()
    epoch = Epoch.from_node(epoch_got[0], epoch_got[1].version) if epoch_got else Epoch(0, -1)
    config_got = config_req.get_or_none()
    config = parse_config(config_got[0]) if config_got else {}
    switchover_got = switchover_req.get_or_none()
    return ClusterSnapshot(
        cluster=paths.cluster,
        roster=tuple(sorted(roster, key=lambda e: e.node)),
        live=tuple(sorted(live, key=lambda m: m.node)),
        leader=leader,
        epoch=epoch,
        config=config,
        switchover=Switchover.from_node(switchover_got[0]) if switchover_got else None,
    )
