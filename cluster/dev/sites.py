"""Data centers and a witness on one machine: which ZooKeeper server of a local ensemble stands
in which site (two servers a data center, one for the witness), for `managed dev up
--datacenters N --witness`, the tests and the benchmark."""

from __future__ import annotations

from cluster.datacenters import Site, Topology

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
