"""`managed backup configure|keygen|rotate-key|pause|resume|run|list|show|verify|restore`.

Settings live in the cluster config (validated on write); runs are started by the leader and
recorded in ZooKeeper; the private key is needed only by `verify --key`, `restore` and
`rotate-key`. The work itself is in `cluster.backups`; these commands only parse and print.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import click

from cluster.backups.errors import BackupConfigError
from cluster.backups.text import (
    list_text,
    missing_text,
    restore_text,
    run_line,
    show_text,
    signer_line,
)
from cluster.cli.common import KEY_FILE, Globals, emit, json_option, pass_globals
from cluster.zk import ZooKeeper

OFF = "off"


class BackupGroup(click.Group):
    """Turns the backup library's errors into one line, as ManagedGroup does for the cluster's."""

    def invoke(self, ctx: click.Context) -> Any:
        from backup.errors import BackupError

        try:
            return super().invoke(ctx)
        except BackupError as e:
            raise click.ClickException(str(e)) from e


@click.group(cls=BackupGroup)
def backup() -> None:
    """Encrypted backups: settings, keys, runs, verify and restore."""


@backup.command()
@click.option("--geography", help="The cluster's geography (EU, US, ...); targets must be in it.")
@click.option("--target", help="Primary target: file:///DIR or s3://BUCKET/PREFIX?region=R.")
@click.option("--mirror", "mirrors", multiple=True, help="An in-geography replica (repeatable).")
@click.option("--no-mirrors", is_flag=True, help="Remove every mirror.")
@click.option("--schedule", help="Cron line in UTC, e.g. '0 2 * * *' ('off' to disable).")
@click.option("--keep-last", type=click.IntRange(min=0))
@click.option("--keep-daily", type=click.IntRange(min=0))
@click.option("--keep-weekly", type=click.IntRange(min=0))
@click.option("--keep-monthly", type=click.IntRange(min=0))
@click.option("--bandwidth-limit", help="Per node, e.g. 100MiB/s ('off' for none).")
@click.option("--part-timeout", type=click.FloatRange(min=1), help="Seconds to wait for parts.")
@click.option("--public-key", type=KEY_FILE, help="Install an existing customer public key (PEM).")
@pass_globals
def configure(
    g: Globals,
    geography: str | None,
    target: str | None,
    mirrors: tuple[str, ...],
    no_mirrors: bool,
    schedule: str | None,
    keep_last: int | None,
    keep_daily: int | None,
    keep_weekly: int | None,
    keep_monthly: int | None,
    bandwidth_limit: str | None,
    part_timeout: float | None,
    public_key: Path | None,
) -> None:
    """Set where, when and how backups are written (validated before anything is stored)."""
    from backup.keys import key_id, public_key_pem, read_public_key
    from cluster.backups import config_store
    from cluster.backups.config_store import Change
    from cluster.cli.deciders import guarded_changer

    if mirrors and no_mirrors:
        raise click.UsageError("--mirror and --no-mirrors exclude each other")
    given: dict[str, Any] = {
        "target": target,
        "mirrors": tuple(mirrors) if mirrors else (() if no_mirrors else None),
        "keep_last": keep_last,
        "keep_daily": keep_daily,
        "keep_weekly": keep_weekly,
        "keep_monthly": keep_monthly,
        "part_timeout": part_timeout,
    }
    updates = {k: v for k, v in given.items() if v is not None}
    for name, value in (("schedule", schedule), ("bandwidth_limit", bandwidth_limit)):
        if value is not None:  # `off` removes the setting
            updates[name] = None if value.lower() == OFF else value
    if public_key is not None:
        key = read_public_key(public_key)
        updates["public_key"], updates["key_id"] = public_key_pem(key).decode(), key_id(key)

    def change(_config: dict[str, Any], current: Any) -> Change:
        return Change(current.model_copy(update=updates), geography.upper() if geography else None)

    redirects = target is not None or mirrors or no_mirrors or public_key is not None
    with g.session() as client:
        if redirects:  # where backups go, or the key they are encrypted to
            guarded_changer(client, g, "managed backup configure", "backup")
        settings, signer = config_store.update_signed(client, g.paths, g.zk_auth, change)
    click.echo(f"backup settings of cluster {g.cluster} saved: " + _describe(settings))
    click.echo(signer_line(signer))


def _describe(settings: Any) -> str:
    parts = [f"target {settings.target or '-'}"]
    if settings.mirrors:
        parts.append(f"mirrors {', '.join(settings.mirrors)}")
    parts.append(f"schedule {settings.schedule or 'none'}{' (paused)' if settings.paused else ''}")
    parts.append("key " + (settings.key_id[:16] if settings.key_id else "none (run keygen)"))
    return "; ".join(parts)


def _set_paused(g: Globals, paused: bool) -> None:
    from cluster.backups import config_store
    from cluster.backups.config_store import Change

    def flip(_config: dict[str, Any], current: Any) -> Change:
        return Change(current.model_copy(update={"paused": paused}), None)

    with g.session() as client:
        config_store.update(client, g.paths, flip)
    click.echo(f"scheduled backups of cluster {g.cluster} {'paused' if paused else 'resumed'}")


@backup.command()
@pass_globals
def pause(g: Globals) -> None:
    """Skip scheduled runs until `resume` (manual runs still work)."""
    _set_paused(g, True)


@backup.command()
@pass_globals
def resume(g: Globals) -> None:
    """Run scheduled backups again."""
    _set_paused(g, False)


@backup.command()
@click.option("--wait", is_flag=True, help="Follow the run until it ends (progress on a terminal).")
@click.option("--timeout", type=click.FloatRange(min=1), default=6 * 3600.0, show_default=True)
@pass_globals
def run(g: Globals, wait: bool, timeout: float) -> None:
    """Ask the leader to start a backup now."""
    # Only what queuing the request needs is loaded before it: the leader starts the run while
    # the rest of this command loads (docs/benchmarks.md). The leader validates the settings
    # in full and records a run it cannot plan as failed, with the reason.
    from cluster.backups import queued
    from cluster.backups.wakeup import ThreadWakeup

    with g.session() as client:
        missing = queued.missing_setting(queued.read_config(client, g.paths)[0])
        if missing is not None:
            raise BackupConfigError(missing)
        # The leader's new run, then its end, are seen at once.
        runs = ThreadWakeup(client, children=[g.paths.backup_runs])
        request = queued.request_run(client, g.paths, by=f"cli@{socket.gethostname()}")
        from cluster.backups.display import Bars
        from cluster.backups.errors import BackupRunError
        from cluster.backups.follow import find_run, follow

        try:
            started = find_run(client, g.paths, request, timeout=30 if wait else 5, sleep=runs.wait)
        except BackupRunError as e:
            if wait:
                raise
            click.echo(f"backup requested ({request}); no leader has taken it up yet: {e}")
            return
        finally:
            runs.close()
        if started.status == "failed":  # refused by the leader's full check of the settings
            raise click.ClickException(run_line(started.summary()))
        if not wait:
            click.echo(f"backup {started.id} started: `managed backup show {started.id}`")
            return
        ended = ThreadWakeup(client, data=[g.paths.backup_run(started.id)])
        with Bars() as bars:
            final = follow(client, g.paths, started.id, timeout, bars.on_run, sleep=ended.wait)
        ended.close()
    line = run_line(final.summary())
    if final.status != "ok":
        raise click.ClickException(line)
    click.echo(line)
    if final.missing:
        click.echo(missing_text(final.missing), err=True)


def _signer(client: ZooKeeper, g: Globals) -> str | None:
    from cluster.backups import config_store
    from cluster.backups.settings import BackupSettings

    config = config_store.read_config(client, g.paths)[0]
    return config_store.signer_of(BackupSettings.from_config(config))


@backup.command("list")
@json_option
@pass_globals
def list_runs(g: Globals, as_json: bool) -> None:
    """Backup runs recorded in the cluster, oldest first, and which a drill proved."""
    from cluster.backups import config_store, drill_store, store
    from cluster.backups.drills import proofs
    from cluster.backups.settings import BackupSettings

    with g.session() as client:
        settings = BackupSettings.from_config(config_store.read_config(client, g.paths)[0])
        signer = config_store.signer_of(settings)
        proven = proofs(drill_store.list_drills(client, g.paths))
        rows = [
            {**r.summary(), "signer": signer, "proven": _proof(proven.get(r.id))}
            for r in store.list_runs(client, g.paths)
        ]
    current = settings.installed_key_id
    emit(as_json, rows, lambda: list_text(rows, g.cluster, signer, current))


def _proof(drill: Any) -> dict[str, Any] | None:
    """How `list --json` says a drill proved a backup: when, which drill, its RTO."""
    if drill is None:
        return None
    return {"at": drill.finished, "drill": drill.id, "rto_seconds": drill.rto}


@backup.command()
@click.argument("backup_id", metavar="ID")
@json_option
@pass_globals
def show(g: Globals, backup_id: str, as_json: bool) -> None:
    """One run: status, size, duration, targets, parts, signer, key, reason."""
    from backup.layout import check_backup_id
    from cluster.backups import store

    check_backup_id(backup_id)  # one line (ConfigError) for anything that is not an id
    with g.session() as client:
        record = store.read_run(client, g.paths, backup_id)
        if record is None:
            raise BackupConfigError(f"no backup run {backup_id} in cluster {g.cluster}")
        outcomes = store.read_outcomes(client, g.paths, backup_id)
        signer = _signer(client, g)
    doc: dict[str, Any] = {
        **record.summary(),
        "signer": signer,
        "retention": record.retention,
        "parts": [
            {
                "part": o.part,
                "node": o.node,
                "bytes": o.record.size_cipher if o.record else None,
                "frames": o.record.frames if o.record else None,
                "error": o.error,
            }
            for o in outcomes.values()
        ],
    }
    emit(as_json, doc, lambda: show_text(doc))


@backup.command()
@click.argument("backup_id", metavar="ID")
@click.option("--key", type=KEY_FILE, help="Private key: also decrypt and authenticate frames.")
@click.option(
    "--signer",
    "signers",
    multiple=True,
    metavar="FINGERPRINT",
    help="Expect this manifest signer (default: the cluster's signing key).",
)
@pass_globals
def verify(g: Globals, backup_id: str, key: Path | None, signers: tuple[str, ...]) -> None:
    """Check every stored object on every target the backup was written to (exit 1 on the
    first problem)."""
    from backup.manifest import fingerprints
    from backup.verify import verify_backup  # not backup.engine: start-up time
    from cluster.backups import config_store, keyfiles
    from cluster.backups.display import Bars
    from cluster.backups.settings import BackupSettings, plan_run
    from cluster.backups.signing import decode_public
    from cluster.backups.work import open_plan

    private = keyfiles.load_private(key) if key else None
    with g.session() as client:
        config = config_store.read_config(client, g.paths)[0]
    settings = BackupSettings.from_config(config)
    trusted = fingerprints(signers) if signers else decode_public(settings.signing_public_key)
    whose = "the given --signer" if signers else "this cluster's signing key"
    with Bars() as bars:
        report = verify_backup(
            backup_id,
            open_plan(plan_run(config)),
            private_key=private,
            trusted=trusted,
            progress=bars.on_event,
        )
    if not report.ok:
        first = report.first_problem
        assert first is not None
        frame = f", frame {first.frame}" if first.frame is not None else ""
        where = f"part {first.part or '-'}{frame}"
        raise click.ClickException(f"{report.describe()} ({where} on {first.target})")
    click.echo(report.describe())
    trust = f" ({whose})" if trusted is not None else " (not checked: no signer known)"
    click.echo(f"signed by {report.signer}{trust}; targets {', '.join(report.targets)}")
    current = settings.installed_key_id
    if report.key_id and private is None and current and report.key_id != current:
        click.echo(
            f"written for backup key {report.key_id[:16]}, not the cluster's current key "
            f"{current[:16]}: check `managed audit log` for a change of the backup key",
            err=True,
        )
    elif report.key_id:
        mine = " (the key given)" if private is not None else ""
        click.echo(f"written for backup key {report.key_id[:16]}{mine}")


@backup.command()
@click.argument("backup_id", metavar="ID")
@click.option("--key", required=True, type=KEY_FILE, help="The customer's private key.")
@click.option("--target", "source", required=True, metavar="URL", help="Where the backup is.")
@click.option(
    "--signer",
    "signers",
    multiple=True,
    metavar="FINGERPRINT",
    help="The cluster signing key you trust (default: KEY.signers, written by keygen).",
)
@click.option(
    "--data-dir",
    "data_dirs",
    multiple=True,
    metavar="NODE=DIR",
    help="Where a node's data directory goes (default: the node's default directory).",
)
@click.option(
    "--min-epoch",
    type=click.IntRange(min=0),
    default=0,
    help="Start the restored cluster's epochs above this (Mission Control's last epoch).",
)
@pass_globals
def restore(
    g: Globals,
    backup_id: str,
    key: Path,
    source: str,
    signers: tuple[str, ...],
    data_dirs: tuple[str, ...],
    min_epoch: int,
) -> None:
    """Restore a backup into an empty cluster: node data directories, then ZooKeeper."""
    from backup.targets import open_target, parse_target_url
    from cluster.backups import keyfiles
    from cluster.backups.display import Bars
    from cluster.backups.restore import parse_mappings, restore_cluster

    mapping = parse_mappings(data_dirs)
    trusted = keyfiles.trusted_signers(key, signers)
    location = parse_target_url(source)
    private = keyfiles.load_private(key)
    with g.session() as client, Bars() as bars:
        report = restore_cluster(
            client,
            g.paths,
            g.zk_auth,
            backup_id,
            open_target(location),
            private,
            mapping,
            bars.on_event,
            signers=trusted,
            min_epoch=min_epoch,
        )
    lines, warnings = restore_text(report.__dict__)
    click.echo("\n".join(lines))
    if warnings:
        click.echo("\n".join(warnings), err=True)


# The key commands live in their own module (keygen, rotate-key).
from cluster.cli.backup_drill import drill  # noqa: E402
from cluster.cli.backup_keys import keygen, rotate_key  # noqa: E402

backup.add_command(keygen)
backup.add_command(rotate_key)
backup.add_command(drill)
