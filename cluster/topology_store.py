"""Reading and writing the declared data centers in the cluster config (operator writes).

Guarantees: a declaration is validated in full (`Topology.checked`) before it is written, and
written with the config znode's version (compare-and-set, retried on a concurrent change), so
bad input changes nothing and a concurrent change of another setting is never lost.
"""

from __future__ import annotations

from cluster import zk
from cluster.datacenters import CONFIG_KEY, Topology
from cluster.errors import ClusterError
from cluster.model import dump
from cluster.paths import ClusterPaths
from cluster.zk import ZooKeeper
from cluster.zk.errors import BadVersionError
from cluster.zk.snapshot import parse_config


def read_topology(client: ZooKeeper, paths: ClusterPaths) -> Topology | None:
    zk.ensure_cluster(client, paths)
    data, _stat = client.get(paths.config)
    return Topology.from_config(parse_config(data))


def write_topology(
    client: ZooKeeper, paths: ClusterPaths, topology: Topology | None, attempts: int = 10
) -> None:
    """Declare `topology` (None: forget the declaration, the majority rule only)."""
    zk.ensure_cluster(client, paths)
    for _ in range(attempts):
        data, stat = client.get(paths.config)
        config = parse_config(data)
        if not config and (data or b"").strip() not in (b"", b"{}"):
            raise ClusterError("the cluster config is not a JSON object: repair it first")
        config.pop(CONFIG_KEY, None)
        if topology is not None:
            config[CONFIG_KEY] = topology.to_config()
        try:
            client.set(paths.config, dump(config), version=stat.version)
        except BadVersionError:
            continue
        return
    raise ClusterError("the cluster config kept changing; try again")
