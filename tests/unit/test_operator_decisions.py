"""Pure logic of the operator verbs: drain and switchover decisions, switchover refusals and
settlement, history entries; no servers."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cluster import switchover
from cluster.decide import Action, decide
from cluster.history import Leadership
from cluster.model import ClusterSnapshot, Epoch, Leader, LiveMember, RosterEntry, Switchover
from contract.resources import UNMEASURED

SESSIONS = {"a": 11, "b": 12, "c": 13}


def snap(
    live: tuple[str, ...] = ("a", "b", "c"),
    leader: str | None = "a",
    drained: tuple[str, ...] = (),
    sw: Switchover | None = None,
    sick: tuple[str, ...] = (),
) -> ClusterSnapshot:
    config: dict[str, Any] = {"operator": {"drained": list(drained)}} if drained else {}
    return ClusterSnapshot(
        cluster="c",
        roster=tuple(
            RosterEntry(n, "dc1", f"127.0.0.1:{9000 + i}", 0.0) for i, n in enumerate("abc")
        ),
        live=tuple(
            LiveMember(n, "1", 0.0, UNMEASURED, SESSIONS[n], "disk gone" if n in sick else None)
            for n in live
        ),
        leader=Leader(leader, 3, 0.0, SESSIONS[leader]) if leader else None,
        epoch=Epoch(3, 3),
        config=config,
        switchover=sw,
    )


def test_a_drained_leader_hands_over_only_when_another_node_can_lead() -> None:
    d = decide(snap(drained=("a",)), "a", SESSIONS["a"], True, 100.0)
    assert d.action is Action.RELEASE and "drained" in d.reason
    # Nobody else could take the lock: keep leading rather than leave the cluster leaderless.
    alone = snap(live=("a", "b"), drained=("a", "b"))
    assert decide(alone, "a", SESSIONS["a"], True, 100.0).action is Action.LEAD


def test_a_drained_node_never_acquires() -> None:
    d = decide(snap(leader=None, drained=("b",)), "b", SESSIONS["b"], True, 100.0)
    assert d.action is Action.FOLLOW and "drained" in d.reason
    assert decide(snap(leader=None, drained=("b",)), "c", SESSIONS["c"], True).action is (
        Action.ACQUIRE
    )


def test_a_switchover_is_handed_over_when_due_and_the_target_can_lead() -> None:
    due = Switchover(to="b", at=100.0, requested_at=90.0, by="op")
    assert decide(snap(sw=due), "a", SESSIONS["a"], True, 99.0).action is Action.LEAD
    d = decide(snap(sw=due), "a", SESSIONS["a"], True, 100.0)
    assert d.action is Action.RELEASE and "switchover to b" in d.reason
    # Not without a clock, and not to a node that cannot lead (the leader settles it instead).
    assert decide(snap(sw=due), "a", SESSIONS["a"], True).action is Action.LEAD
    for cannot in (
        snap(sw=due, live=("a", "c")),
        snap(sw=due, sick=("b",)),
        snap(sw=due, drained=("b",)),
    ):
        assert decide(cannot, "a", SESSIONS["a"], True, 100.0).action is Action.LEAD
        settled = switchover.settled(cannot, "a", 100.0)
        assert settled is not None and settled.state == "cancelled", cannot


def test_the_lock_is_left_to_the_target_until_the_deadline() -> None:
    handing = Switchover(
        to="b", at=100.0, requested_at=90.0, by="op", state="handing-over", deadline=110.0
    )
    free = snap(leader=None, sw=handing)
    d = decide(free, "c", SESSIONS["c"], True, 105.0)
    assert d.action is Action.FOLLOW and "leaving the lock to it" in d.reason
    assert decide(free, "b", SESSIONS["b"], True, 105.0).action is Action.ACQUIRE
    assert decide(free, "c", SESSIONS["c"], True, 110.0).action is Action.ACQUIRE  # deadline
    gone = snap(leader=None, live=("a", "c"), sw=handing)
    assert decide(gone, "c", SESSIONS["c"], True, 105.0).action is Action.ACQUIRE  # target died


def test_the_new_leader_settles_the_record() -> None:
    handing = Switchover(
        to="b", at=1.0, requested_at=1.0, by="op", state="handing-over", deadline=9.0
    )
    done = switchover.settled(snap(leader="b", sw=handing), "b", 5.0)
    assert done is not None and (done.state, done.outcome) == ("done", "b leads")
    other = switchover.settled(snap(leader="c", sw=handing), "c", 20.0)
    assert other is not None and other.state == "cancelled" and "c did" in other.outcome
    later = Switchover(to="b", at=50.0, requested_at=1.0, by="op")
    assert switchover.settled(snap(sw=later), "a", 5.0) is None  # not due yet
    assert switchover.settled(snap(sw=replace(later, state="done")), "a", 60.0) is None


def test_switchover_refusals_name_the_reason() -> None:
    assert switchover.refusal(snap(), "b") is None
    assert "not in the roster" in (switchover.refusal(snap(), "zz") or "")
    assert "not live" in (switchover.refusal(snap(live=("a", "c")), "b") or "")
    assert "not healthy: disk gone" in (switchover.refusal(snap(sick=("b",)), "b") or "")
    assert "drained" in (switchover.refusal(snap(drained=("b",)), "b") or "")
    assert "already leads" in (switchover.refusal(snap(), "a") or "")
    assert "no node leads" in (switchover.refusal(snap(leader=None), "b") or "")


def test_history_entries_round_trip_and_close() -> None:
    entry = Leadership("a", 4, 10.0)
    assert Leadership.from_node(entry.to_bytes()) == entry
    closed = entry.closed(20.0, "switchover to b")
    assert Leadership.from_node(closed.to_bytes()) == closed
    assert Leadership.from_node(b"not json") is None
