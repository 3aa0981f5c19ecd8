"""Pure logic: quorum, decisions, status document, roster refusals; no servers."""

from __future__ import annotations

import pytest

from cluster.decide import Action, decide
from cluster.model import (
    ClusterSnapshot,
    Epoch,
    Leader,
    LiveMember,
    RosterEntry,
    quorum_of,
)
from cluster.roster import join_refusal, leave_refusal
from contract.resources import UNMEASURED


def snap(
    roster: list[str], live: list[str], leader: tuple[str, int] | None = None
) -> ClusterSnapshot:
    return ClusterSnapshot(
        cluster="c",
        roster=tuple(
            RosterEntry(n, "dc1", f"127.0.0.1:{9000 + i}", 0.0) for i, n in enumerate(roster)
        ),
        live=tuple(LiveMember(n, "1", 0.0, UNMEASURED, session_id=hash(n) & 0xFFFF) for n in live),
        leader=Leader(leader[0], 3, 0.0, session_id=leader[1]) if leader else None,
        epoch=Epoch(3, 3),
    )


@pytest.mark.parametrize(
    ("roster", "live", "have", "need", "ok"),
    [
        (0, 0, 0, 0, False),
        (1, 1, 1, 1, True),
        (1, 0, 0, 1, False),
        (2, 1, 1, 2, False),
        (3, 2, 2, 2, True),
        (3, 1, 1, 2, False),
        (4, 2, 2, 3, False),
        (5, 3, 3, 3, True),
    ],
)
def test_quorum_is_floor_half_plus_one(
    roster: int, live: int, have: int, need: int, ok: bool
) -> None:
    members = frozenset(f"n{i}" for i in range(roster))
    up = frozenset(f"n{i}" for i in range(live)) | {"stranger"}
    q = quorum_of(members, up)
    assert (q.have, q.need, q.ok) == (have, need, ok)


def test_acquire_only_with_quorum_and_no_leader() -> None:
    assert decide(snap(["a", "b", "c"], ["a", "b"]), "a", 1, True).action is Action.ACQUIRE
    d = decide(snap(["a", "b", "c"], ["a"]), "a", 1, True)
    assert d.action is Action.FOLLOW and "no quorum" in d.reason


def test_leader_with_lock_leads_and_pauses_without_quorum() -> None:
    assert decide(snap(["a", "b", "c"], ["a", "b"], ("a", 7)), "a", 7, True).action is Action.LEAD
    d = decide(snap(["a", "b", "c"], ["a"], ("a", 7)), "a", 7, True)
    assert d.action is Action.PAUSE and "1/2" in d.reason


def test_lock_from_an_earlier_session_is_not_mine() -> None:
    d = decide(snap(["a", "b", "c"], ["a", "b"], ("a", 7)), "a", 8, True)
    assert d.action is Action.FOLLOW and "earlier session" in d.reason


def test_suspended_connection_never_leads() -> None:
    d = decide(snap(["a", "b", "c"], ["a", "b"], ("a", 7)), "a", 7, False)
    assert d.action is Action.FOLLOW and "suspended" in d.reason


def test_a_leader_removed_from_the_roster_releases_the_lock() -> None:
    # `node leave --force` on the running leader: its lock must go, or all keep following it.
    d = decide(snap(["b", "c"], ["a", "b", "c"], ("a", 7)), "a", 7, True)
    assert d.action is Action.RELEASE and "no longer in the roster" in d.reason
    # ...but only a lock of this session; and never while suspended.
    d = decide(snap(["b", "c"], ["a", "b", "c"], ("a", 7)), "a", 8, True)
    assert d.action is Action.FOLLOW and "not in the roster" in d.reason
    assert decide(snap(["b", "c"], ["a", "b"], ("a", 7)), "a", 7, False).action is Action.FOLLOW
    # The others follow it until it is gone, then one acquires (2 of 2 live).
    assert decide(snap(["b", "c"], ["a", "b", "c"], ("a", 7)), "b", 1, True).action is (
        Action.FOLLOW
    )
    assert decide(snap(["b", "c"], ["a", "b", "c"]), "b", 1, True).action is Action.ACQUIRE


def test_outsiders_and_unregistered_nodes_do_not_acquire() -> None:
    assert decide(snap(["a", "b"], ["a", "b", "z"]), "z", 1, True).action is Action.FOLLOW
    assert decide(snap(["a", "b", "c"], ["b", "c"]), "a", 1, True).action is Action.FOLLOW


def test_status_json_has_exactly_the_documented_fields() -> None:
    doc = snap(["b", "a", "c"], ["a", "c"], ("a", 1)).status_json()
    # DESIGN.md's fields, plus the data-center ones (added, never changed).
    assert set(doc) == {
        "cluster",
        "roster",
        "quorum",
        "leader",
        "epoch",
        "quorum_rule",
        "datacenters",
    }
    assert doc["quorum_rule"] == {
        "name": "majority",
        "reason": "majority: 2 of 3 roster nodes live, 2 needed",
    }
    assert doc["datacenters"] == [
        {
            "name": "dc1",
            "witness": False,
            "nodes": {"live": 2, "total": 3},
            "zookeeper": {"reachable": None, "total": 0},
            "state": "degraded",
        }
    ]
    assert doc["roster"][0] == {"id": "a", "datacenter": "dc1", "live": True}
    assert [r["id"] for r in doc["roster"]] == ["a", "b", "c"]
    assert doc["quorum"] == {"have": 2, "need": 2, "ok": True}
    assert (doc["leader"], doc["epoch"]) == ("a", 3)


def test_leave_refused_for_live_node_and_broken_quorum() -> None:
    s = snap(["a", "b", "c"], ["a", "b"])
    assert leave_refusal(s, "a") is not None and "live" in str(leave_refusal(s, "a"))
    assert leave_refusal(s, "c") is None  # 2 of remaining 2 live
    s2 = snap(["a", "b", "c", "d"], ["a"])
    assert "quorum" in str(leave_refusal(s2, "d"))


def test_join_refusals() -> None:
    s = snap(["a"], [])
    same = RosterEntry("a", "dc1", "127.0.0.1:9000", 1.0)
    assert join_refusal(s, same) is None
    assert "already in the roster" in str(
        join_refusal(s, RosterEntry("a", "dc2", "127.0.0.1:9000", 1.0))
    )
    assert "already used" in str(join_refusal(s, RosterEntry("b", "dc1", "127.0.0.1:9000", 1.0)))


def test_health_summary_lists_every_roster_member() -> None:
    s = snap(["a", "b", "c"], ["a", "c", "z"], ("a", 1))
    summary = s.health_summary("a", 4, 12.5)
    assert {k: summary[k] for k in ("cluster", "leader", "epoch", "at")} == {
        "cluster": "c",
        "leader": "a",
        "epoch": 4,
        "at": 12.5,
    }
    assert summary["quorum"] == {"have": 2, "need": 2, "ok": True}
    assert set(summary["nodes"]) == {"a", "b", "c"}  # an outsider that is live is not listed
    assert summary["nodes"]["b"] == {"datacenter": "dc1", "live": False}
    assert summary["nodes"]["a"]["live"] and summary["nodes"]["a"]["version"] == "1"
    assert set(summary["nodes"]["a"]["health"]) >= {
        "cpu_cores",
        "memory_total_bytes",
        "disk_used_bytes",
    }


def test_malformed_znode_data_parses_to_defaults() -> None:
    assert RosterEntry.from_node("a", b"not json").datacenter == ""
    assert Leader.from_node(b"[1,2]").node == ""
    assert Epoch.from_node(b"x", 4) == Epoch(0, 4)
