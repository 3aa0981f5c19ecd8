"""`managed node join|run|leave|list`."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from cluster import roster, zk
from cluster.errors import ClusterError, ConfigError

if TYPE_CHECKING:
    from cluster.config import NodeSettings
    from cluster.datadir import DataDir
    from cluster.leadership import LeaderContext, LeaderService
    from cluster.link.exchange import HeartbeatHandler
    from cluster.node import NodeDaemon
    from cluster.upgrade.rollout import UpgradeNode
    from contract.messages import HeartbeatReply

from cluster.cli.common import Globals, emit, json_option, pass_globals


@click.group()
def node() -> None:
    """Cluster membership: join, run, leave, list, drain."""


@node.command()
@click.argument("node_id", metavar="NODE")
@click.option("--datacenter", required=True, help="Datacenter the node runs in.")
@click.option("--api-address", required=True, help="HOST:PORT of the node's API.")
@pass_globals
def join(g: Globals, node_id: str, datacenter: str, api_address: str) -> None:
    """Add NODE to the roster (idempotent)."""
    roster.validate_entry(node_id, datacenter, api_address)  # before touching ZooKeeper
    with g.session() as client:
        added = roster.join(client, g.paths, node_id, datacenter, api_address)
    click.echo(f"{node_id} {'joined' if added else 'is already in'} cluster {g.cluster}")


@node.command()
@click.argument("node_id", metavar="NODE")
@click.option("--force", is_flag=True, help="Leave even if live or if quorum would break.")
@pass_globals
def leave(g: Globals, node_id: str, force: bool) -> None:
    """Remove NODE from the roster; refused while it is live or if quorum would break."""
    roster.validate_leaving(node_id)  # before touching ZooKeeper
    with g.session() as client:
        removed = roster.leave(client, g.paths, node_id, force)
    click.echo(f"{node_id} {'left' if removed else 'was not in'} cluster {g.cluster}")


@node.command()
@click.argument("node_id", metavar="NODE")
@pass_globals
def drain(g: Globals, node_id: str) -> None:
    """NODE never leads from now on; if it leads, it hands over at once (refused when no
    other node could lead)."""
    from cluster.cli.operator import drain_node  # deferred: `node run` need not load it

    drain_node(g, node_id, on=True)


@node.command()
@click.argument("node_id", metavar="NODE")
@pass_globals
def undrain(g: Globals, node_id: str) -> None:
    """NODE may lead again."""
    from cluster.cli.operator import drain_node  # deferred: `node run` need not load it

    drain_node(g, node_id, on=False)


@node.command("list")
@json_option
@pass_globals
def list_nodes(g: Globals, as_json: bool) -> None:
    """List the roster with each node's datacenter, address and liveness."""
    with g.session() as client:
        snap = zk.read_snapshot(client, g.paths)
    rows = [
        {
            "id": e.node,
            "datacenter": e.datacenter,
            "api_address": e.api_address,
            "live": snap.live_member(e.node) is not None,
            "leader": bool(snap.leader and snap.leader.node == e.node),
            "drained": e.node in snap.drained,
        }
        for e in snap.roster
    ]

    def text() -> str:
        if not rows:
            return f"cluster {g.cluster} has no nodes: add one with `managed node join`"
        lines = [f"{'NODE':<16} {'DATACENTER':<12} {'API ADDRESS':<22} STATE"]
        for r in rows:
            state = ("live" if r["live"] else "down") + (", leader" if r["leader"] else "")
            state += ", drained" if r["drained"] else ""
            lines.append(f"{r['id']:<16} {r['datacenter']:<12} {r['api_address']:<22} {state}")
        return "\n".join(lines)

    emit(as_json, rows, text)


@node.command()
@click.argument("node_id", metavar="NODE")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML settings file: every setting at top level, or every one in a [node] table.",
)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.pass_context
def run(ctx: click.Context, node_id: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Run NODE's daemon in the foreground; SIGTERM hands leadership over and exits 0."""
    from cluster.config import load
    from cluster.datadir import claim

    g: Globals = ctx.obj
    root = ctx.find_root()
    overrides: dict[str, object] = {"node": node_id, "data_dir": data_dir}
    # Global options given on the command line or by their env var beat the file.
    for param, key, value in (
        ("zk_hosts", "zk", g.zk_hosts),
        ("cluster", "cluster", g.cluster),
        ("zk_auth", "zk_auth", g.zk_auth),
        ("zk_ca", "zk_ca", g.zk_ca),
    ):
        if root.get_parameter_source(param) not in (None, ParameterSource.DEFAULT):
            overrides[key] = value
    settings = load(config_file, **overrides)
    try:
        settings.check_access()
    except ValueError as e:
        raise ConfigError(f"invalid settings: {e}") from e
    _launch_current_version(settings.resolved_data_dir)
    # Claim the data directory before writing anything into it: a second node refused here
    # must not append to the first node's log.
    data = claim(settings.resolved_data_dir, settings.cluster, settings.node)
    try:
        daemon, upgrading = _daemon(settings, data)
    except BaseException:
        data.release()
        raise
    asyncio.run(daemon.run())
    if upgrading.restart_requested:  # a rolling upgrade's turn: exec the version now current
        _launch_current_version(settings.resolved_data_dir)
        # Not installed beside this one (back to the base installation, say): the supervisor
        # starts the base command again, whose launcher then runs what is current.
        raise ClusterError("exiting for a restart into the version now current")


def _launch_current_version(data_dir: Path) -> None:
    """The launcher: when an installed release is current (`managed upgrade apply`) and it is
    not this one, exec that release's `managed` with the same arguments (returns only when
    this version is the one to run)."""
    import sys

    from cluster.upgrade.install import current_version, exec_version, launch_target, settle_trial
    from cluster.version import VERSION

    if settle_trial(data_dir) is not None:
        logging.getLogger(__name__).error(
            "the upgraded version stopped before it was confirmed healthy: rolled back"
        )
    entry = launch_target(data_dir, VERSION)
    wanted = current_version(data_dir)
    if entry is not None and wanted is not None:
        exec_version(entry, wanted, sys.argv[1:])


def _daemon(settings: NodeSettings, data: DataDir) -> tuple[NodeDaemon, UpgradeNode]:
    """The daemon with its services, logging to its own data directory; and its part of a
    rolling upgrade (which may ask for a restart into a new version)."""
    from cluster.backups.services import backup_leader, drill_leader, drill_runner, part_writer
    from cluster.leadership import DeferredService
    from cluster.node import NodeDaemon
    from cluster.upgrade.rollout import UpgradeNode

    root_logger = logging.getLogger()
    logging.getLogger("kazoo").setLevel(logging.WARNING)
    if not root_logger.isEnabledFor(logging.INFO):
        root_logger.setLevel(logging.INFO)
    # The node's own log, in its data directory (what `logs tail` in remote support reads).
    log_dir = data.path / "logs"
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    handler = RotatingFileHandler(log_dir / "node.log", maxBytes=10 << 20, backupCount=3)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root_logger.addHandler(handler)

    def exchange() -> LeaderService:
        # deferred: start-up time
        from cluster.link.exchange import MissionControlExchange
        from cluster.zk.probe import serving

        handler = _support_handler(settings, data.path)
        ca = settings.zk_ca
        assert ca is not None  # the settings refuse a node without ZooKeeper's CA
        return MissionControlExchange(
            settings.zk_auth,
            heartbeat_handler=handler,
            zk_probe=lambda servers: serving(servers, ca),
        )

    def guard() -> LeaderService:
        from cluster.guarded import SettingsGuard  # deferred: start-up time

        return SettingsGuard()

    backups = backup_leader(settings.zk_auth)
    writer = part_writer(data.path)
    services: list[LeaderService] = [
        DeferredService("mission-control", exchange),
        backups,
        drill_leader(),
        DeferredService("settings-guard", guard),
    ]
    upgrading = UpgradeNode(data.path, settings.zk_auth)
    node_services = [writer, drill_runner(data.path), upgrading]
    if settings.data_listen is not None:
        node_services.append(_data_service(settings, data.path))
    services.append(DeferredService("upgrade", _upgrade_leader))
    services.append(DeferredService("upgrade-offers", lambda: _offered_releases(settings)))
    daemon = NodeDaemon(settings, services=services, node_services=node_services, data_dir=data)
    upgrading.stop_daemon = daemon.request_stop
    return daemon, upgrading


def _upgrade_leader() -> LeaderService:
    from cluster.upgrade.rollout import UpgradeLeader  # deferred: start-up time

    return UpgradeLeader()


def _offered_releases(settings: NodeSettings) -> LeaderService:
    from cluster.upgrade.offers import OfferedReleases  # deferred: start-up time (tuf, aiohttp)

    return OfferedReleases(settings.zk_auth, settings.offer_interval)


def _data_service(settings: NodeSettings, data_dir: Path) -> LeaderService:
    """Ingest, reads and /rum.js over HTTPS (`cluster.data`), loaded once the node serves."""
    from cluster.leadership import DeferredService

    listen, cert, key = settings.data_listen, settings.tls_cert, settings.tls_key
    assert listen is not None and cert is not None and key is not None  # NodeSettings checks

    def make() -> LeaderService:
        from cluster.data.service import DataService  # deferred: start-up time

        return DataService(data_dir, listen, cert, key, settings.zk_auth)

    return DeferredService("data", make)


def _support_handler(settings: NodeSettings, data_dir: Path) -> HeartbeatHandler:
    """Remote support handles heartbeats; loaded on the first one (leader only), so the
    cryptography it needs does not delay a node's start-up. A node serving monitoring data also
    answers the data commands (reading every node, masked as the grant says)."""
    loaded: list[HeartbeatHandler] = []
    auth = settings.zk_auth

    async def handle(ctx: LeaderContext, reply: HeartbeatReply, now: datetime) -> None:
        if not loaded:
            from cluster.support.service import SupportService, node_log_path

            reader = None
            if settings.data_listen is not None and auth:
                from cluster.data.support_reads import SupportDataReader

                reader = SupportDataReader(auth, settings.tls_cert)
            service = SupportService(
                log_path=node_log_path(data_dir), data_reader=reader, oidc_ca=settings.oidc_ca
            )
            loaded.append(service.for_exchange(auth))
        await loaded[0](ctx, reply, now)

    return handle
