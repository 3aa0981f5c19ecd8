"""`secrets scan`, the one click group both CLIs mount (`managed secrets`,
`mission-control secrets`): the scanner is the same on both sides, so is its command."""

from __future__ import annotations

from pathlib import Path

import click

from contract.secret_scan import FOUND_EXIT, ScanError, report, scan, summary


@click.group()
def secrets() -> None:
    """Credentials that leaked where they should not be."""


@secrets.command("scan")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--git", "history", is_flag=True, help="Also scan the history of git repositories.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def scan_command(paths: tuple[Path, ...], history: bool, as_json: bool) -> None:
    """Find the product's credentials (checksum-verified) under PATHS and, with --git, in the
    history of each that is a git repository. Exit 3 when any is found, so CI can stop a commit
    that holds one (1 is an error). Credentials are never printed whole."""
    try:
        leaks = scan(paths, git=history)
    except ScanError as e:
        raise click.ClickException(str(e)) from e
    if leaks or as_json:
        click.echo(report(leaks, as_json=as_json))
    click.echo(summary(leaks), err=True)
    if leaks:
        raise SystemExit(FOUND_EXIT)
