"""Data centers and the witness: the declared topology, the quorum rule that survives the loss
of a whole data center, and each data center's state. Pure: no I/O, unit-tested without servers.

The topology lives in the cluster config (`datacenters`, written by `managed cluster
datacenters`): each site's name, its ZooKeeper servers, and whether it is the witness (a site
with one ZooKeeper server and no node). Without it the plain majority rule holds everywhere.

**The rule** (docs/architecture.md, "Data centers and the witness"). With data centers
declared, quorum holds when a majority of the roster is live (the plain rule), or when exactly
one data center is lost entirely (no node of it live) and a majority of the *other* data
centers' nodes is live. It is safe because only a node that holds a ZooKeeper session can read
the snapshot it is applied to, and only the side that holds ZooKeeper's own quorum (2+2+1: a
data center's two servers with the witness) keeps sessions: a data center cut off sees its
servers drop their clients, its leader stops at SUSPENDED, and its members' live znodes go
with their sessions. So both sides can never act; the one without ZooKeeper cannot even write
(every leader write checks the epoch, `cluster.zk.fencing`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cluster.names import check_address, check_name
from contract.datacenters import DatacenterState

#: The key of the cluster config that holds the topology.
CONFIG_KEY = "datacenters"


class TopologyError(ValueError):
    """A declared topology that cannot be used (one line saying what to fix)."""


@dataclass(frozen=True)
class Site:
    """A data center (nodes and ZooKeeper servers) or the witness (one ZooKeeper server)."""

    name: str
    zookeeper: tuple[str, ...]
    witness: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "zookeeper": list(self.zookeeper), "witness": self.witness}


@dataclass(frozen=True)
class Topology:
    """The declared sites: at least two data centers, at most one witness."""

    sites: tuple[Site, ...]

    @classmethod
    def checked(cls, sites: Iterable[Site]) -> Topology:
        """A topology, or `TopologyError` naming the first thing wrong."""
        listed = tuple(sites)
        names = [s.name for s in listed]
        for site in listed:
            try:
                check_name("data center", site.name)
                for server in site.zookeeper:
                    check_address(server)
            except ValueError as e:
                raise TopologyError(str(e)) from None
            if not site.zookeeper:
                raise TopologyError(f"data center {site.name} names no ZooKeeper server")
        if len(set(names)) != len(names):
            raise TopologyError("a data center is named twice")
        servers = [z for s in listed for z in s.zookeeper]
        if len(set(servers)) != len(servers):
            raise TopologyError("a ZooKeeper server is listed in two data centers")
        if sum(s.witness for s in listed) > 1:
            raise TopologyError("at most one witness site")
        if sum(not s.witness for s in listed) < 2:
            raise TopologyError("declare at least two data centers (and maybe a witness)")
        return cls(listed)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Topology | None:
        """The topology a cluster config declares; None when it declares none or a damaged one
        (readers tolerate it and fall back to the majority rule; writers validate)."""
        raw = config.get(CONFIG_KEY)
        if not isinstance(raw, list):
            return None
        try:
            return cls.checked(
                Site(
                    str(s["name"]),
                    tuple(str(z) for z in s["zookeeper"]),
                    bool(s.get("witness", False)),
                )
                for s in raw
                if isinstance(s, dict)
            )
        except (KeyError, TypeError, TopologyError):
            return None

    def to_config(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.sites]

    @property
    def datacenters(self) -> tuple[Site, ...]:
        return tuple(s for s in self.sites if not s.witness)

    @property
    def witness(self) -> Site | None:
        return next((s for s in self.sites if s.witness), None)

    def site_of(self, server: str) -> Site | None:
        return next((s for s in self.sites if server in s.zookeeper), None)


def parse_site(text: str, witness: bool = False) -> Site:
    """`NAME=HOST:PORT[,HOST:PORT...]` as typed on the command line."""
    name, sep, servers = text.partition("=")
    if not sep or not servers:
        raise TopologyError(f"{text!r}: write NAME=HOST:PORT[,HOST:PORT...]")
    return Site(name.strip(), tuple(s.strip() for s in servers.split(",") if s.strip()), witness)


class Rule(enum.Enum):
    MAJORITY = "majority"  # live roster members >= floor(roster / 2) + 1
    DATACENTER = "datacenter"  # one data center lost entirely; a majority of the others live


@dataclass(frozen=True)
class QuorumRule:
    """Which rule decided the quorum, with the counts it used and a readable reason."""

    rule: Rule
    have: int
    need: int
    reason: str

    @property
    def ok(self) -> bool:
        return self.need > 0 and self.have >= self.need

    def to_json(self) -> dict[str, Any]:
        return {"name": self.rule.value, "reason": self.reason}


def _majority(roster: frozenset[str], live: frozenset[str]) -> tuple[int, int]:
    return len(roster & live), (len(roster) // 2 + 1 if roster else 0)


def quorum_rule(
    placement: Mapping[str, str], live: frozenset[str], topology: Topology | None
) -> QuorumRule:
    """The quorum of a roster (`placement`: node -> data center) given who is `live`.

    Guarantees: without a topology it is exactly the majority rule; with one, the data-center
    rule only ever adds the case "one data center lost entirely, a majority of the rest live",
    so it never refuses what the majority rule allows.
    """
    roster = frozenset(placement)
    have, need = _majority(roster, live)
    counted = f"{have} of {len(roster)} roster nodes live, {need} needed"
    if not roster or have >= need or topology is None:
        ok = bool(roster) and have >= need
        return QuorumRule(Rule.MAJORITY, have, need, f"majority: {counted}" if ok else counted)
    by_dc: dict[str, set[str]] = {}
    for node, dc in placement.items():
        by_dc.setdefault(dc, set()).add(node)
    lost = sorted(dc for dc, nodes in by_dc.items() if not nodes & live)
    if len(lost) != 1 or len(by_dc) < 2:
        why = f"{', '.join(lost)} lost" if len(lost) > 1 else "no data center lost entirely"
        return QuorumRule(Rule.MAJORITY, have, need, f"{counted} ({why})")
    rest = frozenset(n for dc, nodes in by_dc.items() if dc != lost[0] for n in nodes)
    r_have, r_need = _majority(rest, live)
    tail = f"{r_have} of {len(rest)} nodes of the other data centers live, {r_need} needed"
    if r_have < r_need:
        return QuorumRule(Rule.DATACENTER, r_have, r_need, f"{lost[0]} lost entirely; {tail}")
    return QuorumRule(
        Rule.DATACENTER,
        r_have,
        r_need,
        f"datacenter: {lost[0]} lost entirely; {tail} (this side holds ZooKeeper's quorum)",
    )


@dataclass(frozen=True)
class DatacenterView:
    """One site as `cluster status`, the health report and Mission Control show it.

    `zk_reachable` is None where nobody could probe (no topology declared, or the view comes
    from a report that does not carry it)."""

    name: str
    witness: bool
    nodes_live: int
    nodes_total: int
    zk_reachable: int | None
    zk_total: int

    @property
    def state(self) -> DatacenterState:
        zk_down = self.zk_reachable is not None and self.zk_reachable < self.zk_total
        if self.nodes_total:
            if self.nodes_live == 0:
                return DatacenterState.LOST
            if self.nodes_live < self.nodes_total or zk_down:
                return DatacenterState.DEGRADED
            return DatacenterState.OK
        if self.zk_total and self.zk_reachable == 0:
            return DatacenterState.LOST
        return DatacenterState.DEGRADED if zk_down else DatacenterState.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "witness": self.witness,
            "nodes": {"live": self.nodes_live, "total": self.nodes_total},
            "zookeeper": {"reachable": self.zk_reachable, "total": self.zk_total},
            "state": self.state.value,
        }


def datacenter_views(
    placement: Mapping[str, str],
    live: frozenset[str],
    topology: Topology | None,
    reachable: Mapping[str, bool] | None = None,
) -> tuple[DatacenterView, ...]:
    """Every site: the declared ones in their order, then data centers only the roster names.

    `reachable` (ZooKeeper server -> answered) comes from a probe; without it the ZooKeeper
    column is unknown (None)."""
    declared = topology.sites if topology else ()
    names = [s.name for s in declared]
    names += sorted({dc for dc in placement.values()} - set(names))
    views = []
    for name in names:
        site = next((s for s in declared if s.name == name), None)
        nodes = {n for n, dc in placement.items() if dc == name}
        servers = site.zookeeper if site else ()
        views.append(
            DatacenterView(
                name=name,
                witness=bool(site and site.witness),
                nodes_live=len(nodes & live),
                nodes_total=len(nodes),
                zk_reachable=(
                    sum(bool(reachable.get(z)) for z in servers)
                    if reachable is not None and site is not None
                    else None
                ),
                zk_total=len(servers),
            )
        )
    return tuple(views)
