"""Switchover: an operator moves leadership to a named node, now or at a set time.

The request is a record in the cluster's `switchover` znode (`managed switchover --to NODE`).
The leader hands over when it is due (`cluster.decide`: RELEASE), writing the record's
`handing-over` state with a deadline in the same fenced transaction that deletes the lock; the
other nodes leave the lock to the target until that deadline (or until the target is no longer
live), so the named node takes it, not whichever is quickest. The next leader settles the record
(`done`, or `cancelled` with the reason) in a fenced write.

Guarantees: a switchover is requested only to a node that is in the roster, live, not drained
and reporting no health error, while a leader with quorum exists (`refusal`); the leader checks
the target again when the switchover is due and cancels it, with the reason, if the target can
no longer lead. One open request at a time (compare-and-set on the znode).
Does not guarantee: leadership never lands elsewhere: if the target dies during the handover,
another node takes the lock after the deadline and the record says so.
Pure: the request is written by `managed switchover` (`cluster.cli.operator`).
"""

from __future__ import annotations

from dataclasses import replace

from cluster.errors import ClusterError
from cluster.model import ClusterSnapshot, Switchover

#: How long the others leave a lock given up for the target before anyone may take it.
HANDOVER_GRACE = 10.0


class SwitchoverRefused(ClusterError):
    """The request was refused; the message says why in one line."""


def refusal(snap: ClusterSnapshot, target: str) -> str | None:
    """Why a switchover to `target` may not start now, or None when it may."""
    if snap.member(target) is None:
        return f"{target} is not in the roster of cluster {snap.cluster}"
    live = snap.live_member(target)
    if live is None:
        return f"{target} is not live"
    if live.health_error:
        return f"{target} is not healthy: {live.health_error}"
    if target in snap.drained:
        return f"{target} is drained: run `managed node undrain {target}` first"
    if snap.leader is None:
        return "no node leads: nothing to switch over from"
    if snap.leader.node == target:
        return f"{target} already leads"
    if not snap.quorum.ok:
        return f"the cluster has no quorum ({snap.quorum.have}/{snap.quorum.need})"
    return None


def handing_over(
    snap: ClusterSnapshot, me: str, now: float, grace: float = HANDOVER_GRACE
) -> Switchover | None:
    """The record the leader `me` writes with the deletion of its lock when a switchover to a
    node that can lead is due (None otherwise: the lock is given up for another reason)."""
    s = snap.switchover
    if s is None or s.state != "scheduled" or s.to == me or now < s.at:
        return None
    if not snap.can_lead(s.to):
        return None
    return replace(s, state="handing-over", deadline=now + grace)


def settled(snap: ClusterSnapshot, me: str, now: float) -> Switchover | None:
    """What the leader `me` writes to close an open record, or None when there is nothing to
    close yet (a scheduled switchover not yet due, or due to a node that can lead)."""
    s = snap.switchover
    if s is None or not s.open:
        return None
    if s.to == me:
        return replace(s, state="done", outcome=f"{me} leads")
    if s.state == "handing-over":
        return replace(s, state="cancelled", outcome=f"{s.to} did not take the lock; {me} did")
    if now >= s.at and not snap.can_lead(s.to):
        why = refusal(snap, s.to) or f"{s.to} cannot lead"
        return replace(s, state="cancelled", outcome=why)
    return None
