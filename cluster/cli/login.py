"""`managed login`: prove who you are with the customer's OpenID Connect provider (device
flow); see `cluster.operator_identity`."""

from __future__ import annotations

import time
from pathlib import Path

import click

from cluster.operator_identity import (
    LoginFailed,
    ProviderSettings,
    device_login,
    identity_path,
    load_identity,
    save_identity,
)


@click.command("login")
@click.option("--issuer", envvar="MANAGED_OIDC_ISSUER", help="The provider, https://...")
@click.option("--client-id", envvar="MANAGED_OIDC_CLIENT_ID", help="This CLI's client id.")
@click.option(
    "--ca-file",
    envvar="MANAGED_OIDC_CA",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CA of the provider's certificate (default: the system's).",
)
@click.option("--show", is_flag=True, help="Print who is logged in, and until when.")
def login(issuer: str | None, client_id: str | None, ca_file: Path | None, show: bool) -> None:
    """Sign in with your identity provider (OpenID Connect device flow); the short-lived ID
    token is kept 0600 in your config directory for approvals and security settings."""
    path = identity_path()
    try:
        if show:
            stored = load_identity(path, time.time())
        else:
            if not issuer or not client_id:
                raise click.UsageError("give --issuer and --client-id (MANAGED_OIDC_*)")
            settings = ProviderSettings(issuer, client_id, ca_file)

            def tell(uri: str, code: str) -> None:
                click.echo(f"Open {uri} and enter the code {code}", err=True)

            stored, _person = device_login(settings, tell)
            save_identity(path, stored)
    except LoginFailed as e:
        raise click.ClickException(str(e)) from e
    until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stored.expires_at))
    groups = ", ".join(stored.groups) or "no groups"
    click.echo(
        f"logged in as {stored.name or stored.subject} ({stored.subject}; {groups}) until {until}"
    )
