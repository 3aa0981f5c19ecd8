"""Immutable snapshots of a cluster's state, read from ZooKeeper once per loop.

Decisions (see `cluster.decide`) are pure functions of a `ClusterSnapshot`, so they can be
unit-tested without a server. Parsing from znode bytes lives here too (`from_node`), as in
Patroni's `Member`/`Cluster` tuples.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cluster.datacenters import (
    DatacenterView,
    QuorumRule,
    Topology,
    datacenter_views,
    quorum_rule,
)
from contract.resources import NodeResources


def _load(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data.decode() or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _operator_section(config: dict[str, Any]) -> dict[str, Any]:
    section = config.get(OPERATOR_SECTION)
    return section if isinstance(section, dict) else {}


def resources_json(resources: NodeResources | None) -> dict[str, Any] | None:
    """`resources` as JSON for a znode or a reply (None: nothing measured yet)."""
    return None if resources is None else resources.to_json()


def dump(value: dict[str, Any]) -> bytes:
    """Canonical JSON bytes for a znode."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class RosterEntry:
    """A node that belongs to the cluster (the base of the quorum), live or not."""

    node: str
    datacenter: str
    api_address: str
    joined_at: float

    @classmethod
    def from_node(cls, node: str, data: bytes) -> RosterEntry:
        d = _load(data)
        return cls(
            node=node,
            datacenter=str(d.get("datacenter", "")),
            api_address=str(d.get("api_address", "")),
            joined_at=float(d.get("joined_at", 0.0)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "datacenter": self.datacenter,
            "api_address": self.api_address,
            "joined_at": self.joined_at,
        }


#: Keys an older node may still write in its live znode (before the shared `NodeResources`).
_LEGACY_RESOURCE_KEYS = {
    "cpu_count": "cpu_cores",
    "memory_total": "memory_total_bytes",
    "memory_used": "memory_used_bytes",
    "disk_total": "disk_total_bytes",
    "disk_used": "disk_used_bytes",
}


def parse_resources(raw: object) -> NodeResources | None:
    """A live znode's `health`, or None when it holds no valid figures.

    Accepts the names an older version wrote, so a cluster in the middle of an upgrade still
    reports every node."""
    if not isinstance(raw, dict):
        return None
    figures = {_LEGACY_RESOURCE_KEYS.get(str(k), str(k)): v for k, v in raw.items()}
    try:
        return NodeResources.from_json(figures)
    except ValueError:
        return None


@dataclass(frozen=True)
class LiveMember:
    """A node that is up: its ephemeral znode exists while its ZooKeeper session does."""

    node: str
    version: str
    started_at: float
    health: NodeResources | None
    session_id: int = 0
    health_error: str | None = None

    @classmethod
    def from_node(cls, node: str, data: bytes, session_id: int = 0) -> LiveMember:
        d = _load(data)
        error = d.get("health_error")
        return cls(
            node=node,
            version=str(d.get("version", "")),
            started_at=float(d.get("started_at", 0.0)),
            health=parse_resources(d.get("health")),
            session_id=session_id,
            health_error=str(error) if error else None,
        )


@dataclass(frozen=True)
class Leader:
    """Who holds the leader znode, with which epoch, and since when."""

    node: str
    epoch: int
    since: float
    session_id: int = 0

    @classmethod
    def from_node(cls, data: bytes, session_id: int = 0) -> Leader:
        d = _load(data)
        return cls(
            node=str(d.get("node", "")),
            epoch=int(d.get("epoch", 0)),
            since=float(d.get("since", 0.0)),
            session_id=session_id,
        )

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "epoch": self.epoch, "since": self.since}


@dataclass(frozen=True)
class Epoch:
    """The fencing token: its value and the znode version a leader's writes must check."""

    value: int
    version: int

    @classmethod
    def from_node(cls, data: bytes, version: int) -> Epoch:
        try:
            value = int(data.decode().strip() or "0")
        except (UnicodeDecodeError, ValueError):
            value = 0
        return cls(value=value, version=version)


@dataclass(frozen=True)
class Quorum:
    have: int
    need: int

    @property
    def ok(self) -> bool:
        return self.need > 0 and self.have >= self.need

    def to_json(self) -> dict[str, Any]:
        return {"have": self.have, "need": self.need, "ok": self.ok}


def quorum_of(roster: frozenset[str], live: frozenset[str]) -> Quorum:
    """Quorum = live members of the roster >= floor(roster / 2) + 1 (an empty roster has none)."""
    if not roster:
        return Quorum(have=0, need=0)
    return Quorum(have=len(roster & live), need=len(roster) // 2 + 1)


#: The cluster config's section of operator settings (`managed maintenance`, `node drain`).
OPERATOR_SECTION = "operator"


@dataclass(frozen=True)
class Maintenance:
    """Maintenance mode: automatic leader-only actions (scheduled backups, upgrades) pause."""

    since: float
    by: str
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since, "by": self.by, "reason": self.reason}


@dataclass(frozen=True)
class Switchover:
    """An operator's request that leadership move to `to` (at `at`, or at once).

    `state`: `scheduled` (the leader hands over when due), `handing-over` (the lock was given
    up for `to`; the others leave it to `to` until `deadline`), `done` or `cancelled` (kept so
    the CLI can tell what happened; a new request replaces it)."""

    to: str
    at: float
    requested_at: float
    by: str
    state: str = "scheduled"
    deadline: float = 0.0
    outcome: str = ""

    @classmethod
    def from_node(cls, data: bytes) -> Switchover | None:
        d = _load(data)
        if not d.get("to"):
            return None
        return cls(
            to=str(d["to"]),
            at=float(d.get("at", 0.0)),
            requested_at=float(d.get("requested_at", 0.0)),
            by=str(d.get("by", "")),
            state=str(d.get("state", "scheduled")),
            deadline=float(d.get("deadline", 0.0)),
            outcome=str(d.get("outcome", "")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "to": self.to,
            "at": self.at,
            "requested_at": self.requested_at,
            "by": self.by,
            "state": self.state,
            "deadline": self.deadline,
            "outcome": self.outcome,
        }

    @property
    def open(self) -> bool:
        return self.state in ("scheduled", "handing-over")


@dataclass(frozen=True)
class ClusterSnapshot:
    """Everything a node needs to decide what to do, read at one moment."""

    cluster: str
    roster: tuple[RosterEntry, ...]
    live: tuple[LiveMember, ...]
    leader: Leader | None
    epoch: Epoch
    config: dict[str, Any] = field(default_factory=dict)
    switchover: Switchover | None = None

    @property
    def roster_ids(self) -> frozenset[str]:
        return frozenset(e.node for e in self.roster)

    @property
    def live_ids(self) -> frozenset[str]:
        return frozenset(m.node for m in self.live)

    @property
    def topology(self) -> Topology | None:
        """The data centers the config declares (None: the plain majority rule)."""
        return Topology.from_config(self.config)

    @property
    def placement(self) -> dict[str, str]:
        return {e.node: e.datacenter for e in self.roster}

    @property
    def quorum_rule(self) -> QuorumRule:
        """The rule that gives (or fails to give) quorum now, see `cluster.datacenters`."""
        return quorum_rule(self.placement, self.live_ids, self.topology)

    @property
    def quorum(self) -> Quorum:
        rule = self.quorum_rule
        return Quorum(have=rule.have, need=rule.need)

    def datacenters(
        self, reachable: Mapping[str, bool] | None = None
    ) -> tuple[DatacenterView, ...]:
        """Each site's nodes, ZooKeeper servers (`reachable`, from a probe) and state."""
        return datacenter_views(self.placement, self.live_ids, self.topology, reachable)

    def member(self, node: str) -> RosterEntry | None:
        return next((e for e in self.roster if e.node == node), None)

    def live_member(self, node: str) -> LiveMember | None:
        return next((m for m in self.live if m.node == node), None)

    @property
    def drained(self) -> frozenset[str]:
        """Nodes that never take the lock (`managed node drain`)."""
        nodes = _operator_section(self.config).get("drained")
        return frozenset(str(n) for n in nodes) if isinstance(nodes, list) else frozenset()

    @property
    def maintenance(self) -> Maintenance | None:
        """Maintenance mode, when on (`managed maintenance on`)."""
        m = _operator_section(self.config).get("maintenance")
        if not isinstance(m, dict):
            return None
        try:
            return Maintenance(
                float(m.get("since", 0.0)), str(m.get("by", "")), str(m.get("reason", ""))
            )
        except (TypeError, ValueError):
            return Maintenance(0.0, "")

    def can_lead(self, node: str) -> bool:
        """In the roster, live, not drained and not reporting a failing health probe."""
        live = self.live_member(node)
        return (
            self.member(node) is not None
            and live is not None
            and live.health_error is None
            and node not in self.drained
        )

    def status_json(self, reachable: Mapping[str, bool] | None = None) -> dict[str, Any]:
        """The `managed cluster status --json` document: the fields DESIGN.md fixes, plus
        `quorum_rule` and `datacenters` (added fields only, so older scripts keep working)."""
        live = self.live_ids
        return {
            "cluster": self.cluster,
            "roster": [
                {"id": e.node, "datacenter": e.datacenter, "live": e.node in live}
                for e in sorted(self.roster, key=lambda e: e.node)
            ],
            "quorum": self.quorum.to_json(),
            "leader": self.leader.node if self.leader else None,
            "epoch": self.epoch.value,
            "quorum_rule": self.quorum_rule.to_json(),
            "datacenters": [v.to_json() for v in self.datacenters(reachable)],
        }

    def health_summary(self, leader: str, epoch: int, at: float) -> dict[str, Any]:
        """The leader's cluster health summary: every roster member's liveness and health."""
        nodes: dict[str, Any] = {}
        for e in self.roster:
            m = self.live_member(e.node)
            entry: dict[str, Any] = {"datacenter": e.datacenter, "live": m is not None}
            if m is not None:
                entry.update(version=m.version, health=resources_json(m.health))
            nodes[e.node] = entry
        return {
            "cluster": self.cluster,
            "leader": leader,
            "epoch": epoch,
            "at": at,
            "quorum": self.quorum.to_json(),
            "nodes": nodes,
        }
