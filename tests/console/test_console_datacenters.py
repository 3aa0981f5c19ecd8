"""A cluster declared over data centers, as its health reports show on the console: the data
centers table with the quorum rule, and the "datacenter lost" / "datacenter back" alerts. A real
in-process Mission Control on loopback (the fixture of test_console_cluster_ingest.py)."""

from __future__ import annotations

from typing import Any

from test_console_cluster_ingest import Site, console_pages, node, site  # noqa: F401

RULE = "datacenter: dc1 lost entirely; 2 of 2 nodes of the other data centers live, 2 needed"


def sites(dc1_live: int, dc1_zk: int) -> list[dict[str, Any]]:
    def one(name: str, live: int, zk: int, witness: bool = False) -> dict[str, Any]:
        total = 0 if witness else 2
        lost = (live == 0 and not witness) or (witness and zk == 0)
        state = (
            "lost"
            if lost
            else "ok"
            if live == total and zk == (1 if witness else 2)
            else "degraded"
        )
        return {
            "name": name,
            "witness": witness,
            "nodes_live": live,
            "nodes_total": total,
            "zookeeper_reachable": zk,
            "zookeeper_total": 1 if witness else 2,
            "state": state,
        }

    return [one("dc1", dc1_live, dc1_zk), one("dc2", 2, 2), one("witness", 0, 1, witness=True)]


def nodes(dc1_up: bool) -> list[dict[str, Any]]:
    listed = [node("n1", "dc1", False), node("n2", "dc1", False)]
    if not dc1_up:
        listed = [{**n, "state": "down"} for n in listed]
    return [*listed, node("n3", "dc2", True), node("n4", "dc2", False)]


async def test_datacenters_on_the_cluster_page_and_their_alerts(site: Site) -> None:  # noqa: F811
    page = f"/console/clusters/{site.cluster_id}"
    (html,) = await console_pages(site, page)
    assert 'id="datacenters"' not in html  # nothing declared, nothing shown

    await site.send(
        "health", {"nodes": nodes(False), "datacenters": sites(0, 0), "quorum_rule": RULE}
    )
    html, alerts = await console_pages(site, page, "/console/alerts")
    table = html.split('id="datacenters"', 1)[1].split("</section>", 1)[0]
    assert '<span class="badge dc-lost">lost</span>' in table and table.count("dc-ok") == 2
    assert "0/2" in table and "witness" in table and f"Quorum: {RULE}" in table
    assert "Datacenter lost" in alerts
    assert "dc1 (0/2 nodes live, 0/2 ZooKeeper servers serving)" in alerts

    site.clock.advance(seconds=30)
    await site.send("health", {"nodes": nodes(True), "datacenters": sites(2, 2)})
    html, alerts = await console_pages(site, page, "/console/alerts")
    table = html.split('id="datacenters"', 1)[1].split("</section>", 1)[0]
    assert table.count("dc-ok") == 3 and "Quorum:" not in table
    assert "0/2 nodes live" not in alerts  # the open alerts: dc1 is no longer lost
    assert "dc1 (2/2 nodes live, 2/2 ZooKeeper servers serving)" in alerts
