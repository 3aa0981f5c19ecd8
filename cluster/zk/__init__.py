"""The cluster's one boundary to ZooKeeper (Patroni's `dcs/` idea; only this package imports kazoo).

- `client`: `ZooKeeper`, one session with typed, bounded requests (`get`, `children`, `exists`,
  `create`, `set`, `delete`, `commit`, ...), `connect` for commands and `make_client` for the
  daemon; `acl_for`, the one place every znode create passes through.
- `ops`: the one vocabulary of transaction operations (`Create`, `SetData`, `Delete`, `Check`)
  and a transaction's `Outcome`.
- `errors`: ZooKeeper's errors the cluster catches; `acl`: ACL entries, built and read.
- `snapshot`: the cluster's subtree created and read into a `ClusterSnapshot`.
- `fencing`: leadership taken with an epoch bump, and writes fenced by it.

Only `client`, `errors` and `acl` import kazoo (`tests/architecture/test_zookeeper_boundary.py`).
"""

from __future__ import annotations

from cluster.zk.client import (
    CONNECTED,
    LOST,
    SUSPENDED,
    ConnectionState,
    Lock,
    Pending,
    Watcher,
    ZooKeeper,
    close,
    connect,
    make_client,
)
from cluster.zk.fencing import Applied, Fence, acquire_leadership, advance_epoch, fenced_commit
from cluster.zk.ops import Check, Create, Delete, Op, OpFailed, Outcome, SetData, Stat
from cluster.zk.snapshot import ensure_cluster, ensure_path, parse_config, read_snapshot

__all__ = [
    "CONNECTED",
    "LOST",
    "SUSPENDED",
    "Applied",
    "Check",
    "ConnectionState",
    "Create",
    "Delete",
    "Fence",
    "Lock",
    "Op",
    "OpFailed",
    "Outcome",
    "Pending",
    "SetData",
    "Stat",
    "Watcher",
    "ZooKeeper",
    "acquire_leadership",
    "advance_epoch",
    "close",
    "connect",
    "ensure_cluster",
    "ensure_path",
    "fenced_commit",
    "make_client",
    "parse_config",
    "read_snapshot",
]
