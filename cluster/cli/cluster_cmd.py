"""`managed cluster status`."""

from __future__ import annotations

import time
from typing import Any

import click

from cluster import zk
from cluster.cli.common import Globals, emit, json_option, pass_globals


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
            "",
            f"{'NODE':<16} {'DATACENTER':<12} STATE",
        ]
        for r in doc["roster"]:
            lines.append(f"{r['id']:<16} {r['datacenter']:<12} {'live' if r['live'] else 'down'}")
        return "\n".join(lines)

    emit(as_json, doc, text)


def _license_line(lic: dict[str, Any]) -> str:
    from cluster.link.licensing import license_line

    return license_line(lic)
