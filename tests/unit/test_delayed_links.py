"""The relay routes that put a delay between sites (`cluster.dev.sites.DelayedLinks`): within a
site servers talk directly, across sites through a listener of the relay; a relay inside one
site's namespace gets only the links leaving that site."""

from __future__ import annotations

from pathlib import Path

from cluster.dev.sites import DelayedLinks, site_layout
from cluster.dev.zookeeper import ZkServer, ZooKeeperTLS

TLS = ZooKeeperTLS(Path("ca.pem"), Path("keystore.pem"))
SITE_ADDRESS = {"dc1": "169.254.77.1", "dc2": "169.254.77.2", "witness": "169.254.77.3"}


def servers() -> list[ZkServer]:
    """zk1-zk5 as `site_layout` places them, each on its site's address."""
    placed = site_layout(5, witness=True)
    made = []
    for myid, site in placed.items():
        s = ZkServer(myid, 2280 + myid, 2880 + myid, 3880 + myid, Path("zk"), TLS)
        s.host = SITE_ADDRESS[site]
        made.append(s)
    return made


def test_within_a_site_direct_across_sites_through_a_listener() -> None:
    links = DelayedLinks(site_layout(5, witness=True))
    zk1, zk2, zk3, _, _ = servers()
    assert links.route(zk1, zk2) == ("169.254.77.1", 2882, 3882)
    host, quorum, election = links.route(zk1, zk3)
    assert host == "127.0.0.1" and len({quorum, election, 2883, 3883}) == 4
    assert links.route(zk1, zk3) == (host, quorum, election)  # the same listener every time


def test_a_site_relay_gets_only_the_links_leaving_that_site() -> None:
    links = DelayedLinks(site_layout(5, witness=True))
    all_servers = servers()
    for a in all_servers:
        for b in all_servers:
            links.route(a, b)
    dc1_hosts = links.connect_string("dc1", all_servers).split(",")
    assert dc1_hosts[:2] == ["169.254.77.1:2281", "169.254.77.1:2282"]
    assert all(h.startswith("127.0.0.1:") for h in dc1_hosts[2:])

    every = links.pairs(all_servers)
    by_site = {site: links.pairs(all_servers, site) for site in SITE_ADDRESS}
    assert sorted(p for pairs in by_site.values() for p in pairs) == sorted(every)
    # From dc1: quorum and election to zk3, zk4, zk5, and its nodes' client connections.
    targets = [p.partition("=")[2] for p in by_site["dc1"]]
    assert not any(t.startswith("169.254.77.1:") for t in targets)
    assert len(targets) == 3 * 3
    # From the witness (no node): quorum and election to the four others.
    assert len(by_site["witness"]) == 4 * 2
