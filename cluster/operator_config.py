"""Operator settings in the cluster config: maintenance mode and drained nodes.

`managed maintenance on|off` and `managed node drain|undrain` change the config's `operator`
section (`cluster.model.OPERATOR_SECTION`, read by every node in its snapshot).

Guarantees: each change is checked on a fresh read, written with the config znode's version
(compare-and-set, checked again on a concurrent change, so a concurrent `backup configure` or
`mc enroll` is never lost) and appended to the audit log in the same transaction; a change that
would change nothing writes nothing. A node may be drained only while another node could still
take the lock (in the roster, live, not drained, healthy), so draining never leaves the cluster
without a possible leader.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cluster.audit.store import AuditLog
from cluster.errors import ClusterError
from cluster.model import OPERATOR_SECTION, ClusterSnapshot
from cluster.paths import ClusterPaths
from cluster.zk import OpFailed, SetData, ZooKeeper, ensure_cluster, read_snapshot
from cluster.zk.errors import BadVersionError
from contract.audit.canonical import JsonValue
from contract.audit.events import Actor, AuditEvent

#: What a change returns: the new operator section, the audit action and its detail; or None
#: when nothing would change.
Change = tuple[dict[str, Any], str, dict[str, JsonValue]] | None


class OperatorRefused(ClusterError):
    """A maintenance or drain change was refused; the message says why in one line."""


def _section(config: dict[str, Any]) -> dict[str, Any]:
    section = config.get(OPERATOR_SECTION)
    return dict(section) if isinstance(section, dict) else {}


def change(
    client: ZooKeeper,
    paths: ClusterPaths,
    subject: str,
    actor: Actor,
    now: datetime,
    decide: Callable[[ClusterSnapshot, dict[str, Any]], Change],
) -> bool:
    """Apply `decide`'s change to the operator section; False when it changed nothing."""
    ensure_cluster(client, paths)
    for _ in range(10):
        snap = read_snapshot(client, paths)
        data, stat = client.get(paths.config)
        config = json.loads(data or b"{}")
        if not isinstance(config, dict):
            raise OperatorRefused("the cluster config is not a JSON object: fix it first")
        outcome = decide(snap, _section(config))
        if outcome is None:
            return False
        section, action, detail = outcome
        updated = {**config, OPERATOR_SECTION: section}
        op = SetData(paths.config, json.dumps(updated, sort_keys=True).encode(), stat.version)
        event = AuditEvent(now, actor, action, paths.cluster, subject, detail)
        try:
            AuditLog(client, paths).append([event], now, [op])
        except OpFailed as e:
            if isinstance(e.error, BadVersionError):
                continue
            raise
        return True
    raise OperatorRefused("the cluster config kept changing; try again")


def maintenance(on: bool, by: str, at: float, reason: str) -> Callable[..., Change]:
    def decide(_snap: ClusterSnapshot, section: dict[str, Any]) -> Change:
        if on == isinstance(section.get("maintenance"), dict):
            return None
        if on:
            section["maintenance"] = {"since": at, "by": by, "reason": reason}
            return section, "cluster.maintenance.on", {"reason": reason}
        section.pop("maintenance", None)
        return section, "cluster.maintenance.off", {}

    return decide


def drain(node: str, on: bool) -> Callable[..., Change]:
    def decide(snap: ClusterSnapshot, section: dict[str, Any]) -> Change:
        drained = sorted(snap.drained)
        if on == (node in drained):
            return None
        if not on:
            section["drained"] = [n for n in drained if n != node]
            return section, "node.undrained", {}
        if snap.member(node) is None:
            raise OperatorRefused(f"{node} is not in the roster of cluster {snap.cluster}")
        others = [e.node for e in snap.roster if e.node != node and snap.can_lead(e.node)]
        if not others:
            raise OperatorRefused(
                f"cannot drain {node}: no other node could lead (live, healthy, not drained)"
            )
        section["drained"] = sorted({*drained, node})
        return section, "node.drained", {"leading": bool(snap.leader and snap.leader.node == node)}

    return decide
