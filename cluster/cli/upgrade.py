"""`managed upgrade trust|verify|apply|finalize|window|status`: the vendor's signed releases,
verified offline (a bundle) or fetched from Mission Control, and the rolling upgrade.

A refused release is one line on stderr, an `upgrade.refused` audit entry and a
`release_refused` event for Mission Control (an alert there), queued in the outbox in the same
transaction as the audit entry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from cluster import zk
from cluster.audit.store import AuditLog
from cluster.backups.text import when_text
from cluster.cli.common import Globals, emit, json_option, pass_globals
from cluster.cli.operator import operator_actor
from cluster.cli.upgrade_window import window
from cluster.errors import ConfigError
from cluster.upgrade import trust
from cluster.upgrade.fetchers import ReleaseFetcher
from cluster.upgrade.plan import MISSION_CONTROL, RESTART_TIMEOUT, Plan
from cluster.upgrade.record import Then, newest_running, plan_then, verify_and_record
from cluster.upgrade.rollout import read_window
from cluster.upgrade.verify import VerifiedRelease, open_bundle
from cluster.version import VERSION
from cluster.zk import OpFailed, ZooKeeper
from contract.audit.events import AuditEvent

BUNDLE = click.Path(dir_okay=False, exists=True, path_type=Path)
#: A release source: given the ZooKeeper session, its name and how to open its fetcher.
Source = Callable[[ZooKeeper], tuple[str, Callable[[], ReleaseFetcher]]]


@click.group()
def upgrade() -> None:
    """The vendor's signed releases: pin the vendor root, verify and apply releases (bundles or
    from Mission Control), the maintenance window, the state."""


upgrade.add_command(window)


def installed_version(client: ZooKeeper, g: Globals) -> str:
    """The newest version a live node runs, or this command's own when none is live."""
    return newest_running(zk.read_snapshot(client, g.paths))


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
@click.argument("version", required=False)
@click.option("--bundle", "bundle", type=BUNDLE, help="A release bundle (.tar), offline.")
@json_option
@pass_globals
def verify(g: Globals, version: str | None, bundle: Path | None, as_json: bool) -> None:
    """Verify release VERSION, fetched from Mission Control, or a release bundle (--bundle,
    offline), against the pinned root and the metadata the cluster trusts; on success the
    trusted metadata moves forward (nothing is installed)."""
    source = _source(g, version, bundle)
    with g.session(timeout=30) as client:
        release = _verify_and_record(client, g, source, "managed upgrade verify")
    doc = {"version": release.version, "files": release.to_json()}

    def text() -> str:
        lines = [f"release {release.version} verified ({len(release.files)} files):"]
        lines += [f"  {n}  {size} bytes  sha256:{h}" for n, size, h in release.files]
        return "\n".join(lines)

    emit(as_json, doc, text)


def _verify_and_record(
    client: ZooKeeper,
    g: Globals,
    source: Source,
    via: str,
    into: Path | None = None,
    node_runs: str | None = None,
    then: Then | None = None,
) -> VerifiedRelease:
    """Verify and record (`cluster.upgrade.record`), as the operator running `via`."""
    installed = installed_version(client, g)
    actor = operator_actor(g, via)
    return verify_and_record(
        client, g.paths, source(client), actor, installed, into=into, node_runs=node_runs, then=then
    )


def _source(g: Globals, version: str | None, bundle: Path | None) -> Source:
    """Release VERSION from Mission Control, or the bundle: exactly one of them."""
    if (version is None) == (bundle is None):
        raise click.UsageError("give either a release VERSION (from Mission Control) or --bundle")
    return bundle_source(bundle) if bundle else mission_control_source(g, str(version))


def bundle_source(bundle: Path) -> Source:
    """An offline bundle as a release source."""
    return lambda _client: (bundle.name, lambda: open_bundle(bundle))


def mission_control_source(g: Globals, version: str) -> Source:
    """Release `version` fetched from Mission Control with the cluster's credential."""
    # deferred: start-up time (aiohttp is loaded only when Mission Control is spoken to)
    from cluster.upgrade.remote import MissionControlFetcher, mission_control_client

    def opened(client: ZooKeeper) -> ReleaseFetcher:
        config = zk.read_snapshot(client, g.paths).config
        mc = mission_control_client(client, g.paths, g.zk_auth, config)
        return MissionControlFetcher(mc, version)

    return lambda client: (f"Mission Control {version}", lambda: opened(client))


@upgrade.command()
@click.argument("version", required=False)
@click.option("--bundle", "bundle", type=BUNDLE, help="A release bundle (.tar), offline.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Install on this machine's node only (its data directory); no rolling upgrade.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=5.0),
    default=RESTART_TIMEOUT,
    show_default=True,
    help="Seconds each node has to run the new version live and healthy, else it rolls back.",
)
@pass_globals
def apply(
    g: Globals, version: str | None, bundle: Path | None, data_dir: Path | None, timeout: float
) -> None:
    """Upgrade the cluster to release VERSION now, fetched from Mission Control and verified
    (every node fetches and verifies it again itself), or to a release bundle (--bundle, offline:
    the bundle must be at the same path on every node's machine); node by node, the leader
    last. With --data-dir: install it beside the running version of that node only (it runs it
    from its next start)."""
    source = _source(g, version, bundle)
    if data_dir is not None:
        _install_here(g, source, data_dir)
    else:
        _start_plan(g, source, str(bundle.resolve()) if bundle else MISSION_CONTROL, timeout)


def _start_plan(g: Globals, source: Source, bundle: str, timeout: float) -> None:
    """Record the rolling upgrade plan (the leader carries it out) in the transaction that
    records the verification, audited; refused, with nothing written, while another runs,
    during maintenance, or when it would make three versions at once."""
    via = "managed upgrade apply"
    made: list[Plan] = []
    with g.session(timeout=60) as client:
        then = plan_then(client, g.paths, operator_actor(g, via), bundle, timeout, made)
        release = _verify_and_record(client, g, source, via, then=then)
    click.echo(
        f"upgrade to {release.version} planned: {', '.join(made[-1].order)} in turn (the leader "
        f"last); follow it with `managed upgrade status`"
    )


def _write_plan(
    client: ZooKeeper,
    g: Globals,
    via: str,
    audit: tuple[str, str, dict[str, Any]],
    op: zk.Op,
    refused: str,
) -> None:
    """Write the plan (`op`, a compare-and-set) with its audit entry (action, subject, detail)
    in one transaction; `refused` is the line when the plan changed meanwhile."""
    now = datetime.now(UTC)
    action, subject, detail = audit
    event = AuditEvent(now, operator_actor(g, via), action, g.cluster, subject, detail)
    try:
        AuditLog(client, g.paths).append([event], now, [op])
    except OpFailed:
        raise ConfigError(refused) from None


def _install_here(g: Globals, source: Source, data_dir: Path) -> None:
    """`apply --data-dir`: verify and install on this machine's node only."""
    from cluster.upgrade import install

    node = _node_of(data_dir, g.cluster)
    running = install.current_version(data_dir) or VERSION
    via = "managed upgrade apply"

    def verify_into(incoming: Path) -> str:
        with g.session(timeout=30) as client:
            return _verify_and_record(client, g, source, via, incoming, running).version

    with install.install_lock(data_dir):
        version = install.stage(data_dir, verify_into)
        started = time.monotonic()
        try:
            install.install(data_dir, version)
        except install.InstallError as e:
            failed = {"node": node, "error": str(e)}
            _audit(g, via, "upgrade.install_failed", version, failed)
            raise
        install.make_current(data_dir, version, running)
    seconds = round(time.monotonic() - started)
    detail = {"node": node, "from": running, "seconds": seconds}
    _audit(g, via, "upgrade.installed", version, detail)
    click.echo(
        f"release {version} installed for node {node} in {seconds} s "
        f"({install.version_dir(data_dir, version)}); it runs from the node's next "
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
        planned = client.find(g.paths.upgrade_plan)
        stored = read_window(client, g.paths)
    verified = json.loads(got[0]) if got else None
    plan = json.loads(planned[0]) if planned else None
    nodes = {e.node: (m.version if (m := snap.live_member(e.node)) else None) for e in snap.roster}
    window_doc = {"spec": str(stored[0]), "timezone": "UTC"} if stored else None
    doc = {
        "nodes": nodes,
        "trusted": trusted,
        "verified": verified,
        "plan": plan,
        "window": window_doc,
    }

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
        lines.append(
            f"maintenance window {stored[0]} UTC"
            if stored
            else "no maintenance window: offered releases wait (`managed upgrade window`)"
        )
        if plan:
            lines += _plan_lines(plan)
        return "\n".join(lines)

    emit(as_json, doc, text)


def _plan_lines(plan: dict[str, Any]) -> list[str]:
    state = plan["state"] + (", finalized" if plan.get("finalized") else "")
    lines = [f"upgrade to {plan['version']}: {state} (started {when_text(plan['started'])})"]
    if plan.get("reason"):
        lines.append(f"  stopped: {plan['reason']}")
    for node in plan["order"]:
        step = plan["nodes"][node]
        lines.append(
            f"  {node:<16} {step['state']}" + (f"  {step['error']}" if step["error"] else "")
        )
    return lines


@upgrade.command()
@pass_globals
def finalize(g: Globals) -> None:
    """Make the finished upgrade final: the previous version is no longer a rollback target
    (every node removes its `versions/previous`). Refused unless the last upgrade is done."""
    from cluster.upgrade.plan import FINISHED, Plan

    via = "managed upgrade finalize"
    with g.session() as client:
        got = client.find(g.paths.upgrade_plan)
        if got is None:
            raise ConfigError("finalize refused: no upgrade was made")
        plan = Plan.from_bytes(got[0])
        if plan.state != FINISHED:
            raise ConfigError(
                f"finalize refused: the upgrade to {plan.version} is {plan.state}, not done"
            )
        if plan.finalized:
            click.echo(f"upgrade to {plan.version} already finalized")
            return
        done = replace(plan, finalized=True)
        op = zk.SetData(g.paths.upgrade_plan, done.to_bytes(), got[1].version)
        refused = "finalize refused: the plan changed meanwhile; try again"
        _write_plan(client, g, via, ("upgrade.finalized", plan.version, {}), op, refused)
    click.echo(
        f"upgrade to {plan.version} finalized: nodes drop their previous version "
        f"(no rollback target any more)"
    )
