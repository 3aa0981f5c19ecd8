"""The cluster-wide rolling upgrade plan (`upgrade/plan` in ZooKeeper) and how the leader moves it.

The operator's `managed upgrade apply --bundle FILE` verifies the bundle and creates the plan
(compare-and-set: one plan runs at a time); from then on only the leader changes it, in fenced
transactions with an audit entry per step (`cluster.upgrade.rollout`). Nodes report what they
did in `upgrade/reports/<node>` (`Report`); the leader reads those and their live znodes.

Every node verifies the bundle again and installs the release beside its running one as soon as
the plan starts (nothing restarts: that is harmless, and the installs overlap instead of taking
turns). Each node then goes, in turn, `pending` -> `installing` (its turn: the leader waits for
its install report) -> `restarting` (given only while quorum holds without it; the
node re-execs into the new version, on trial) -> `done` (live, healthy, running the target).
A node whose new version does not come up goes `rolled-back` (its launcher went back to
`versions/previous`) or `failed` (not back by the deadline, or its install failed); the plan
then stops (`failed`), with an alert for Mission Control. A node that did come up on the new
version but was not live and healthy by the deadline gives its trial up when it sees its step
failed: it stops and starts the previous version again (`NodeWork.give_up`). The leader is
upgraded last: when its turn comes it first hands leadership to an upgraded node (a switchover
record).

Guarantees: `refusal` keeps a second plan from starting while one runs, while maintenance is on,
and when the cluster would run three versions at once; `advance` is pure (the node daemon's
leader service applies what it returns), so a new leader resumes the plan from ZooKeeper where
the last one left it, never from scratch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from cluster.datacenters import quorum_rule
from cluster.model import ClusterSnapshot

PENDING, INSTALLING, RESTARTING, DONE = "pending", "installing", "restarting", "done"
ROLLED_BACK, FAILED = "rolled-back", "failed"
RUNNING, FINISHED = "running", "done"
#: A plan's `bundle` when every node fetches the release from Mission Control (a bundle's
#: path is absolute, so it cannot be mistaken for this).
MISSION_CONTROL = "mission-control:"
#: How long a node has, from the leader's go, to run the new version live and healthy.
RESTART_TIMEOUT = 120.0


@dataclass(frozen=True)
class NodeStep:
    state: str = PENDING
    deadline: float = 0.0
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "deadline": self.deadline, "error": self.error}


@dataclass(frozen=True)
class Plan:
    """A rolling upgrade to `version`: nodes in `order`, each with its step."""

    id: str
    version: str
    bundle: str  # the bundle's path, the same on every node's machine, or MISSION_CONTROL
    order: tuple[str, ...]
    nodes: dict[str, NodeStep]
    started: float
    by: str
    state: str = RUNNING
    timeout: float = RESTART_TIMEOUT
    reason: str = ""
    finalized: bool = False

    @classmethod
    def from_bytes(cls, data: bytes) -> Plan:
        d = json.loads(data)
        return cls(
            id=str(d["id"]),
            version=str(d["version"]),
            bundle=str(d["bundle"]),
            order=tuple(str(n) for n in d["order"]),
            nodes={str(n): NodeStep(**s) for n, s in d["nodes"].items()},
            started=float(d["started"]),
            by=str(d.get("by", "")),
            state=str(d.get("state", RUNNING)),
            timeout=float(d.get("timeout", RESTART_TIMEOUT)),
            reason=str(d.get("reason", "")),
            finalized=bool(d.get("finalized", False)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "bundle": self.bundle,
            "order": list(self.order),
            "nodes": {n: self.nodes[n].to_json() for n in self.order},
            "started": self.started,
            "by": self.by,
            "state": self.state,
            "timeout": self.timeout,
            "reason": self.reason,
            "finalized": self.finalized,
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True).encode()

    @property
    def turn(self) -> str | None:
        """The node being upgraded now (the first not done), None when all are."""
        return next((n for n in self.order if self.nodes[n].state != DONE), None)

    def step(self, node: str, **changes: Any) -> Plan:
        return replace(self, nodes={**self.nodes, node: replace(self.nodes[node], **changes)})


@dataclass(frozen=True)
class Report:
    """What a node did for a plan (`upgrade/reports/<node>`): `installed`, `install-failed`
    or `rolled-back` (its launcher went back to the previous version)."""

    plan: str
    version: str
    state: str
    error: str = ""

    @classmethod
    def from_bytes(cls, data: bytes) -> Report | None:
        try:
            d = json.loads(data)
            return cls(str(d["plan"]), str(d["version"]), str(d["state"]), str(d.get("error", "")))
        except (ValueError, KeyError, TypeError):
            return None

    def to_bytes(self) -> bytes:
        d = {"plan": self.plan, "version": self.version, "state": self.state, "error": self.error}
        return json.dumps(d, sort_keys=True).encode()


def node_order(snap: ClusterSnapshot) -> tuple[str, ...]:
    """Followers first (by name), the leader last."""
    leader = snap.leader.node if snap.leader else None
    return tuple(sorted(e.node for e in snap.roster if e.node != leader)) + (
        (leader,) if leader and snap.member(leader) else ()
    )


def refusal(snap: ClusterSnapshot, current: Plan | None, version: str) -> str | None:
    """Why a plan to `version` may not start now, or None."""
    if current is not None and current.state == RUNNING:
        return f"an upgrade to {current.version} is running: wait for it (`managed upgrade status`)"
    if snap.maintenance is not None:
        return "maintenance is on: upgrades wait (`managed maintenance off`)"
    if snap.leader is None or not snap.quorum.ok:
        return "no leader with quorum: an upgrade needs one to drive it"
    down = sorted(snap.roster_ids - snap.live_ids)
    if down:
        return f"node {down[0]} is not live: every node must be up to be upgraded"
    versions = {m.version for m in snap.live if m.version} | {version}
    if len(versions) > 2:
        return (
            f"the cluster runs {sorted(versions - {version})}: upgrading to {version} would "
            f"make three versions at once (finish the running upgrade first)"
        )
    return None


@dataclass(frozen=True)
class Advance:
    """What the leader writes after one look: the new plan, the audit actions (action, node),
    an alert line for Mission Control, or a switchover to request first."""

    plan: Plan
    actions: tuple[tuple[str, str], ...] = ()
    alert: str = ""
    switchover_to: str | None = None
    waiting: str = ""


def _quorum_without(snap: ClusterSnapshot, node: str) -> bool:
    rule = quorum_rule(snap.placement, snap.live_ids - {node}, snap.topology)
    return rule.need > 0 and rule.have >= rule.need


def _fail(plan: Plan, node: str, state: str, why: str) -> Advance:
    failed = replace(plan.step(node, state=state, error=why), state=FAILED, reason=why)
    line = f"upgrade to {plan.version} stopped: {why}"
    return Advance(failed, ((f"upgrade.node_{state.replace('-', '_')}", node),), alert=line)


def advance(plan: Plan, snap: ClusterSnapshot, reports: dict[str, Report], now: float) -> Advance:
    """One step of a running plan as the leader sees it (an unchanged plan: nothing to do)."""
    if plan.state != RUNNING:
        return Advance(plan)
    if snap.maintenance is not None:
        return Advance(plan, waiting="maintenance is on")
    node = plan.turn
    if node is None:
        return Advance(replace(plan, state=FINISHED), (("upgrade.done", ""),))
    step = plan.nodes[node]
    got = reports.get(node)
    report = got if got and got.plan == plan.id and got.version == plan.version else None
    if step.state == PENDING:
        return _start(plan, snap, node)
    if step.state == INSTALLING:
        if report and report.state == "install-failed":
            return _fail(plan, node, FAILED, f"{node} could not install it: {report.error}")
        if report is None or report.state != "installed":
            return Advance(plan, waiting=f"{node} installing")
        if not _quorum_without(snap, node):
            return Advance(plan, waiting=f"quorum would not hold without {node}")
        restart = plan.step(node, state=RESTARTING, deadline=now + plan.timeout)
        return Advance(restart, (("upgrade.node_restarting", node),))
    if step.state == RESTARTING:
        live = snap.live_member(node)
        if live and live.version == plan.version and live.health_error is None:
            return Advance(plan.step(node, state=DONE), (("upgrade.node_done", node),))
        if report and report.state == ROLLED_BACK:
            why = f"{node} did not start {plan.version} and went back: {report.error}"
            return _fail(plan, node, ROLLED_BACK, why)
        if now > step.deadline:
            why = f"{node} was not live and healthy on {plan.version} within {plan.timeout:.0f} s"
            return _fail(plan, node, FAILED, why)
        return Advance(plan, waiting=f"{node} restarting")
    return Advance(plan)


def _start(plan: Plan, snap: ClusterSnapshot, node: str) -> Advance:
    """The go for `node` to install: a leader hands over to an upgraded node first."""
    if snap.leader and snap.leader.node == node:
        done = [n for n in plan.order if plan.nodes[n].state == DONE and snap.can_lead(n)]
        if not done:
            return Advance(plan, waiting=f"no upgraded node can take over from {node}")
        if snap.switchover is not None and snap.switchover.open:
            return Advance(plan, waiting="a switchover is under way")
        return Advance(plan, switchover_to=done[0], waiting=f"handing over to {done[0]}")
    if snap.live_member(node) is None:
        return Advance(plan, waiting=f"{node} is not live")
    return Advance(plan.step(node, state=INSTALLING), (("upgrade.node_installing", node),))


@dataclass
class NodeWork:
    """What this node must do for the plan now (`node_work`)."""

    install: bool = False
    restart: bool = False
    confirm: bool = False
    prune: bool = False
    give_up: bool = False
    notes: list[str] = field(default_factory=list)


def node_work(plan: Plan | None, node: str, running: str, reported: Report | None) -> NodeWork:
    """This node's part: install as soon as the plan runs (once per plan: every node installs
    at the same time, so only the restarts take turns), restart into the target when
    told to (not after having come back from it), confirm the trial once done, prune the
    rollback target once the plan is finalized, and give the trial up when the leader failed
    this node's step while it runs the plan's version (up, but not healthy in time)."""
    work = NodeWork()
    if plan is None:
        return work
    if plan.finalized:
        work.prune = True
        return work
    step = plan.nodes.get(node)
    if step is None:
        return work
    if plan.state == FAILED and step.state == FAILED and running == plan.version:
        work.give_up = True
        return work
    if plan.state != RUNNING and step.state != DONE:
        return work
    ours = reported if reported and reported.plan == plan.id else None
    if step.state in (PENDING, INSTALLING) and ours is None:
        work.install = True  # ahead of its turn: installing beside the running one is harmless
    elif step.state == RESTARTING and running != plan.version:
        work.restart = ours is not None and ours.state == "installed"
    elif step.state == DONE and running == plan.version:
        work.confirm = True
    return work
