"""`managed backup configure|keygen|pause|resume|run|list|show|verify|restore`.

Settings live in the cluster config (validated on write); runs are started by the leader and
recorded in ZooKeeper; the private key is needed only by `verify --key` and `restore`.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import click

from cluster.backups.errors import BackupConfigError
from cluster.backups.text import run_line, size_text, when_text
from cluster.cli.common import Globals, emit, json_option, pass_globals

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


def _configure_change(**given: Any) -> Any:
    from cluster.backups.config_store import Change

    def change(_config: dict[str, Any], current: Any) -> Change:
        update = {k: v for k, v in given.items() if v is not None and k != "geography"}
        return Change(current.model_copy(update=update), given.get("geography"))

    return change


def _signed(g: Globals, client: Any, change: Any) -> Any:
    """Validate `change` first (bad input changes nothing), then ensure the signing key."""
    from cluster.backups import config_store
    from cluster.backups.signing import encode_public, ensure_signing_key

    config, _ = config_store.read_config(client, g.paths)
    from cluster.backups.settings import BackupSettings

    proposed = change(config, BackupSettings.from_config(config))
    proposed.settings.checked(config_store.geography_after(config, proposed.geography))
    public = encode_public(ensure_signing_key(client, g.paths, g.zk_auth))

    def with_key(cfg: dict[str, Any], current: Any) -> Any:
        result = change(cfg, current)
        settings = result.settings.model_copy(update={"signing_public_key": public})
        return config_store.Change(settings, result.geography)

    return config_store.update(client, g.paths, with_key)


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
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Install an existing customer public key (PEM).",
)
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

    if mirrors and no_mirrors:
        raise click.UsageError("--mirror and --no-mirrors exclude each other")
    given: dict[str, Any] = {
        "geography": geography.upper() if geography else None,
        "target": target,
        "mirrors": tuple(mirrors) if mirrors else (() if no_mirrors else None),
        "keep_last": keep_last,
        "keep_daily": keep_daily,
        "keep_weekly": keep_weekly,
        "keep_monthly": keep_monthly,
        "part_timeout": part_timeout,
    }
    unset: dict[str, str | None] = {"schedule": schedule, "bandwidth_limit": bandwidth_limit}
    if public_key is not None:
        key = read_public_key(public_key)
        given["public_key"], given["key_id"] = public_key_pem(key).decode(), key_id(key)
    with g.session() as client:
        change = _configure_change(**given)

        def with_unset(config: dict[str, Any], current: Any) -> Any:
            result = change(config, current)
            clears = {k: None for k, v in unset.items() if v is not None and v.lower() == OFF}
            sets = {k: v for k, v in unset.items() if v is not None and v.lower() != OFF}
            return type(result)(
                result.settings.model_copy(update={**sets, **clears}), result.geography
            )

        settings = _signed(g, client, with_unset)
    click.echo(f"backup settings of cluster {g.cluster} saved: " + _describe(settings))


def _describe(settings: Any) -> str:
    parts = [f"target {settings.target or '-'}"]
    if settings.mirrors:
        parts.append(f"mirrors {', '.join(settings.mirrors)}")
    parts.append(f"schedule {settings.schedule or 'none'}{' (paused)' if settings.paused else ''}")
    parts.append("key " + (settings.key_id[:16] if settings.key_id else "none (run keygen)"))
    return "; ".join(parts)


@backup.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--algorithm", type=click.Choice(["x25519", "rsa"]), default="x25519", show_default=True
)
@click.option("--passphrase", is_flag=True, help="Protect the private key (scrypt); asks for it.")
@pass_globals
def keygen(g: Globals, file: Path, algorithm: str, passphrase: bool) -> None:
    """Make a key pair: private key to FILE (0600), public key into the cluster config."""
    from backup.keys import KeyAlgorithm, public_key_pem, read_public_key
    from cluster.backups import config_store, keyfiles
    from cluster.backups.config_store import Change

    with g.session() as client:
        config_store.read_config(client, g.paths)  # reachable and readable before writing files
        kind: KeyAlgorithm = "x25519" if algorithm == "x25519" else "rsa-oaep-sha256"
        kid, pub = keyfiles.generate(file, kind, passphrase)
        pem = public_key_pem(read_public_key(pub)).decode()

        def install(_config: dict[str, Any], current: Any) -> Change:
            return Change(current.model_copy(update={"public_key": pem, "key_id": kid}), None)

        _signed(g, client, install)
    click.echo(
        f"private key written to {file} (mode 0600: keep it off the cluster), public key to "
        f"{pub}; key {kid[:16]} installed in cluster {g.cluster}"
    )


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
    from cluster.backups import config_store, store
    from cluster.backups.display import Bars
    from cluster.backups.errors import BackupRunError
    from cluster.backups.follow import find_run, follow
    from cluster.backups.settings import plan_run

    with g.session() as client:
        plan_run(config_store.read_config(client, g.paths)[0])  # refuse at once if unconfigured
        request = store.request_run(client, g.paths, by=f"cli@{socket.gethostname()}")
        try:
            started = find_run(client, g.paths, request, timeout=30 if wait else 5)
        except BackupRunError as e:
            if wait:
                raise
            click.echo(f"backup requested ({request}); no leader has taken it up yet: {e}")
            return
        if not wait:
            click.echo(f"backup {started.id} started: `managed backup show {started.id}`")
            return
        with Bars() as bars:
            final = follow(client, g.paths, started.id, timeout, bars.on_run)
    line = run_line(final.summary())
    if final.status != "ok":
        raise click.ClickException(line)
    click.echo(line)


@backup.command("list")
@json_option
@pass_globals
def list_runs(g: Globals, as_json: bool) -> None:
    """Backup runs recorded in the cluster, oldest first."""
    from cluster.backups import store

    with g.session() as client:
        rows = [r.summary() for r in store.list_runs(client, g.paths)]

    def text() -> str:
        if not rows:
            return f"cluster {g.cluster} has no backup runs yet: `managed backup run --wait`"
        lines = [f"{'ID':<26} {'STATUS':<8} {'STARTED':<21} {'DURATION':>9} {'SIZE':>10}  TRIGGER"]
        for r in rows:
            took = f"{r['duration']:.1f}s" if r["duration"] is not None else "-"
            lines.append(
                f"{r['id']:<26} {r['status']:<8} {when_text(r['started']):<21} {took:>9} "
                f"{size_text(r['bytes']):>10}  {r['trigger']}"
            )
        return "\n".join(lines)

    emit(as_json, rows, text)


@backup.command()
@click.argument("backup_id", metavar="ID")
@json_option
@pass_globals
def show(g: Globals, backup_id: str, as_json: bool) -> None:
    """One run: status, size, duration, targets, parts, reason."""
    from cluster.backups import store

    with g.session() as client:
        record = store.read_run(client, g.paths, backup_id)
        if record is None:
            raise BackupConfigError(f"no backup run {backup_id} in cluster {g.cluster}")
        outcomes = store.read_outcomes(client, g.paths, backup_id)
    doc: dict[str, Any] = {
        **record.summary(),
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

    def text() -> str:
        lines = [
            run_line(doc),
            f"started   {when_text(doc['started'])} ({doc['trigger']}, epoch {doc['epoch']})",
            f"finished  {when_text(doc['finished'])}",
            f"targets   {', '.join(doc['targets']) or '-'}",
        ]
        if doc["retention"]:
            lines.append(f"retention {doc['retention']}")
        for p in doc["parts"]:
            state = p["error"] or f"{size_text(p['bytes'])}, {p['frames']} frame(s)"
            lines.append(f"  part {p['part']:<14} {state}")
        return "\n".join(lines)

    emit(as_json, doc, text)


def _trusted(settings: Any) -> Any:
    from cluster.backups.signing import decode_public

    return decode_public(settings.signing_public_key)


@backup.command()
@click.argument("backup_id", metavar="ID")
@click.option(
    "--key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Private key: also decrypt and authenticate every frame.",
)
@pass_globals
def verify(g: Globals, backup_id: str, key: Path | None) -> None:
    """Check every stored object on the primary and every mirror (exit 1 on the first problem)."""
    from backup.engine import verify_backup
    from cluster.backups import config_store, keyfiles
    from cluster.backups.display import Bars
    from cluster.backups.settings import BackupSettings, plan_run
    from cluster.backups.work import open_plan

    private = keyfiles.load_private(key) if key else None
    with g.session() as client:
        config = config_store.read_config(client, g.paths)[0]
    plan, settings = plan_run(config), BackupSettings.from_config(config)
    with Bars() as bars:
        report = verify_backup(
            backup_id,
            open_plan(plan),
            private_key=private,
            trusted=_trusted(settings),
            progress=bars.on_event,
        )
    if not report.ok:
        first = report.first_problem
        assert first is not None
        frame = f", frame {first.frame}" if first.frame is not None else ""
        where = f"part {first.part or '-'}{frame}"
        raise click.ClickException(f"{report.describe()} ({where} on {first.target})")
    click.echo(report.describe())


@backup.command()
@click.argument("backup_id", metavar="ID")
@click.option(
    "--key",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The customer's private key.",
)
@click.option("--target", "source", help="Where the backup is (default: the configured primary).")
@click.option(
    "--data-dir",
    "data_dirs",
    multiple=True,
    metavar="NODE=DIR",
    help="Where a node's data directory goes (default: the node's default directory).",
)
@pass_globals
def restore(
    g: Globals, backup_id: str, key: Path, source: str | None, data_dirs: tuple[str, ...]
) -> None:
    """Restore a backup into an empty cluster: node data directories, then ZooKeeper."""
    from backup.targets import open_target, parse_target_url
    from cluster.backups import config_store, keyfiles
    from cluster.backups.display import Bars
    from cluster.backups.restore import parse_mappings, restore_cluster
    from cluster.backups.settings import BackupSettings

    mapping = parse_mappings(data_dirs)
    private = keyfiles.load_private(key)
    with g.session() as client:
        url = (
            source
            or BackupSettings.from_config(config_store.read_config(client, g.paths)[0]).target
        )
        if url is None:
            raise BackupConfigError("say where the backup is: --target URL")
        with Bars() as bars:
            report = restore_cluster(
                client,
                g.paths,
                g.zk_auth,
                backup_id,
                open_target(parse_target_url(url)),
                private,
                mapping,
                bars.on_event,
            )
    dirs = ", ".join(f"{n} -> {d}" for n, d in report.directories)
    click.echo(
        f"restored backup {report.backup_id} into cluster {report.cluster}: {report.znodes} "
        f"znodes; data directories {dirs or 'none'}"
    )
