"""`managed dev up|down`: a local stack for trying the product (Ctrl-C stops it)."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from types import FrameType

import click

STATE_DIR = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".managed-dev"),
    show_default=True,
    help="Where PID files, logs and data live.",
)


@click.group()
def dev() -> None:
    """A local development stack on loopback."""


@dev.command()
@click.option("--nodes", default=3, show_default=True, type=click.IntRange(1, 9))
@click.option(
    "--datacenters",
    default=1,
    show_default=True,
    type=click.IntRange(1, 3),
    help="2 or 3: declared data centers, two ZooKeeper servers each, nodes spread over them.",
)
@click.option("--witness", is_flag=True, help="One more ZooKeeper server in a witness site.")
@STATE_DIR
@click.option("--detach", is_flag=True, help="Leave it running; stop with `managed dev down`.")
def up(nodes: int, datacenters: int, witness: bool, state_dir: Path, detach: bool) -> None:
    """Start a ZooKeeper ensemble (3 servers, or 2 a data center plus 1 for the witness) and a
    cluster of NODES nodes."""
    from cluster.dev.stack import DevStack, wait_forever

    if witness and datacenters < 2:
        raise click.UsageError("--witness needs --datacenters 2 or 3")
    stack = DevStack(state_dir.resolve(), nodes=nodes, datacenters=datacenters, witness=witness)

    def terminate(_sig: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    if stack.has_stopped_state():
        click.echo(f"replacing the stopped dev stack's state in {stack.state_dir}", err=True)
    click.echo(f"starting a dev stack in {stack.state_dir} ...", err=True)
    try:
        info = stack.up()
    except (RuntimeError, OSError) as e:
        raise click.ClickException(f"the dev stack did not start: {e}") from e
    click.echo(f"cluster     {info['cluster']}")
    click.echo(f"zookeeper   {info['zookeeper']}  (TLS, CA {info['zk_ca_file']})")
    for site in info["datacenters"] or ():
        kind = "witness" if site["witness"] else "datacenter"
        click.echo(f"{kind:<11} {site['name']}: zookeeper {','.join(site['zookeeper'])}")
    for n in info["nodes"]:
        click.echo(f"{n['id']:<11} {n['api']}/status   ({n['datacenter']})   log: {n['log']}")
    mc = info["mission_control"]
    click.echo(f"mission     {mc['url']}  (CA {mc['ca_file']})")
    click.echo(f"staff token {mc['staff_token']}")
    click.echo(
        f"console     {mc['url']}/console/  (user demo; password and TOTP URI in "
        f"{info['state_dir']}/stack.json under mission_control.staff_user)"
    )
    for region, url in info["s3"]["endpoints"].items():
        click.echo(f"s3 {region:<8} {url}")
    click.echo(f"backup key  {info['s3']['private_key']}  (backups hourly, EU only)")
    click.echo(
        f"\ntry:  curl --cacert {mc['ca_file']} -H 'Authorization: Bearer "
        f"{mc['staff_token']}' {mc['url']}/api/v1/clusters"
    )
    click.echo(
        f"\ntry:  MANAGED_ZK={info['zookeeper']} MANAGED_CLUSTER={info['cluster']} "
        f"MANAGED_ZK_AUTH=$(cat {info['zk_auth_file']}) MANAGED_ZK_CA={info['zk_ca_file']} "
        "managed cluster status"
    )
    if detach:
        click.echo(f"running in the background; stop: managed dev down --state-dir {state_dir}")
        return
    click.echo("Ctrl-C stops everything.")
    with contextlib.suppress(KeyboardInterrupt):
        wait_forever(stack)
    click.echo("\nstopping ...", err=True)
    stack.down()
    click.echo("stopped", err=True)


@dev.command()
@STATE_DIR
def down(state_dir: Path) -> None:
    """Stop a stack started with --detach."""
    from cluster.dev.stack import DevStack

    stopped = DevStack(state_dir.resolve()).down()
    click.echo(f"stopped {len(stopped)} processes" if stopped else "nothing was running")
