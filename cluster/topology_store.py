"""Reading and writing the declared data centers in the cluster config (operator writes).

Guarantees: a declaration is validated in full (`Topology.checked`) before it is written, and
written with the config znode's version (compare-and-set, retried on a concurrent change), so
bad input changes nothing and a concurrent change of another setting is never lost. The write
and its audit entry (`cluster.datacenters`) are one transaction: quorum's rule never changes
unrecorded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from cluster import zk
from cluster.audit.store import AuditLog
from cluster.datacenters import CONFIG_KEY, Topology
from cluster.errors import ClusterError
from cluster.model import dump
from cluster.paths import ClusterPaths
from cluster.zk import OpFailed, SetData, ZooKeeper
from cluster.zk.errors import BadVersionError
from cluster.zk.snapshot import parse_config
from contract.audit.canonical import JsonValue
from contract.audit.events import Actor, AuditEvent


def read_topology(client: ZooKeeper, paths: ClusterPaths) -> Topology | None:
    zk.ensure_cluster(client, paths)
    data, _stat = client.get(paths.config)
    return Topology.from_config(parse_config(data))


def write_topology(
    client: ZooKeeper,
    paths: ClusterPaths,
    topology: Topology | None,
    who: Actor,
    attempts: int = 10,
) -> None:
    """Declare `topology` (None: forget the declaration, the majority rule only), recorded in
    the audit log as done by `who`."""
    zk.ensure_cluster(client, paths)
    audit = AuditLog(client, paths)
    for _ in range(attempts):
        data, stat = client.get(paths.config)
        config = parse_config(data)
        if not config and (data or b"").strip() not in (b"", b"{}"):
            raise ClusterError("the cluster config is not a JSON object: repair it first")
        config.pop(CONFIG_KEY, None)
        if topology is not None:
            config[CONFIG_KEY] = topology.to_config()
        before = Topology.from_config(parse_config(data))
        detail: dict[str, JsonValue] = {
            "before": cast("JsonValue", before.to_config()) if before else None,
            "after": cast("JsonValue", topology.to_config()) if topology else None,
        }
        now = datetime.now(UTC)
        event = AuditEvent(now, who, "cluster.datacenters", paths.cluster, "config", detail)
        try:
            audit.append([event], now, ops=[SetData(paths.config, dump(config), stat.version)])
        except OpFailed as e:
            if isinstance(e.error, BadVersionError):
                continue
            raise
        return
    raise ClusterError("the cluster config kept changing; try again")
