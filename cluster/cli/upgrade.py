"""`managed upgrade trust|verify|status`: the vendor's signed releases, verified offline.

A refused release is one line on stderr, an `upgrade.refused` audit entry and a
`release_refused` event for Mission Control (an alert there), queued in the outbox in the same
transaction as the audit entry.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from cluster import zk
from cluster.audit.store import AuditLog
from cluster.backups.text import when_text
from cluster.cli.common import Globals, emit, json_option, pass_globals
from cluster.cli.operator import operator_actor
from cluster.link.outbox import Outbox
from cluster.upgrade import trust
from cluster.upgrade.verify import ReleaseRefused, verify_bundle
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
    now = datetime.now(UTC)
    actor = operator_actor(g, "managed upgrade verify")
    with g.session(timeout=30) as client:
        installed = installed_version(client, g)
        try:
            release, ops = verify_bundle(client, g.paths, bundle, installed)
        except ReleaseRefused as refused:
            _record_refusal(client, g, refused, bundle, now)
            raise
        detail: dict[str, Any] = {"version": release.version, "bundle": bundle.name}
        event = AuditEvent(now, actor, "upgrade.verified", g.cluster, release.version, detail)
        try:
            AuditLog(client, g.paths).append([event], now, ops)
        except OpFailed as e:
            raise ReleaseRefused(
                "bundle", f"the trusted metadata changed meanwhile ({e}); verify again"
            ) from None
    doc = {"version": release.version, "files": release.to_json()}

    def text() -> str:
        lines = [f"release {release.version} verified ({len(release.files)} files):"]
        lines += [f"  {n}  {size} bytes  sha256:{h}" for n, size, h in release.files]
        return "\n".join(lines)

    emit(as_json, doc, text)


def _record_refusal(
    client: ZooKeeper, g: Globals, refused: ReleaseRefused, bundle: Path, now: datetime
) -> None:
    """The audit entry and the Mission Control event of a refusal, in one transaction."""
    detail: dict[str, Any] = {"kind": refused.kind, "reason": refused.line, "bundle": bundle.name}
    actor = operator_actor(g, "managed upgrade verify")
    event = AuditEvent(now, actor, "upgrade.refused", g.cluster, bundle.name, detail)
    outbox = Outbox(g.paths)
    outbox.ensure(client)
    body = ClusterEventBody(kind="release_refused", detail=f"{refused.kind}: {refused.line}"[:4000])
    AuditLog(client, g.paths).append([event], now, [outbox.message(body, now.timestamp())])


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
