"""`managed mc enroll|rotate-credential|status` and `managed certs dev-ca|zookeeper`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from cluster import zk
from cluster.cli.common import Globals, emit, json_option, pass_globals
from cluster.link.settings import (
    DEFAULT_HISTORY_DAYS,
    DEFAULT_OUTAGE_LIMIT_DAYS,
    DEFAULT_RECENT_HOURS,
    MAX_OUTAGE_LIMIT_DAYS,
    OutboxBound,
)
from cluster.zk import ZooKeeper

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def mc() -> None:
    """The link to Mission Control."""


def _interval(name: str, default: float) -> Callable[[F], F]:
    return click.option(
        f"--{name}-interval",
        type=click.FloatRange(min=0.1),
        default=default,
        show_default=True,
        help=f"Seconds between {name} messages.",
    )


@mc.command()
@click.argument("url")
@click.argument("token")
@click.option(
    "--ca-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="CA certificate that signed Mission Control's certificate.",
)
@_interval("health", 120)
@_interval("license", 300)
@_interval("consumption", 3600)
@_interval("heartbeat", 30)
@click.option(
    "--outage-limit-days",
    type=click.FloatRange(min=0, min_open=True, max=MAX_OUTAGE_LIMIT_DAYS),
    default=DEFAULT_OUTAGE_LIMIT_DAYS,
    show_default=True,
    help="After this long without contact the license counts as unverified and the cluster "
    "enforces its last known quota itself.",
)
@click.option(
    "--outbox-recent-hours",
    type=click.FloatRange(min=0, min_open=True, max=24 * 365),
    default=DEFAULT_RECENT_HOURS,
    show_default=True,
    help="During an outage, keep every health check of this many most recent hours.",
)
@click.option(
    "--outbox-history-days",
    type=click.FloatRange(min=0, max=365),
    default=DEFAULT_HISTORY_DAYS,
    show_default=True,
    help="During an outage, keep one older health check per hour for this many days.",
)
@pass_globals
def enroll(
    g: Globals,
    url: str,
    token: str,
    ca_file: Path | None,
    health_interval: float,
    license_interval: float,
    consumption_interval: float,
    heartbeat_interval: float,
    outage_limit_days: float,
    outbox_recent_hours: float,
    outbox_history_days: float,
) -> None:
    """Exchange a one-time enrollment TOKEN for this cluster's own credential."""
    from cluster.cli.deciders import guarded_changer
    from cluster.link.enrollment import check_ca_file
    from cluster.link.enrollment import enroll as do_enroll

    if not url.startswith("https://"):
        raise click.BadParameter(
            "use https://HOST:PORT: the cluster's credential is only ever sent over TLS",
            param_hint="URL",
        )
    if ca_file:
        check_ca_file(str(ca_file))  # before ZooKeeper and the token: one clear line
    ca_pem = ca_file.read_text() if ca_file else None
    intervals = {
        "health": health_interval,
        "license": license_interval,
        "consumption": consumption_interval,
        "heartbeat": heartbeat_interval,
    }
    with g.session() as client:
        guarded_changer(client, g, "managed mc enroll", "mission_control")
        enrolled = do_enroll(
            client,
            g.paths,
            g.zk_auth,
            url,
            token,
            ca_pem,
            str(ca_file) if ca_file else None,
            intervals,
            outage_limit_days=outage_limit_days,
            outbox=OutboxBound(outbox_recent_hours, outbox_history_days),
        )
    click.echo(
        f"enrolled cluster {g.cluster} as {enrolled.name} ({enrolled.cluster_id}, "
        f"geography {enrolled.geography})"
    )


@mc.command("rotate-credential")
@pass_globals
def rotate_credential(g: Globals) -> None:
    """Replace this cluster's Mission Control credential and renewal secret with new ones (the
    old ones stop working at once); a credential of the older format moves to the current one."""
    from cluster.link.credentials import rotate

    with g.session() as client:
        reply = rotate(client, g.paths, g.zk_auth)
    click.echo(f"rotated the Mission Control credential of cluster {reply.cluster_id}")


def mc_status(client: ZooKeeper, g: Globals) -> dict[str, Any]:
    from cluster.link.licensing import Enforcement, license_view
    from cluster.link.outbox import Outbox
    from cluster.link.settings import Link
    from cluster.link.state import read_state

    snap = zk.read_snapshot(client, g.paths)
    link = Link.from_config(snap.config)
    state = read_state(client, g.paths)
    return {
        "enrolled": link is not None,
        "url": link.url if link else None,
        "cluster_id": link.cluster_id if link else None,
        "link": state.get("link") or {"state": "unknown"},
        "license": license_view(state, link, time.time()),
        "enforcement": Enforcement.from_json(state.get("enforcement")).to_json(),
        "health": state.get("health"),
        "last_contact": state.get("last_contact"),
        "outbox": Outbox(g.paths).size(client),
    }


@mc.command()
@json_option
@pass_globals
def status(g: Globals, as_json: bool) -> None:
    """Enrollment, link state, last contact, license state and local enforcement, sizing
    advice and queued messages."""
    with g.session() as client:
        doc = mc_status(client, g)

    def text() -> str:
        from cluster.link.licensing import Enforcement, enforcement_text

        if not doc["enrolled"]:
            return "not enrolled: run `managed mc enroll URL TOKEN`"
        lic = doc["license"]
        advice = (doc["health"] or {}).get("advice") or {}
        link = doc["link"]
        enforcement = Enforcement.from_json(doc["enforcement"])
        why = f" ({enforcement.reason})" if enforcement.active and enforcement.reason else ""
        return "\n".join(
            [
                f"mission control  {doc['url']} (cluster id {doc['cluster_id']})",
                f"link             {link.get('state')}"
                + (f": {link['detail']}" if link.get("detail") else ""),
                f"last contact     {_when(doc['last_contact'])}",
                f"license          {lic.get('state')}  expires {lic.get('expires') or '-'}",
                f"enforcement      {enforcement_text(enforcement)}{why}",
                f"health           {(doc['health'] or {}).get('status') or '-'}",
                f"advice           min {advice.get('min_nodes', '-')} nodes, "
                f"{advice.get('min_cpu_cores', '-')} cores, "
                f"{_gib(advice.get('min_memory_bytes'))} memory",
                f"queued messages  {doc['outbox']}",
            ]
        )

    emit(as_json, doc, text)


def _when(value: Any) -> str:
    if not isinstance(value, int | float):
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))


def _gib(value: Any) -> str:
    return f"{value / (1 << 30):.1f} GiB" if isinstance(value, int | float) else "-"


def hosts_option(what: str) -> Callable[[F], F]:
    """`--host` (repeatable), loopback by default."""
    return click.option(
        "--host",
        "hosts",
        multiple=True,
        default=("127.0.0.1", "localhost"),
        show_default=True,
        help=what,
    )


@click.group()
def certs() -> None:
    """Certificates for local use."""


@certs.command("dev-ca")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@hosts_option("Name or IP the server certificate is for (repeatable).")
def dev_ca(directory: Path, hosts: tuple[str, ...]) -> None:
    """Write a throwaway CA and server certificate for local use (never for production)."""
    from contract.certs import write_dev_ca

    directory.mkdir(parents=True, exist_ok=True)
    try:
        ca = write_dev_ca(directory, list(hosts))
    except (FileExistsError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(
        f"CA certificate  {ca.ca_cert}\nserver cert     {ca.server_cert}\n"
        f"server key      {ca.server_key}"
    )


@certs.command("zookeeper")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@hosts_option("Name or IP of a ZooKeeper server (repeatable).")
def zookeeper_certs(directory: Path, hosts: tuple[str, ...]) -> None:
    """Write a throwaway CA and the ZooKeeper servers' TLS key store (never for production):
    `ca.pem` for --zk-ca, `keystore.pem` (key and chain, 0600) for ssl.keyStore.location."""
    from cluster.dev.zookeeper import ZooKeeperTLS

    try:
        tls = ZooKeeperTLS.create(directory, list(hosts), overwrite=False)
    except (FileExistsError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"CA certificate  {tls.ca_cert}\nkey store       {tls.keystore}")
