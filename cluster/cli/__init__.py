"""`managed`: the cluster operator's command line (click, one group per noun).

Errors a user can cause end in one line on stderr and exit code 1 (usage errors 2), never a
traceback.
"""

from __future__ import annotations

import logging
from typing import Any

import click
from kazoo.exceptions import KazooException

from cluster.cli.common import Globals, validate_cluster
from cluster.errors import ClusterError
from cluster.version import VERSION


class ManagedGroup(click.Group):
    """Turns domain errors into one clear line (click prints `Error: ...`, exit 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ClusterError as e:
            raise click.ClickException(str(e)) from e
        except KazooException as e:
            raise click.ClickException(f"ZooKeeper refused the operation: {e!r}") from e


@click.group(cls=ManagedGroup)
@click.option(
    "--zk",
    "zk_hosts",
    envvar="MANAGED_ZK",
    default="127.0.0.1:2181",
    show_default=True,
    help="ZooKeeper connect string (env MANAGED_ZK).",
)
@click.option(
    "--cluster",
    envvar="MANAGED_CLUSTER",
    default="default",
    show_default=True,
    callback=validate_cluster,
    help="Cluster name (env MANAGED_CLUSTER).",
)
@click.option(
    "--zk-auth",
    envvar="MANAGED_ZK_AUTH",
    default=None,
    metavar="USER:PASSWORD",
    help="ZooKeeper digest credential that opens the cluster's secrets (env MANAGED_ZK_AUTH).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
@click.version_option(VERSION, prog_name="managed")
@click.pass_context
def main(
    ctx: click.Context, zk_hosts: str, cluster: str, zk_auth: str | None, verbose: bool
) -> None:
    """Operate a Managed cluster: nodes, status, backups, remote support, audit."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # A CLI error is one line; kazoo's own retry chatter would bury it (`node run` re-enables it).
    logging.getLogger("kazoo").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    ctx.obj = Globals(zk_hosts=zk_hosts, cluster=cluster, zk_auth=zk_auth)


def _register() -> None:
    from cluster.cli import audit, backup, cluster_cmd, dev, mc, node, support

    main.add_command(node.node)
    main.add_command(cluster_cmd.cluster)
    main.add_command(dev.dev)
    main.add_command(mc.mc)
    main.add_command(mc.certs)
    main.add_command(backup.backup)
    main.add_command(support.support)
    main.add_command(audit.audit)


_register()
