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
from cluster.zk import probe
from cluster.zk.client import trusted_ca


@click.group()
def cluster() -> None:
    """The cluster as a whole."""


@cluster.command()
@json_option
@pass_globals
def status(g: Globals, as_json: bool) -> None:
    """Roster, liveness, quorum (and the rule that gives it), leader, epoch, and each data
    center: nodes live, ZooKeeper servers reachable from here, state (the text adds the license
    state; scripts read that from `managed mc status --json`)."""
    from cluster.link.licensing import license_view
    from cluster.link.settings import Link
    from cluster.link.state import read_state

    with g.session() as client:
        snap = zk.read_snapshot(client, g.paths)
        state = {} if as_json else read_state(client, g.paths)
    topology = snap.topology
    reachable = (
        probe.serving([z for s in topology.sites for z in s.zookeeper], trusted_ca(g.zk_ca))
        if topology
        else None
    )
    # The fields DESIGN.md lists, plus `quorum_rule` and `datacenters`.
    doc: dict[str, Any] = snap.status_json(reachable)

    def text() -> str:
        lic = license_view(state, Link.from_config(snap.config), time.time())
        q = doc["quorum"]
        lines = [
            f"cluster   {doc['cluster']}",
            f"leader    {doc['leader'] or '-'} (epoch {doc['epoch']})",
            f"quorum    {'ok' if q['ok'] else 'NOT MET'} ({q['have']} live, {q['need']} needed)",
            f"rule      {doc['quorum_rule']['reason']}",
            f"license   {_license_line(lic)}",
            *_operator_lines(snap),
            "",
            f"{'DATACENTER':<16} {'NODES':<8} {'ZOOKEEPER':<10} STATE",
            *(_datacenter_line(dc) for dc in doc["datacenters"]),
            "",
            f"{'NODE':<16} {'DATACENTER':<12} STATE",
        ]
        for r in doc["roster"]:
            lines.append(f"{r['id']:<16} {r['datacenter']:<12} {'live' if r['live'] else 'down'}")
        return "\n".join(lines)

    emit(as_json, doc, text)


def _datacenter_line(dc: dict[str, Any]) -> str:
    name = f"{dc['name']} (witness)" if dc["witness"] else dc["name"]
    nodes = f"{dc['nodes']['live']}/{dc['nodes']['total']}"
    zk_ = dc["zookeeper"]
    servers = "-" if zk_["reachable"] is None else f"{zk_['reachable']}/{zk_['total']}"
    return f"{name:<16} {nodes:<8} {servers:<10} {dc['state']}"


@cluster.command()
@click.argument("sites", nargs=-1, metavar="DC=HOST:PORT[,HOST:PORT]...")
@click.option(
    "--witness",
    "witness",
    metavar="SITE=HOST:PORT",
    help="The witness site: ZooKeeper servers and no node.",
)
@click.option("--clear", is_flag=True, help="Forget the declaration: the majority rule only.")
@pass_globals
def datacenters(g: Globals, sites: tuple[str, ...], witness: str | None, clear: bool) -> None:
    """Declare the data centers (each with its ZooKeeper servers) and the witness site, so the
    cluster keeps quorum when one data center is lost entirely; without arguments, show them."""
    from cluster.datacenters import Topology, TopologyError, parse_site
    from cluster.topology_store import read_topology, write_topology

    if clear and (sites or witness):
        raise click.UsageError("--clear takes no data centers")
    with g.session() as client:
        if not sites and not witness and not clear:
            topology = read_topology(client, g.paths)
            if topology is None:
                click.echo("no data centers declared: quorum is a majority of the roster")
            for site in topology.sites if topology else ():
                kind = "witness" if site.witness else "datacenter"
                click.echo(f"{kind:<10} {site.name:<16} {','.join(site.zookeeper)}")
            return
        try:
            declared = None
            if not clear:
                parsed = [parse_site(s) for s in sites]
                if witness:
                    parsed.append(parse_site(witness, witness=True))
                declared = Topology.checked(parsed)
        except TopologyError as e:
            raise click.UsageError(str(e)) from None
        write_topology(client, g.paths, declared, g.operator("managed cluster datacenters"))
    click.echo("data centers cleared" if declared is None else "data centers declared")


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
    from cluster.cli.deciders import guarded_changer
    from cluster.errors import ClusterError
    from cluster.lockdown import WrongCredential, close_cluster
    from contract.audit.canonical import JsonValue
    from contract.audit.events import AuditEvent

    assert g.zk_auth is not None  # g.session() refuses a missing credential first
    with g.session(timeout=30) as client:
        who = guarded_changer(client, g, "managed cluster secure", "acl")
        try:
            closed = close_cluster(client, g.paths, g.zk_auth)
        except WrongCredential as e:
            raise ClusterError(str(e)) from None
        if closed:
            now = datetime.now(UTC)
            detail: dict[str, JsonValue] = {"closed": len(closed), "first": list(closed[:20])}
            event = AuditEvent(now, who, "cluster.secured", g.cluster, "acl", detail)
            AuditLog(client, g.paths).append([event], now)
    if closed:
        click.echo(f"cluster {g.cluster}: gave {len(closed)} znode(s) the cluster's ACL")
    else:
        click.echo(f"cluster {g.cluster}: every znode already has the cluster's ACL")
