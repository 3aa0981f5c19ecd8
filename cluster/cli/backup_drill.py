"""`managed backup drill configure|run|list`: restore drills (see docs/backups.md).

The drill itself runs in the cluster (`cluster.backups.drill_leader`, `drill_node`); these
commands only store settings, queue a request, follow it and print records.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from cluster.backups.errors import BackupRunError
from cluster.cli.common import Globals, emit, json_option, pass_globals

if TYPE_CHECKING:
    from cluster.backups.drills import DrillRecord
    from cluster.zk import ZooKeeper

OFF = "off"
Sleep = Callable[[float], object]


@click.group()
def drill() -> None:
    """Restore drills: prove backups restore, with measured RTO and RPO."""


@drill.command()
@click.option("--schedule", help="Cron line in UTC, e.g. '0 4 * * 0' ('off' to disable).")
@click.option("--scratch", help="Absolute directory on the drill node for the restored copy.")
@click.option("--node", help="The node that runs drills ('leader': whichever node leads).")
@click.option(
    "--key-file",
    help="Absolute path, on the drill node, of the private backup key (mode 0600).",
)
@click.option("--no-key", is_flag=True, help="Drill without a key: check every stored byte only.")
@click.option("--timeout", type=click.FloatRange(min=1), help="Seconds a drill may take.")
@pass_globals
def configure(
    g: Globals,
    schedule: str | None,
    scratch: str | None,
    node: str | None,
    key_file: str | None,
    no_key: bool,
    timeout: float | None,
) -> None:
    """Set when drills run, where they restore and with which key (validated first)."""
    from cluster.backups import config_store
    from cluster.backups.config_store import Change
    from cluster.backups.drill_settings import DrillSettings

    if key_file and no_key:
        raise click.UsageError("--key-file and --no-key exclude each other")
    updates: dict[str, Any] = {}
    if schedule is not None:
        updates["schedule"] = None if schedule.lower() == OFF else schedule
    if scratch is not None:
        updates["scratch"] = scratch
    if node is not None:
        updates["node"] = None if node == "leader" else node
    if key_file is not None or no_key:
        updates["key_file"] = key_file
    if timeout is not None:
        updates["timeout"] = timeout

    def change(_config: dict[str, Any], current: Any) -> Change:
        base = current.drill or DrillSettings()
        try:
            merged = DrillSettings.model_validate({**base.model_dump(), **updates})
        except ValueError as exc:
            raise BackupRunError(f"drill settings: {_first_error(exc)}") from exc
        return Change(current.model_copy(update={"drill": merged}), None)

    with g.session() as client:
        settings = config_store.update(client, g.paths, change)
    d = settings.drill
    assert d is not None
    key = d.key_file or "none (digests only: nothing is decrypted)"
    click.echo(
        f"drill settings of cluster {g.cluster} saved: schedule {d.schedule or 'none'}; "
        f"scratch {d.scratch or '- (required)'}; node {d.node or 'the leader'}; key {key}"
    )


def _first_error(exc: ValueError) -> str:
    from pydantic import ValidationError

    from contract.validation import first_error

    if isinstance(exc, ValidationError):
        return ": ".join(first_error(exc, "drill"))
    return str(exc)


@drill.command()
@click.option("--wait", is_flag=True, help="Follow the drill until it ends (exit 1 if it fails).")
@click.option("--timeout", type=click.FloatRange(min=1), default=6 * 3600.0, show_default=True)
@pass_globals
def run(g: Globals, wait: bool, timeout: float) -> None:
    """Ask the leader for a restore drill of the newest successful backup now."""
    from cluster.backups import config_store, drill_store
    from cluster.backups.settings import BackupSettings
    from cluster.backups.wakeup import ThreadWakeup

    with g.session() as client:
        settings = BackupSettings.from_config(config_store.read_config(client, g.paths)[0])
        if settings.drill is None or settings.drill.scratch is None:
            raise BackupRunError(
                "drills are not configured: run `managed backup drill configure --scratch DIR`"
            )
        drill_store.ensure_layout(client, g.paths)
        seen = ThreadWakeup(client, children=[g.paths.backup_drills])
        request = drill_store.request_drill(client, g.paths, by=f"cli@{socket.gethostname()}")
        try:
            started = _find(client, g, request, 30 if wait else 5, seen.wait)
            if started is None:
                if wait:
                    raise BackupRunError(
                        f"no leader took up drill request {request} within 30s: is a node "
                        "leading with quorum, or a backup running? The request stays queued."
                    )
                click.echo(f"drill requested ({request}); no leader has taken it up yet")
                return
            if not wait:
                click.echo(f"drill {started.id} started: `managed backup drill list`")
                return
            final = _follow(client, g, started.id, timeout, seen.wait)
        finally:
            seen.close()
    if final.status != "ok":
        raise click.ClickException(final.describe())
    click.echo(final.describe())


def _find(
    client: ZooKeeper, g: Globals, request: str, timeout: float, sleep: Sleep
) -> DrillRecord | None:
    """The drill that took up `request`, or None if none did within `timeout`."""
    from cluster.backups import drill_store

    deadline = time.monotonic() + timeout
    while True:
        for found in reversed(drill_store.list_drills(client, g.paths)):
            if request in found.requests:
                return found
        if time.monotonic() >= deadline:
            return None
        sleep(0.2)


def _follow(
    client: ZooKeeper, g: Globals, drill_id: str, timeout: float, sleep: Sleep
) -> DrillRecord:
    """Drill `drill_id`'s record once it ended; BackupRunError after `timeout`."""
    from cluster.backups import drill_store

    deadline = time.monotonic() + timeout
    while True:
        record = drill_store.read_drill(client, g.paths, drill_id)
        if record is None:
            raise BackupRunError(f"drill {drill_id} disappeared from ZooKeeper")
        if record.status != "running":
            return record
        if time.monotonic() >= deadline:
            raise BackupRunError(f"drill {drill_id} still running after {timeout:g}s")
        sleep(0.25)


@drill.command("list")
@json_option
@pass_globals
def list_drills(g: Globals, as_json: bool) -> None:
    """Restore drills recorded in the cluster, oldest first, with RTO and RPO."""
    from cluster.backups import drill_store

    with g.session() as client:
        records = drill_store.list_drills(client, g.paths)
    rows = [r.summary() for r in records]

    def text() -> str:
        from cluster.backups.text import drill_list_text
        from contract.drills import rto_trend

        points = [r.rto for r in records if r.status == "ok" and r.rto is not None]
        return drill_list_text(rows, g.cluster, rto_trend(points))

    emit(as_json, rows, text)
