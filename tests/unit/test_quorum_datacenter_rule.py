"""Pure logic: the data-center quorum rule, the declared topology and each site's state."""

from __future__ import annotations

import pytest

from cluster.datacenters import (
    DatacenterView,
    Rule,
    Site,
    Topology,
    TopologyError,
    datacenter_views,
    parse_site,
    quorum_rule,
)
from cluster.decide import Action, decide
from cluster.model import ClusterSnapshot, Epoch, Leader, LiveMember, RosterEntry
from contract.datacenters import DatacenterState
from contract.resources import UNMEASURED

TOPOLOGY = Topology.checked(
    [
        Site("dc1", ("10.0.1.1:2281", "10.0.1.2:2281")),
        Site("dc2", ("10.0.2.1:2281", "10.0.2.2:2281")),
        Site("w", ("10.0.3.1:2281",), witness=True),
    ]
)
THREE_THREE = {"a1": "dc1", "a2": "dc1", "a3": "dc1", "b1": "dc2", "b2": "dc2", "b3": "dc2"}


def live(*nodes: str) -> frozenset[str]:
    return frozenset(nodes)


def test_without_a_topology_it_is_the_majority_rule() -> None:
    q = quorum_rule(THREE_THREE, live("b1", "b2", "b3"), None)
    assert (q.rule, q.have, q.need, q.ok) == (Rule.MAJORITY, 3, 4, False)
    assert quorum_rule({}, live(), TOPOLOGY).ok is False


def test_a_data_center_lost_entirely_leaves_quorum_to_the_other() -> None:
    q = quorum_rule(THREE_THREE, live("b1", "b2", "b3"), TOPOLOGY)
    assert (q.rule, q.have, q.need, q.ok) == (Rule.DATACENTER, 3, 2, True)
    assert "dc1 lost entirely" in q.reason and "ZooKeeper's quorum" in q.reason
    # ...and still needs a majority of what is left.
    q = quorum_rule(THREE_THREE, live("b1"), TOPOLOGY)
    assert (q.rule, q.have, q.need, q.ok) == (Rule.DATACENTER, 1, 2, False)


def test_the_majority_rule_wins_when_it_holds() -> None:
    q = quorum_rule(THREE_THREE, live("a1", "b1", "b2", "b3"), TOPOLOGY)
    assert (q.rule, q.have, q.need, q.ok) == (Rule.MAJORITY, 4, 4, True)
    assert q.reason.startswith("majority: 4 of 6")


def test_a_partial_loss_on_both_sides_is_not_a_data_center_loss() -> None:
    # One node of dc1 is still live: dc1 is not lost, so the plain rule stands (3 of 4 needed).
    q = quorum_rule(THREE_THREE, live("a1", "b1", "b2"), TOPOLOGY)
    assert (q.rule, q.ok) == (Rule.MAJORITY, False) and "no data center lost" in q.reason


def test_two_data_centers_lost_is_no_quorum() -> None:
    three = {**THREE_THREE, "c1": "dc3"}
    q = quorum_rule(three, live("c1"), TOPOLOGY)
    assert not q.ok and "dc1, dc2 lost" in q.reason


@pytest.mark.parametrize("placement", [{"a": "dc1", "b": "dc1"}, THREE_THREE])
def test_never_refuses_what_the_majority_rule_allows(placement: dict[str, str]) -> None:
    nodes = sorted(placement)
    for mask in range(1 << len(nodes)):
        up = frozenset(n for i, n in enumerate(nodes) if mask >> i & 1)
        plain = quorum_rule(placement, up, None)
        declared = quorum_rule(placement, up, TOPOLOGY)
        assert not plain.ok or declared.ok


def test_only_the_side_with_nodes_live_in_zookeeper_can_acquire() -> None:
    # Both sides apply the rule to what ZooKeeper shows them; the cut-off side has no session
    # (connected=False) and so never leads, whatever its last snapshot said.
    snap = ClusterSnapshot(
        cluster="c",
        roster=tuple(
            RosterEntry(n, dc, f"h:{i + 1}", 0.0) for i, (n, dc) in enumerate(THREE_THREE.items())
        ),
        live=tuple(
            LiveMember(n, "1", 0.0, UNMEASURED, session_id=i + 1)
            for i, n in enumerate(["b1", "b2", "b3"])
        ),
        leader=None,
        epoch=Epoch(4, 4),
        config={"datacenters": TOPOLOGY.to_config()},
    )
    d = decide(snap, "b1", 1, True)
    assert d.action is Action.ACQUIRE and "3/2" in d.reason
    assert decide(snap, "a1", 9, False).action is Action.FOLLOW
    led = ClusterSnapshot(**{**snap.__dict__, "leader": Leader("b1", 5, 0.0, session_id=1)})
    assert decide(led, "b1", 1, True).action is Action.LEAD
    doc = led.status_json(
        {z: not z.startswith("10.0.1") for s in TOPOLOGY.sites for z in s.zookeeper}
    )
    assert doc["quorum"] == {"have": 3, "need": 2, "ok": True}
    assert doc["quorum_rule"]["name"] == "datacenter"
    states = {d["name"]: (d["state"], d["nodes"], d["zookeeper"]) for d in doc["datacenters"]}
    assert states == {
        "dc1": ("lost", {"live": 0, "total": 3}, {"reachable": 0, "total": 2}),
        "dc2": ("ok", {"live": 3, "total": 3}, {"reachable": 2, "total": 2}),
        "w": ("ok", {"live": 0, "total": 0}, {"reachable": 1, "total": 1}),
    }


def test_site_states() -> None:
    assert DatacenterView("d", False, 2, 2, 2, 2).state is DatacenterState.OK
    assert DatacenterView("d", False, 2, 2, 1, 2).state is DatacenterState.DEGRADED
    assert DatacenterView("d", False, 1, 2, None, 0).state is DatacenterState.DEGRADED
    assert DatacenterView("d", False, 0, 2, 2, 2).state is DatacenterState.LOST
    assert DatacenterView("w", True, 0, 0, 0, 1).state is DatacenterState.LOST
    assert DatacenterView("w", True, 0, 0, None, 1).state is DatacenterState.OK


def test_views_list_declared_sites_then_roster_only_ones() -> None:
    views = datacenter_views({"x": "dc9", "a1": "dc1"}, live("a1"), TOPOLOGY)
    assert [v.name for v in views] == ["dc1", "dc2", "w", "dc9"]
    assert views[-1].zk_reachable is None and views[-1].zk_total == 0
    assert [v.name for v in datacenter_views({"a": "dc1"}, live(), None)] == ["dc1"]


@pytest.mark.parametrize(
    ("sites", "error"),
    [
        ([Site("dc1", ("h:1",))], "at least two data centers"),
        ([Site("dc1", ("h:1",)), Site("dc1", ("h:2",))], "named twice"),
        ([Site("dc1", ("h:1",)), Site("dc2", ("h:1",))], "two data centers"),
        ([Site("dc1", ("h:1",)), Site("dc2", ())], "names no ZooKeeper server"),
        ([Site("DC1", ("h:1",)), Site("dc2", ("h:2",))], "data center 'DC1' is invalid"),
        ([Site("dc1", ("h",)), Site("dc2", ("h:2",))], "HOST:PORT"),
        (
            [
                Site("a", ("h:1",)),
                Site("b", ("h:2",)),
                Site("w", ("h:3",), True),
                Site("v", ("h:4",), True),
            ],
            "at most one witness",
        ),
    ],
)
def test_bad_declarations_are_refused(sites: list[Site], error: str) -> None:
    with pytest.raises(TopologyError, match=error):
        Topology.checked(sites)


def test_config_round_trip_and_damaged_config() -> None:
    assert Topology.from_config({"datacenters": TOPOLOGY.to_config()}) == TOPOLOGY
    assert Topology.from_config({}) is None
    assert Topology.from_config({"datacenters": [{"name": "dc1"}]}) is None
    assert Topology.from_config({"datacenters": "dc1"}) is None
    assert parse_site("dc1=h:1, h:2") == Site("dc1", ("h:1", "h:2"))
    with pytest.raises(TopologyError, match="NAME=HOST:PORT"):
        parse_site("dc1")


def test_the_health_report_carries_the_sites_only_when_declared() -> None:
    from cluster.link.messages import health_body

    roster = tuple(
        RosterEntry(n, dc, f"h:{i + 1}", 0.0) for i, (n, dc) in enumerate(THREE_THREE.items())
    )
    live = tuple(LiveMember(n, "1", 0.0, UNMEASURED, i + 1) for i, n in enumerate(["b1", "b2"]))
    plain = ClusterSnapshot("c", roster, live, None, Epoch(1, 1))
    body = health_body(plain, 60)
    assert body.datacenters is None and body.quorum_rule is None
    declared = ClusterSnapshot(
        "c", roster, live, None, Epoch(1, 1), {"datacenters": TOPOLOGY.to_config()}
    )
    body = health_body(declared, 60, {"10.0.2.1:2281": True})
    assert body.datacenters is not None and body.quorum_rule is not None
    assert [(d.name, d.state.value, d.zookeeper_reachable) for d in body.datacenters] == [
        ("dc1", "lost", 0),
        ("dc2", "degraded", 1),
        ("w", "lost", 0),
    ]
    assert body.quorum_rule.startswith("datacenter: dc1 lost entirely")
