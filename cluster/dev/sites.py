"""Data centers and a witness on one machine: which ZooKeeper server of a local ensemble stands
in which site (two servers a data center, one for the witness), for `managed dev up
--datacenters N --witness`, the tests and the benchmark; and the relay routes that put a delay
between sites (`DelayedLinks`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cluster.datacenters import Site, Topology
from cluster.dev.processes import free_port
from cluster.dev.zookeeper import ZkServer

SERVERS_PER_DATACENTER = 2
WITNESS = "witness"


def ensemble_size(datacenters: int, witness: bool) -> int:
    """How many ZooKeeper servers the layout needs (2+2+1 for two data centers and a witness)."""
    return SERVERS_PER_DATACENTER * datacenters + (1 if witness else 0)


def datacenter_name(index: int) -> str:
    """`dc1`, `dc2`, ... (index from 0)."""
    return f"dc{index + 1}"


def layout(servers: list[str], datacenters: int, witness: bool) -> Topology:
    """The topology of `servers` (HOST:PORT, in the ensemble's order): the first two in dc1,
    the next two in dc2, ..., the last one the witness."""
    if len(servers) != ensemble_size(datacenters, witness):
        raise ValueError(f"{len(servers)} servers do not make {datacenters} data centers")
    sites = [
        Site(datacenter_name(i), tuple(servers[2 * i : 2 * i + 2])) for i in range(datacenters)
    ]
    if witness:
        sites.append(Site(WITNESS, (servers[-1],), witness=True))
    return Topology.checked(sites)


@dataclass
class DelayedLinks:
    """Relay routes that put a delay on every link between two sites of a local ensemble
    (the way 50 ms between data centers would), for machines without `netem`.

    `site_of` maps each server (myid) to its site. Within a site, servers and nodes talk
    directly; across sites every connection (quorum, election, client) goes through a relay
    listener on loopback that holds each chunk back (`cluster.dev.relay --delay`)."""

    site_of: dict[int, str]
    listeners: dict[tuple[str, int, str], int] = field(default_factory=dict)

    def _listener(self, from_site: str, myid: int, kind: str) -> int:
        key = (from_site, myid, kind)
        if key not in self.listeners:
            self.listeners[key] = free_port()
        return self.listeners[key]

    def route(self, a: ZkServer, b: ZkServer) -> tuple[str, int, int]:
        """`Ensemble.route`: how server `a` reaches server `b`."""
        site = self.site_of[a.myid]
        if site == self.site_of[b.myid]:
            return b.host, b.peer_port, b.election_port
        return (
            "127.0.0.1",
            self._listener(site, b.myid, "quorum"),
            self._listener(site, b.myid, "election"),
        )

    def connect_string(self, site: str, servers: list[ZkServer]) -> str:
        """The ZooKeeper connect string of a node in `site`."""
        return ",".join(
            s.address
            if self.site_of[s.myid] == site
            else f"127.0.0.1:{self._listener(site, s.myid, 'client')}"
            for s in servers
        )

    def pairs(self, servers: list[ZkServer], from_site: str | None = None) -> list[str]:
        """`LISTEN=TARGET` for the relay, once every route and connect string was asked for;
        with `from_site`, only the links leaving that site (for a relay inside its own network
        namespace, where its listeners are the ones that site's routes name)."""
        by_id = {s.myid: s for s in servers}
        target = {
            "quorum": lambda s: s.peer_port,
            "election": lambda s: s.election_port,
            "client": lambda s: s.client_port,
        }
        return [
            f"127.0.0.1:{port}={by_id[myid].host}:{target[kind](by_id[myid])}"
            for (site, myid, kind), port in sorted(self.listeners.items())
            if from_site in (None, site)
        ]


def site_layout(servers: int, witness: bool) -> dict[int, str]:
    """myid -> site for `servers` servers laid out as `layout` does."""
    datacenters = (servers - (1 if witness else 0)) // SERVERS_PER_DATACENTER
    placed = {i + 1: datacenter_name(i // 2) for i in range(2 * datacenters)}
    if witness:
        placed[servers] = WITNESS
    return placed
