"""`managed cluster status|history|secure`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import click

from cluster import zk
from cluster.backups.text import when_text
from cluster.cli.common import Globals, emit, json_option, pass_globals
from cluster.model import ClusterSnapshot


@click.group()
def cluster() -> None:
    """The cluster as a whole."""


@cluster.command()
@json_option
@pass_globals
def status(g: Globals, as_json: bool) -> None:
    """Roster, liveness, quorum, leader and epoch (the text adds the license state; scripts
    read that from `managed mc status --json`)."""
    from cluster.link.licensing import license_view
    from cluster.link.settings import Link
    from cluster.link.state import read_state

    with g.session() as client:
        snap = zk.read_snapshot(client, g.paths)
        state = {} if as_json else read_state(client, g.paths)
    doc: dict[str, Any] = snap.status_json()  # exactly the fields DESIGN.md lists

    def text() -> str:
        lic = license_view(state, Link.from_config(snap.config), time.time())
        q = doc["quorum"]
        lines = [
            f"cluster   {doc['cluster']}",
            f"leader    {doc['leader'] or '-'} (epoch {doc['epoch']})",
            f"quorum    {'ok' if q['ok'] else 'NOT MET'} ({q['have']} live, {q['need']} needed)",
            f"license   {_license_line(lic)}",
            *_operator_lines(snap),
            "",
            f"{'NODE':<16} {'DATACENTER':<12} STATE",
        ]
        for r in doc["roster"]:
            lines.append(f"{r['id']:<16} {r['datacenter']:<12} {'live' if r['live'] else 'down'}")
        return "\n".join(lines)

    emit(as_json, doc, text)


def _operator_lines(snap: ClusterSnapshot) -> list[str]:
    """Maintenance, drained nodes and an open switchover, when there are any."""
    lines = []
    m = snap.maintenance
    if m is not None:
        why = f": {m.reason}" if m.reason else ""
        lines.append(f"maintenance ON since {when_text(m.since)} (by {m.by}){why}")
    if snap.drained:
        lines.append(f"drained   {', '.join(sorted(snap.drained))} (never lead)")
    s = snap.switchover
    if s is not None and s.open:
        lines.append(f"switchover to {s.to} {s.state} (at {when_text(s.at)})")
    return lines


def _license_line(lic: dict[str, Any]) -> str:
    from cluster.link.licensing import license_line

    return license_line(lic)


@cluster.command()
@json_option
@pass_globals
def history(g: Globals, as_json: bool) -> None:
    """Each leadership, oldest first: node, epoch, start, end and why it ended."""
    from cluster.history import read

    with g.session() as client:
        entries = read(client, g.paths)
    rows = [e.to_json() for e in entries]

    def text() -> str:
        if not rows:
            return f"cluster {g.cluster}: no leadership recorded yet"
        lines = [f"{'EPOCH':>6}  {'NODE':<16} {'START':<22} {'END':<22} WHY IT ENDED"]
        for e in entries:
            ended = e.ended or ("leading" if e.end is None else "")
            start, end = when_text(e.start), when_text(e.end)
            lines.append(f"{e.epoch:>6}  {e.node:<16} {start:<22} {end:<22} {ended}")
        return "\n".join(lines)

    emit(as_json, rows, text)


@cluster.command()
@pass_globals
def secure(g: Globals) -> None:
    """Give every znode of a cluster made by an earlier version the cluster's ACL (the one
    upgrade step; idempotent, recorded in the audit log)."""
    from cluster.audit.store import AuditLog
    from cluster.errors import ClusterError
    from cluster.lockdown import WrongCredential, close_cluster
    from contract.audit.canonical import JsonValue
    from contract.audit.events import Actor, ActorKind, AuditEvent

    assert g.zk_auth is not None  # g.session() refuses a missing credential first
    with g.session(timeout=30) as client:
        try:
            closed = close_cluster(client, g.paths, g.zk_auth)
        except WrongCredential as e:
            raise ClusterError(str(e)) from None
        if closed:
            now = datetime.now(UTC)
            who = Actor(
                g.zk_auth.split(":", 1)[0], ActorKind.OPERATOR, via="managed cluster secure"
            )
            detail: dict[str, JsonValue] = {"closed": len(closed), "first": list(closed[:20])}
            event = AuditEvent(now, who, "cluster.secured", g.cluster, "acl", detail)
            AuditLog(client, g.paths).append([event], now)
    if closed:
        click.echo(f"cluster {g.cluster}: gave {len(closed)} znode(s) the cluster's ACL")
    else:
        click.echo(f"cluster {g.cluster}: every znode already has the cluster's ACL")
