"""Pure rule: `datacenter_lost` and `datacenter_back` from a health report's sites."""

from __future__ import annotations

from contract.datacenters import DatacenterState
from contract.messages import AlertKind, DatacenterHealth
from mission_control.service.rules.datacenters import datacenter_alerts, named_sites

LOST, BACK = AlertKind.DATACENTER_LOST, AlertKind.DATACENTER_BACK


def site(name: str, live: int, zk: int | None, witness: bool = False) -> DatacenterHealth:
    total = 0 if witness else 2
    state = (
        DatacenterState.LOST
        if (live == 0 and not witness) or (witness and zk == 0)
        else DatacenterState.OK
    )
    return DatacenterHealth(
        name=name,
        witness=witness,
        nodes_live=live,
        nodes_total=total,
        zookeeper_reachable=zk,
        zookeeper_total=1 if witness else 2,
        state=state,
    )


def test_no_sites_changes_nothing() -> None:
    assert datacenter_alerts(None, "dc1 (0/2 nodes live)") == {}


def test_a_lost_site_raises_and_a_return_is_reported_until_closed() -> None:
    lost = datacenter_alerts([site("dc1", 0, 0), site("dc2", 2, 2), site("w", 0, 1, True)], None)
    assert lost == {LOST: "dc1 (0/2 nodes live, 0/2 ZooKeeper servers serving)"}
    # Still lost, nothing new: the same detail (no update), no back alert.
    again = datacenter_alerts([site("dc1", 0, 0), site("dc2", 2, 2)], lost[LOST])
    assert again == lost
    # Back: the lost alert clears, the back alert names it.
    back = datacenter_alerts([site("dc1", 2, 2), site("dc2", 2, 2)], lost[LOST])
    assert back == {LOST: None, BACK: "dc1 (2/2 nodes live, 2/2 ZooKeeper servers serving)"}
    # Nothing lost, back alert open: left alone (a person closes it).
    assert datacenter_alerts([site("dc1", 2, 2)], None, back[BACK]) == {LOST: None}


def test_the_witness_and_several_sites() -> None:
    both = datacenter_alerts([site("dc1", 0, None), site("w", 0, 0, True)], None)
    assert both[LOST] == "dc1 (0/2 nodes live); w (witness) (0/1 ZooKeeper servers serving)"
    assert named_sites(both[LOST]) == {"dc1", "w"}
    # The witness returns first, then dc1: the back alert gathers both.
    first = datacenter_alerts([site("dc1", 0, None), site("w", 0, 1, True)], both[LOST])
    assert first[LOST] == "dc1 (0/2 nodes live)" and named_sites(first[BACK]) == {"w"}
    second = datacenter_alerts(
        [site("dc1", 1, None), site("w", 0, 1, True)], first[LOST], first[BACK]
    )
    assert second[LOST] is None and named_sites(second[BACK]) == {"w", "dc1"}
