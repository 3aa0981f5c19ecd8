"""`managed upgrade window SPEC | --clear`: when the leader may install offered releases.

The window is stored in `upgrade/window` (the cluster's ACL) with an audit entry, in one
transaction; a spec that does not parse is one line and changes nothing. See
`cluster.upgrade.window` for the syntax (UTC).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import click

from cluster import zk
from cluster.audit.store import AuditLog
from cluster.cli.common import Globals, pass_globals
from cluster.cli.operator import operator_actor
from cluster.errors import ConfigError
from cluster.upgrade.rollout import read_window
from cluster.upgrade.window import WindowError, parse
from contract.audit.events import AuditEvent


@click.command()
@click.argument("spec", required=False, metavar='"DAYS HH:MM-HH:MM"')
@click.option("--clear", is_flag=True, help="Remove the window: offered releases wait.")
@pass_globals
def window(g: Globals, spec: str | None, clear: bool) -> None:
    """Set the maintenance window (UTC) inside which the leader installs the release Mission
    Control offers, e.g. "Sun 02:00-04:00", "Mon-Fri 22:00-02:00", "daily 03:00-04:00";
    --clear removes it; with neither, show it."""
    if spec is not None and clear:
        raise click.UsageError("give a window or --clear, not both")
    via = "managed upgrade window"
    if spec is not None:
        try:
            wanted = parse(spec)
        except WindowError as e:
            raise ConfigError(f"window refused: {e}") from None
    with g.session() as client:
        current = read_window(client, g.paths)
        exists = client.exists(g.paths.upgrade_window)
        if spec is None and not clear:
            click.echo(f"window {current[0]} (UTC)" if current else "no window: offers wait")
            return
        now = datetime.now(UTC)
        actor = operator_actor(g, via)
        ops: list[zk.Op]
        detail: dict[str, Any] = {}
        if clear:
            if exists is None:
                click.echo("no window was set")
                return
            ops = [zk.Delete(g.paths.upgrade_window, exists.version)]
            action, subject = "upgrade.window_cleared", "window"
        else:
            record = {"spec": str(wanted), "set_at": time.time(), "by": actor.name}
            data = json.dumps(record, sort_keys=True).encode()
            client.ensure_path(g.paths.upgrade)
            ops = [
                zk.Create(g.paths.upgrade_window, data)
                if exists is None
                else zk.SetData(g.paths.upgrade_window, data, exists.version)
            ]
            action, subject = "upgrade.window_set", str(wanted)
            detail = {"spec": str(wanted)}
        event = AuditEvent(now, actor, action, g.cluster, subject, detail)
        try:
            AuditLog(client, g.paths).append([event], now, ops)
        except zk.OpFailed:
            raise ConfigError("window refused: it changed meanwhile; try again") from None
    click.echo("window cleared: offered releases wait" if clear else f"window set: {wanted} UTC")
