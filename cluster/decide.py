"""What a node should do next: a pure function of a snapshot and the node's own view.

Each outcome carries a readable reason ("no action: I am the leader with the lock"), easy to log
and to unit-test, after Patroni's `ha.py` decisions, without its size.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cluster.model import ClusterSnapshot


class Action(enum.Enum):
    LEAD = "lead"  # I hold the leader znode and quorum: run leader-only work
    PAUSE = "pause"  # I hold the leader znode but may not act (no quorum)
    ACQUIRE = "acquire"  # nobody leads, quorum is there: try to take over
    FOLLOW = "follow"  # someone else leads, or nobody may
    RELEASE = "release"  # I hold the leader znode but may not lead (not in the roster): give it up


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


def decide(
    snapshot: ClusterSnapshot,
    me: str,
    session_id: int,
    connected: bool,
    now: float | None = None,
) -> Decision:
    """Decide this node's next step.

    `session_id` is this node's ZooKeeper session: the leader znode is ours only if it is the
    ephemeral owner, so a node that lost its session never mistakes an old record for its own.
    `now` (this node's clock) bounds a switchover: without it a due switchover is not handed
    over, and a lock given up for another node is left to it for as long as it is live.
    """
    if not connected:
        return Decision(Action.FOLLOW, "ZooKeeper connection suspended: no leader-only work")
    quorum = snapshot.quorum
    leader = snapshot.leader
    mine = leader is not None and leader.node == me and leader.session_id == session_id
    if snapshot.member(me) is None:
        if mine:
            # Removed from the roster while leading (`node leave --force`): the lock lives as
            # long as this session, so everyone would keep following a node that may not act.
            return Decision(
                Action.RELEASE, f"{me} holds the lock but is no longer in the roster: releasing it"
            )
        return Decision(Action.FOLLOW, f"{me} is not in the roster: cannot lead")
    if mine:
        if not quorum.ok:
            return Decision(
                Action.PAUSE,
                f"I hold the lock but have no quorum ({quorum.have}/{quorum.need}): paused",
            )
        handing = _handing_over(snapshot, me, now)
        if handing is not None:
            return handing
        return Decision(Action.LEAD, "no action: I am the leader with the lock")
    if leader is not None and leader.node == me:
        return Decision(
            Action.FOLLOW, "the leader record is from an earlier session of mine: awaiting expiry"
        )
    if leader is not None:
        return Decision(Action.FOLLOW, f"following {leader.node} (epoch {leader.epoch})")
    if snapshot.live_member(me) is None:
        return Decision(Action.FOLLOW, "not registered live yet: cannot lead")
    if me in snapshot.drained:
        return Decision(Action.FOLLOW, f"{me} is drained: never takes the lock")
    waiting = _left_to_another(snapshot, me, now)
    if waiting is not None:
        return waiting
    if not quorum.ok:
        return Decision(
            Action.FOLLOW, f"no leader and no quorum ({quorum.have}/{quorum.need}): waiting"
        )
    return Decision(Action.ACQUIRE, f"no leader, quorum {quorum.have}/{quorum.need}: acquiring")


def _handing_over(snapshot: ClusterSnapshot, me: str, now: float | None) -> Decision | None:
    """RELEASE when this leader is drained (and another node can take the lock), or when a
    switchover to another node that can lead is due; None otherwise."""
    if me in snapshot.drained:
        others = [e.node for e in snapshot.roster if e.node != me and snapshot.can_lead(e.node)]
        if others:
            return Decision(Action.RELEASE, f"{me} is drained: handing the lock over")
    s = snapshot.switchover
    if (
        s is not None
        and s.state == "scheduled"
        and s.to != me
        and now is not None
        and now >= s.at
        and snapshot.can_lead(s.to)
    ):
        return Decision(Action.RELEASE, f"switchover to {s.to}: handing the lock over")
    return None


def _left_to_another(snapshot: ClusterSnapshot, me: str, now: float | None) -> Decision | None:
    """FOLLOW while the lock was given up for another node that is still live, until the
    switchover's deadline: the node it was meant for takes it, not whoever is quickest."""
    s = snapshot.switchover
    if s is None or s.state != "handing-over" or s.to == me:
        return None
    if snapshot.live_member(s.to) is None or (now is not None and now >= s.deadline):
        return None
    return Decision(Action.FOLLOW, f"switchover to {s.to} in progress: leaving the lock to it")
