"""`managed upgrade trust|verify|status`: the vendor's signed releases, verified offline.

A refused release is one line on stderr, an `upgrade.refused` audit entry and a
`release_refused` event for Mission Control (an alert there), queued in the outbox in the same
transaction as the audit entry.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from cluster import zk
from cluster.audit.store import AuditLog
from cluster.backups.text import when_text
from cluster.cli.common import Globals, emit, json_option, pass_globals
from cluster.cli.operator import operator_actor
from cluster.errors import ConfigError
from cluster.link.outbox import Outbox
from cluster.upgrade import trust
from cluster.upgrade.verify import ReleaseRefused, VerifiedRelease, verify_bundle
from cluster.version import VERSION
from cluster.zk import OpFailed, ZooKeeper
from contract.audit.events import AuditEvent
from contract.messages import ClusterEventBody

BUNDLE = click.Path(dir_okay=False, exists=True, path_type=Path)


@click.group()
def upgrade() -> None:
    """The vendor's signed releases: pin the vendor root, verify bundles, show the state."""


def installed_version(client: ZooKeeper, g: Globals) -> str:
    """The newest version a live node runs, or this command's own when none is live."""
    from packaging.version import InvalidVersion, Version

    found = [VERSION]
    found += [m.version for m in zk.read_snapshot(client, g.paths).live if m.version]
    try:
        return str(max(found, key=Version))
    except InvalidVersion:
        return VERSION


@upgrade.command("trust")
@click.argument("root_file", metavar="ROOT.json", type=BUNDLE)
@pass_globals
def trust_cmd(g: Globals, root_file: Path) -> None:
    """Pin the vendor's root metadata (the one shipped with the installation); every release
    is verified against it, and against the roots it signs after it."""
    data = root_file.read_bytes()
    now = datetime.now(UTC)
    with g.session() as client:
        ops = trust.pin_ops(client, g.paths, data)
        root = trust.check_root(data)
        detail: dict[str, Any] = {"root_version": root.version, "keys": len(root.keys)}
        event = AuditEvent(
            now,
            operator_actor(g, "managed upgrade trust"),
            "upgrade.root_pinned",
            g.cluster,
            "root",
            detail,
        )
        AuditLog(client, g.paths).append([event], now, ops)
    threshold = root.roles["root"].threshold
    click.echo(f"pinned vendor root v{root.version}: {len(root.keys)} keys, threshold {threshold}")


@upgrade.command()
@click.option("--bundle", "bundle", required=True, type=BUNDLE, help="A release bundle (.tar).")
@json_option
@pass_globals
def verify(g: Globals, bundle: Path, as_json: bool) -> None:
    """Verify a release bundle offline against the pinned root and the metadata the cluster
    trusts; on success the trusted metadata moves forward (nothing is installed)."""
    with g.session(timeout=30) as client:
        release = _verify_and_record(client, g, bundle, "managed upgrade verify")
    doc = {"version": release.version, "files": release.to_json()}

    def text() -> str:
        lines = [f"release {release.version} verified ({len(release.files)} files):"]
        lines += [f"  {n}  {size} bytes  sha256:{h}" for n, size, h in release.files]
        return "\n".join(lines)

    emit(as_json, doc, text)


def _verify_and_record(
    client: ZooKeeper,
    g: Globals,
    bundle: Path,
    via: str,
    into: Path | None = None,
    node_runs: str | None = None,
) -> VerifiedRelease:
    """Verify `bundle` and record it (trusted metadata forward, `upgrade.verified`), or record
    the refusal and raise it. `node_runs`: the version the node being upgraded runs; the
    release must be newer than it, and not older than any live node's (so a second node may
    install what a first one already runs)."""
    now = datetime.now(UTC)
    installed = installed_version(client, g)
    try:
        release, ops = verify_bundle(
            client, g.paths, bundle, installed, into, equal_ok=node_runs is not None
        )
        if node_runs is not None and not _newer_than(release.version, node_runs):
            raise ReleaseRefused(
                "rollback", f"release {release.version} is not newer than the node's {node_runs}"
            )
    except ReleaseRefused as refused:
        _record_refusal(client, g, refused, bundle, now, via)
        raise
    detail: dict[str, Any] = {"version": release.version, "bundle": bundle.name}
    event = AuditEvent(
        now, operator_actor(g, via), "upgrade.verified", g.cluster, release.version, detail
    )
    try:
        AuditLog(client, g.paths).append([event], now, ops)
    except OpFailed as e:
        raise ReleaseRefused(
            "bundle", f"the trusted metadata changed meanwhile ({e}); verify again"
        ) from None
    return release


def _newer_than(version: str, other: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) > Version(other)
    except InvalidVersion:
        return True  # a base installation without a version (a source tree)


def _record_refusal(
    client: ZooKeeper, g: Globals, refused: ReleaseRefused, bundle: Path, now: datetime, via: str
) -> None:
    """The audit entry and the Mission Control event of a refusal, in one transaction."""
    detail: dict[str, Any] = {"kind": refused.kind, "reason": refused.line, "bundle": bundle.name}
    actor = operator_actor(g, via)
    event = AuditEvent(now, actor, "upgrade.refused", g.cluster, bundle.name, detail)
    outbox = Outbox(g.paths)
    outbox.ensure(client)
    body = ClusterEventBody(kind="release_refused", detail=f"{refused.kind}: {refused.line}"[:4000])
    AuditLog(client, g.paths).append([event], now, [outbox.message(body, now.timestamp())])


@upgrade.command()
@click.option("--bundle", "bundle", required=True, type=BUNDLE, help="A release bundle (.tar).")
@click.option(
    "--data-dir",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The data directory of the node on this machine.",
)
@pass_globals
def apply(g: Globals, bundle: Path, data_dir: Path) -> None:
    """Verify a release bundle offline and install it beside the running version of the node
    whose data directory is DATA_DIR; the node runs it from its next start (restart it)."""
    from cluster.upgrade import install

    node = _node_of(data_dir, g.cluster)
    running = install.current_version(data_dir) or VERSION
    via = "managed upgrade apply"
    with install.install_lock(data_dir):
        incoming = install.versions_dir(data_dir) / f".incoming-{os.getpid()}"
        try:
            with g.session(timeout=30) as client:
                release = _verify_and_record(client, g, bundle, via, incoming, running)
            wheels = install.staging_dir(data_dir, release.version)
            if not install.is_installed(data_dir, release.version):
                wheels.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                incoming.replace(wheels)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        started = time.monotonic()
        try:
            install.install(data_dir, release.version)
        except install.InstallError as e:
            failed = {"node": node, "error": str(e)}
            _audit(g, via, "upgrade.install_failed", release.version, failed)
            raise
        install.make_current(data_dir, release.version, running)
    seconds = round(time.monotonic() - started)
    detail = {"node": node, "from": running, "seconds": seconds}
    _audit(g, via, "upgrade.installed", release.version, detail)
    click.echo(
        f"release {release.version} installed for node {node} in {seconds} s "
        f"({install.version_dir(data_dir, release.version)}); it runs from the node's next "
        f"start: restart the node (its command stays `managed node run {node}`)"
    )


def _node_of(data_dir: Path, cluster: str) -> str:
    """The node owning `data_dir` (its `node.json`), refused unless it is of this cluster."""
    from cluster.datadir import IDENTITY

    try:
        owner = json.loads((data_dir / IDENTITY).read_text())
    except (OSError, ValueError):
        owner = None
    if not isinstance(owner, dict) or owner.get("cluster") != cluster or not owner.get("node"):
        raise ConfigError(f"{data_dir} is not the data directory of a node of cluster {cluster}")
    return str(owner["node"])


def _audit(g: Globals, via: str, action: str, subject: str, detail: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    event = AuditEvent(now, operator_actor(g, via), action, g.cluster, subject, detail)
    with g.session() as client:
        AuditLog(client, g.paths).append([event], now, [])


@upgrade.command()
@json_option
@pass_globals
def status(g: Globals, as_json: bool) -> None:
    """Versions per node, the trusted metadata (versions, expiries) and the last verified
    release."""
    with g.session() as client:
        snap = zk.read_snapshot(client, g.paths)
        try:
            trusted: dict[str, Any] | None = trust.read(client, g.paths).summary()
        except trust.TrustError:
            trusted = None
        got = client.find(g.paths.upgrade_verified)
    verified = json.loads(got[0]) if got else None
    nodes = {e.node: (m.version if (m := snap.live_member(e.node)) else None) for e in snap.roster}
    doc = {"nodes": nodes, "trusted": trusted, "verified": verified}

    def text() -> str:
        lines = [f"{'NODE':<16} VERSION"]
        lines += [f"{n:<16} {v or 'down'}" for n, v in sorted(nodes.items())]
        if trusted is None:
            lines.append("no vendor root pinned: run `managed upgrade trust ROOT.json`")
        else:
            for role, t in trusted.items():
                lines.append(f"trusted {role:<10} v{t['version']}  expires {t['expires']}")
        if verified:
            lines.append(
                f"last verified release {verified['version']} ({when_text(verified['at'])})"
            )
        return "\n".join(lines)

    emit(as_json, doc, text)
