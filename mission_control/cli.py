"""`mission-control`: the Mission Control operator's command line (one group per noun).

Errors a user can cause end in one line on stderr and exit code 1 (usage errors: 2). Commands
other than `serve` and `db upgrade` need a database already at the newest migration, so a typo
in --db creates nothing. Every change (`clusters create`, `licenses set`, and the staff commands)
is in the audit log with the OS login name of the person who ran it.
"""

from __future__ import annotations

import json
import logging
import ssl
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import click
from sqlalchemy.exc import DBAPIError

from contract.messages import Geography
from contract.secret_scan_command import secrets
from mission_control.cli_common import (
    ROW_ID,
    FiniteFloat,
    database_error,
    db_option,
    json_option,
    name_param,
    run_on_db,
    settings_from,
    table,
    when,
)
from mission_control.cli_releases import releases
from mission_control.cli_rollouts import rollouts
from mission_control.cli_staff import _operator, audit, tokens, users
from mission_control.db.engine import UnsupportedDatabaseURL
from mission_control.errors import ServiceError
from mission_control.service.accounts import audit_log
from mission_control.service.context import ServiceContext
from mission_control.service.exchange import alert_store
from mission_control.service.fleet import admin, enrollment
from mission_control.service.fleet.admin import MAX_HOST_UNITS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Mission Control: enroll clusters, manage licenses, staff and alerts, serve the API."""


main.add_command(users)
main.add_command(tokens)
main.add_command(audit)
main.add_command(releases)
main.add_command(rollouts)
main.add_command(secrets)


# --- serve ------------------------------------------------------------------------------------


def _listen(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


@main.command()
@db_option
@click.option("--listen", callback=_listen, help="HOST:PORT  [default: 127.0.0.1:8443]")
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tls-min-version", type=click.Choice(["1.2", "1.3"]))
@click.option("--tls-ciphers", help="OpenSSL cipher list for TLS 1.2.")
@click.option("--max-body-bytes", type=click.IntRange(1024, 1024**3))
@click.option("--no-migrate", is_flag=True, help="Refuse to start on an old schema.")
@click.option("--access-log", is_flag=True, help="Log every request.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Server processes sharing the port (PostgreSQL only)  [default: 1]",
)
@click.option(
    "--secrets-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The key sealing TOTP secrets (see `secrets-key create`).",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    help="Address of a proxy whose X-Forwarded-For names the client (repeatable).",
)
@click.option(
    "--releases-repo",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The release repository served to clusters (see `releases init`).",
)
def serve(
    db_url: str,
    listen: tuple[str, int] | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_min_version: str | None,
    tls_ciphers: str | None,
    max_body_bytes: int | None,
    no_migrate: bool,
    access_log: bool,
    workers: int | None,
    secrets_key_file: Path | None,
    trusted_proxies: tuple[str, ...],
    releases_repo: Path | None,
) -> None:
    """Serve the API (HTTPS when given a certificate); migrates the database first."""
    # Deferred for start-up time: only `serve` needs the server and its TLS set-up.
    from mission_control import serving
    from mission_control.service.fleet.leak_reporters import ReporterKeysError, load_reporter_keys
    from mission_control.tls import server_context

    settings = settings_from(
        db_url=db_url,
        host=listen[0] if listen else None,
        port=listen[1] if listen else None,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_min_version=tls_min_version,
        tls_ciphers=tls_ciphers,
        max_body_bytes=max_body_bytes,
        migrate_on_start=False if no_migrate else None,
        access_log=True if access_log else None,
        workers=workers,
        secrets_key_file=secrets_key_file,
        trusted_proxies=trusted_proxies or None,
        releases_repo=releases_repo,
    )
    repo = settings.releases_repo
    if repo is not None and not (repo / "metadata" / "1.root.json").is_file():
        raise click.ClickException(f"{repo} is not a release repository (see `releases init`)")
    try:
        serving.check_workers(settings)
    except (serving.WorkersNeedPostgreSQL, UnsupportedDatabaseURL) as error:
        raise click.ClickException(str(error)) from None
    try:
        load_reporter_keys(settings.leak_reporter_keys_file)
    except ReporterKeysError as error:
        raise click.ClickException(f"leak reporter keys: {error}") from None
    context = None
    if settings.tls_cert is not None and settings.tls_key is not None:
        _warn_if_open(settings.tls_key)
        try:
            context = server_context(
                settings.tls_cert,
                settings.tls_key,
                min_version=settings.tls_min_version,
                ciphers=settings.tls_ciphers,
            )
        except ValueError as error:  # the cipher list
            raise click.ClickException(f"--tls-ciphers: {error}") from None
        except (OSError, ssl.SSLError) as error:
            raise click.ClickException(f"cannot load TLS certificate or key: {error}") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        code = serving.run(settings, context, lambda line: click.echo(line, err=True))
    except (ServiceError, UnsupportedDatabaseURL) as error:
        raise click.ClickException(str(error)) from None
    except DBAPIError as error:
        raise database_error(settings.db_url, error) from None
    except OSError as error:
        raise click.ClickException(
            f"cannot serve on {settings.host}:{settings.port}: {error}"
        ) from None
    if code:
        sys.exit(code)


def _warn_if_open(key: Path) -> None:
    """A private key others may read, or in a directory others may enter: say so, once."""
    # Deferred for start-up time, as the other commands' imports.
    from mission_control.secrets_key import others_may_read

    for path, mode in ((key, "600"), (key.parent, "700")):
        try:
            if others_may_read(path):
                click.echo(f"warning: {path} is open to others: chmod {mode} {path}", err=True)
        except OSError:
            return  # loading the key says what is wrong


# --- db ---------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@db_option
def db_upgrade(db_url: str) -> None:
    """Apply every pending migration (creates the SQLite file if needed)."""

    async def nothing(_ctx: ServiceContext) -> None:
        return None

    run_on_db(db_url, nothing, migrate=True)
    click.echo("database is at the newest migration", err=True)


# --- clusters ---------------------------------------------------------------------------------


@main.group()
def clusters() -> None:
    """Cluster records and enrollment."""


@clusters.command("create")
@click.argument("name", callback=name_param)
@click.option("--geography", required=True, type=click.Choice(["EU", "US", "AU"]))
@db_option
def clusters_create(name: str, geography: str, db_url: str) -> None:
    """Create a cluster; prints its one-time enrollment token (only that, on stdout)."""
    by = audit_log.cli_actor(_operator())
    created = run_on_db(
        db_url,
        lambda ctx: enrollment.create_cluster(ctx, name, cast(Geography, geography), by=by),
        migrate=False,
    )
    click.echo(f"cluster {created.name} created (id {created.id}); token shown once:", err=True)
    click.echo(created.enrollment_token)


@clusters.command("list")
@db_option
@json_option
def clusters_list(db_url: str, as_json: bool) -> None:
    """All clusters with enrollment, health and license."""
    found = run_on_db(db_url, admin.list_clusters, migrate=False)
    if as_json:
        click.echo(json.dumps([c.model_dump(mode="json") for c in found], indent=2))
        return
    table(
        [
            (
                c.name,
                c.geography,
                "yes" if c.enrolled_at else "no",
                str(c.last_epoch),
                c.health_status or "-",
                when(c.last_health_at),
                f"{c.license.host_units:g} HU until {c.license.expires}" if c.license else "-",
            )
            for c in found
        ],
        ("NAME", "GEO", "ENROLLED", "EPOCH", "HEALTH", "LAST HEALTH CHECK", "LICENSE"),
    )


# --- licenses ---------------------------------------------------------------------------------


@main.group()
def licenses() -> None:
    """Cluster licenses."""


@licenses.command("set")
@click.argument("cluster")
@click.option("--host-units", required=True, type=FiniteFloat(0, MAX_HOST_UNITS))
@click.option(
    "--expires", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="Last valid day."
)
@db_option
def licenses_set(cluster: str, host_units: float, expires: datetime, db_url: str) -> None:
    """Create or replace the license of CLUSTER (name or id)."""
    by = audit_log.cli_actor(_operator())
    run_on_db(
        db_url,
        lambda ctx: admin.set_license(ctx, cluster, host_units, expires.date(), by=by),
        migrate=False,
    )
    click.echo(f"license of {cluster}: {host_units:g} host units until {expires.date()}", err=True)


# --- alerts -----------------------------------------------------------------------------------


@main.group()
def alerts() -> None:
    """Alerts raised by Mission Control."""


@alerts.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include cleared alerts.")
@click.option("--cluster", help="Only this cluster (name or id).")
@db_option
@json_option
def alerts_list(show_all: bool, cluster: str | None, db_url: str, as_json: bool) -> None:
    """Active alerts, newest first."""
    found = run_on_db(
        db_url,
        lambda ctx: alert_store.list_alerts(ctx, active_only=not show_all, cluster=cluster),
        migrate=False,
    )
    if as_json:
        click.echo(json.dumps([a.model_dump(mode="json") for a in found], indent=2))
        return
    table(
        [
            (
                str(a.id),
                when(a.raised_at),
                when(a.cleared_at),
                a.cluster_name,
                a.kind.value,
                a.severity,
                a.detail,
            )
            for a in found
        ],
        ("ID", "RAISED", "CLEARED", "CLUSTER", "KIND", "SEVERITY", "DETAIL"),
    )


@alerts.command("acknowledge")
@click.argument("alert_id", type=ROW_ID, metavar="ID")
@db_option
def alerts_acknowledge(alert_id: int, db_url: str) -> None:
    """Close alert ID (setting_changed, datacenter_back: only a person closes them); audited."""
    by = audit_log.cli_actor(_operator())
    closed = run_on_db(
        db_url, lambda ctx: alert_store.acknowledge_alert(ctx, str(alert_id), by=by), migrate=False
    )
    click.echo(f"alert {closed.id} ({closed.kind.value}, {closed.cluster_name}) closed", err=True)


# --- secrets key ------------------------------------------------------------------------------


@main.group("secrets-key")
def secrets_key() -> None:
    """The key sealing secrets (TOTP) in the database."""


@secrets_key.command("create")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def secrets_key_create(file: Path) -> None:
    """Write a new random key to FILE (mode 0600; a missing directory is made 0700)."""
    # Deferred for start-up time, as the other commands' imports.
    from mission_control.secrets_key import create_key_file

    try:
        create_key_file(file)
    except FileExistsError:
        raise click.ClickException(
            f"{file} exists already: a key is never replaced (what it sealed would be lost)"
        ) from None
    except OSError as error:
        raise click.ClickException(f"cannot write {file}: {error.strerror}") from None
    click.echo(
        f"wrote {file}: serve with --secrets-key-file {file} (or MISSION_CONTROL_SECRETS_KEY_FILE)",
        err=True,
    )


# --- certs ------------------------------------------------------------------------------------


@main.group()
def certs() -> None:
    """Certificates for development and tests."""


@certs.command("dev-ca")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", "hosts", multiple=True, help="Name or IP (repeatable).")
@click.option("--force", is_flag=True, help="Replace existing files.")
def certs_dev_ca(directory: Path, hosts: tuple[str, ...], force: bool) -> None:
    """Write a throwaway CA (ca.pem) and a server certificate (server.pem, server-key.pem)."""
    # Deferred for start-up time: only this command needs the certificate code.
    from contract.certs import DEFAULT_HOSTS, write_dev_ca
    from mission_control.secrets_key import private_directory

    try:
        private_directory(directory)  # it will hold the server's private key
        written = write_dev_ca(directory, list(hosts) or DEFAULT_HOSTS, overwrite=force)
    except (OSError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"wrote {written.ca_cert}, {written.server_cert}, {written.server_key}", err=True)


if __name__ == "__main__":
    sys.exit(main())
