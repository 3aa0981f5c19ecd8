"""`managed`: the cluster operator's command line (click, one group per noun).

Errors a user can cause end in one line on stderr and exit code 1 (usage errors 2), never a
traceback.
"""

from __future__ import annotations

import errno
import importlib
import logging
from typing import Any

import click

from cluster.cli.common import Globals, validate_cluster, validate_credential
from cluster.errors import ClusterError
from cluster.zk.errors import (
    ConnectionClosedError,
    ConnectionLoss,
    NoAuthError,
    SessionExpiredError,
    ZooKeeperError,
)

LOST = (ConnectionLoss, ConnectionClosedError, SessionExpiredError)


class ManagedGroup(click.Group):
    """Loads subcommands on demand; turns domain, ZooKeeper and OS errors into one clear line
    (`Error: ...`, exit 1)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *SUBCOMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command), target
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ClusterError as e:
            raise click.ClickException(str(e)) from e
        except LOST as e:
            hosts = ctx.obj.zk_hosts if isinstance(ctx.obj, Globals) else "ZooKeeper"
            raise click.ClickException(
                f"lost the connection to ZooKeeper at {hosts} and could not get it back "
                "(does the ensemble have quorum?)"
            ) from e
        except NoAuthError as e:
            raise click.ClickException(
                "ZooKeeper refused access: give the cluster's credential with --zk-auth "
                "(MANAGED_ZK_AUTH)"
            ) from e
        except ZooKeeperError as e:
            raise click.ClickException(f"ZooKeeper refused the operation: {e!r}") from e
        except OSError as e:
            if e.errno == errno.EPIPE:
                raise  # click ends quietly when stdout is closed (e.g. `| head`)
            raise click.ClickException(_os_error_line(e)) from e


def _os_error_line(e: OSError) -> str:
    what = e.strerror or str(e) or type(e).__name__
    return f"{e.filename}: {what}" if e.filename else what


def _print_version(ctx: click.Context, wanted: bool) -> None:
    """`--version`, reading the installed metadata only when asked (it costs every command
    ~15 ms of start-up otherwise)."""
    if not wanted or ctx.resilient_parsing:
        return
    from cluster.version import VERSION

    click.echo(f"managed, version {VERSION}")
    ctx.exit()


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
    callback=validate_credential,
    metavar="USER:PASSWORD",
    help="ZooKeeper digest credential that opens the cluster's secrets (env MANAGED_ZK_AUTH).",
)
@click.option(
    "--zk-ca",
    envvar="MANAGED_ZK_CA",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    metavar="FILE",
    help="CA of ZooKeeper's TLS certificates: ZooKeeper is reached over TLS only "
    "(env MANAGED_ZK_CA).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _param, value: _print_version(ctx, value),
    help="Show the version and exit.",
)
@click.pass_context
def main(
    ctx: click.Context,
    zk_hosts: str,
    cluster: str,
    zk_auth: str | None,
    zk_ca: str | None,
    verbose: bool,
) -> None:
    """Operate a Managed cluster: nodes, status, backups, remote support, audit, switchover
    and maintenance."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # A CLI error is one line; kazoo's own retry chatter would bury it (`node run` re-enables it).
    logging.getLogger("kazoo").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    ctx.obj = Globals(zk_hosts=zk_hosts, cluster=cluster, zk_auth=zk_auth, zk_ca=zk_ca)


#: command name -> "module:attribute"; each group's module is imported only when that command
#: runs (or for `--help`), so `managed node run` does not pay for backup, support or audit code
#: before it registers live (click's lazy-loading pattern).
SUBCOMMANDS = {
    "audit": "cluster.cli.audit:audit",
    "backup": "cluster.cli.backup:backup",
    "certs": "cluster.cli.mc:certs",
    "cluster": "cluster.cli.cluster_cmd:cluster",
    "data": "cluster.cli.data:data",
    "dev": "cluster.cli.dev:dev",
    "env": "cluster.cli.data_env:env",
    "logs": "cluster.cli.logs:logs",
    "maintenance": "cluster.cli.operator:maintenance",
    "mc": "cluster.cli.mc:mc",
    "login": "cluster.cli.login:login",
    "node": "cluster.cli.node:node",
    "secrets": "contract.secret_scan_command:secrets",
    "support": "cluster.cli.support:support",
    "switchover": "cluster.cli.operator:switchover",
    "token": "cluster.cli.data_env:token",
    "upgrade": "cluster.cli.upgrade:upgrade",
}
