"""`managed switchover`, `managed maintenance` and `managed node drain|undrain` (patronictl's
operator verbs, for this cluster).

Each change is written with the cluster's credential and appended to the audit log in the same
transaction, naming the credential's user as the operator.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import click

from cluster import operator_config, zk
from cluster.audit.store import AuditLog
from cluster.backups.text import when_text
from cluster.cli.common import Globals, emit, json_option, pass_globals
from cluster.dev.processes import wait_until
from cluster.model import Switchover, dump
from cluster.paths import ClusterPaths
from cluster.switchover import SwitchoverRefused, refusal
from cluster.zk import OpFailed, SetData, ZooKeeper
from cluster.zk.errors import BadVersionError
from contract.audit.events import Actor, ActorKind, AuditEvent

#: How long `switchover` (without --at) and `node drain` of the leader wait for the new leader.
WAIT_S = 30.0


def operator_actor(g: Globals, via: str) -> Actor:
    assert g.zk_auth is not None  # g.session() refuses a missing credential first
    return Actor(g.zk_auth.split(":", 1)[0], ActorKind.OPERATOR, via=via)


# --- switchover ---------------------------------------------------------------------------


def at_from_text(text: str | None, now: datetime) -> float:
    """`--at TIME` (ISO 8601; without a zone, UTC) as epoch seconds; now when None."""
    if text is None:
        return now.timestamp()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise SwitchoverRefused(
            f"--at {text!r} is not a time: give ISO 8601, e.g. 2026-12-07T02:00+00:00"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when < now:
        raise SwitchoverRefused(f"--at {text} is in the past")
    return when.timestamp()


def request_switchover(
    client: ZooKeeper, paths: ClusterPaths, target: str, at: float, actor: Actor, now: datetime
) -> Switchover:
    """Record a switchover to `target` at `at`, audited in the same transaction (compare-and-
    set on the switchover znode: one open request at a time)."""
    zk.ensure_cluster(client, paths)
    for _ in range(5):
        snap = zk.read_snapshot(client, paths)
        why = refusal(snap, target)
        if why is not None:
            raise SwitchoverRefused(f"switchover refused: {why}")
        current = snap.switchover
        if current is not None and current.open:
            state = current.state.replace("-", " ")
            raise SwitchoverRefused(f"switchover refused: one to {current.to} is already {state}")
        _data, stat = client.get(paths.switchover)
        record = Switchover(to=target, at=at, requested_at=now.timestamp(), by=actor.name)
        op = SetData(paths.switchover, dump(record.to_json()), stat.version)
        leader = snap.leader.node if snap.leader else None
        detail: dict[str, Any] = {"from": leader, "at": when_text(at)}
        event = AuditEvent(now, actor, "cluster.switchover", paths.cluster, target, detail)
        try:
            AuditLog(client, paths).append([event], now, [op])
        except OpFailed as e:
            if isinstance(e.error, BadVersionError):
                continue  # another request landed in between: check again
            raise
        return record
    raise SwitchoverRefused("switchover refused: the request kept changing; try again")


@click.command()
@click.option("--to", "target", default=None, metavar="NODE", help="The node to lead.")
@click.option(
    "--at",
    "at_text",
    default=None,
    metavar="TIME",
    help="When (ISO 8601, UTC unless a zone is given); now if omitted.",
)
@click.option("--cancel", is_flag=True, help="Cancel the scheduled switchover instead.")
@pass_globals
def switchover(g: Globals, target: str | None, at_text: str | None, cancel: bool) -> None:
    """Move leadership to NODE (live, in the roster, healthy, not drained), now or at TIME;
    or cancel a scheduled one."""
    if cancel:
        if target or at_text:
            raise click.UsageError("--cancel takes neither --to nor --at")
        cancel_switchover(g)
        return
    if target is None:
        raise click.UsageError("give --to NODE (or --cancel)")
    now = datetime.now(UTC)
    at = at_from_text(at_text, now)
    with g.session() as client:
        request_switchover(
            client, g.paths, target, at, operator_actor(g, "managed switchover"), now
        )
        if at_text is not None:
            click.echo(f"switchover to {target} scheduled at {when_text(at)}")
            return
        seen: list[Switchover] = []

        def settled() -> bool:
            s = zk.read_snapshot(client, g.paths).switchover
            if s is not None and not s.open:
                seen.append(s)
                return True
            return False

        if not wait_until(settled, WAIT_S, 0.05):
            raise SwitchoverRefused(
                f"switchover to {target} not done within {WAIT_S:.0f} s: "
                "see `managed cluster status` and the leader's log"
            )
        snap = zk.read_snapshot(client, g.paths)
    if seen[-1].state != "done":
        raise SwitchoverRefused(f"switchover to {target} cancelled: {seen[-1].outcome}")
    click.echo(f"switched over: {target} leads (epoch {snap.epoch.value})")


def cancel_switchover(g: Globals) -> None:
    """Cancel a scheduled switchover (compare-and-set, audited). One already handing over
    cannot be: the lock is being given up."""
    now = datetime.now(UTC)
    actor = operator_actor(g, "managed switchover --cancel")
    with g.session() as client:
        zk.ensure_cluster(client, g.paths)
        data, stat = client.get(g.paths.switchover)
        current = Switchover.from_node(data)
        if current is None or current.state != "scheduled":
            state = f" (it is {current.state})" if current and current.open else ""
            raise SwitchoverRefused(f"no scheduled switchover to cancel{state}")
        record = replace(current, state="cancelled", outcome=f"cancelled by {actor.name}")
        op = SetData(g.paths.switchover, dump(record.to_json()), stat.version)
        detail: dict[str, Any] = {"at": when_text(current.at)}
        event = AuditEvent(
            now, actor, "cluster.switchover.cancelled", g.paths.cluster, current.to, detail
        )
        try:
            AuditLog(client, g.paths).append([event], now, [op])
        except OpFailed as e:
            if isinstance(e.error, BadVersionError):
                raise SwitchoverRefused("the switchover changed meanwhile: look again") from None
            raise
    click.echo(f"switchover to {current.to} at {when_text(current.at)} cancelled")


# --- maintenance --------------------------------------------------------------------------


@click.command()
@click.argument("state", required=False, type=click.Choice(["on", "off"]))
@click.option("--reason", default="", help="Why (recorded in the audit log and shown).")
@json_option
@pass_globals
def maintenance(g: Globals, state: str | None, reason: str, as_json: bool) -> None:
    """Maintenance mode: `on` pauses automatic leader-only actions (scheduled backups,
    upgrades); `off` resumes them. Without ON|OFF, show it."""
    with g.session() as client:
        if state is not None:
            now = datetime.now(UTC)
            actor = operator_actor(g, f"managed maintenance {state}")
            decide = operator_config.maintenance(state == "on", actor.name, time.time(), reason)
            changed = operator_config.change(client, g.paths, g.cluster, actor, now, decide)
            word = "is now" if changed else "was already"
            click.echo(
                f"cluster {g.cluster} {word} {'in' if state == 'on' else 'out of'} maintenance"
            )
            return
        m = zk.read_snapshot(client, g.paths).maintenance
    doc = {"maintenance": m is not None, **(m.to_json() if m else {})}

    def text() -> str:
        if m is None:
            return f"cluster {g.cluster}: not in maintenance"
        why = f": {m.reason}" if m.reason else ""
        return f"cluster {g.cluster}: in maintenance since {when_text(m.since)} (by {m.by}){why}"

    emit(as_json, doc, text)


# --- drain ----------------------------------------------------------------------------------


def drain_node(g: Globals, node_id: str, on: bool) -> None:
    """`node drain` / `node undrain`: change the drained set; a drained leader hands over at
    once, and `drain` waits (bounded) until another node leads."""
    verb = "drain" if on else "undrain"
    now = datetime.now(UTC)
    with g.session() as client:
        actor = operator_actor(g, f"managed node {verb}")
        decide = operator_config.drain(node_id, on)
        changed = operator_config.change(client, g.paths, node_id, actor, now, decide)
        if not on:
            click.echo(f"{node_id} {'may lead again' if changed else 'was not drained'}")
            return

        def elsewhere() -> bool:
            leader = zk.read_snapshot(client, g.paths).leader
            return leader is not None and leader.node != node_id

        if not wait_until(elsewhere, WAIT_S, 0.05):
            raise operator_config.OperatorRefused(
                f"{node_id} is drained but still leads after {WAIT_S:.0f} s: see its log"
            )
        leader = zk.read_snapshot(client, g.paths).leader
    assert leader is not None
    state = "drained" if changed else "was already drained"
    click.echo(f"{node_id} {state}: it never leads; {leader.node} leads")
