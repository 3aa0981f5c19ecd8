"""`mission-control releases keygen|init|publish|list`: the vendor's TUF-signed releases.

The repository is a directory (`--repo`, see `mission_control.service.releases.repository`);
the vendor's keys are Ed25519 PEM files kept offline, given with `--key` as many times as the
threshold needs. Errors are one line, exit 1; a refused publish writes nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from mission_control.cli_common import db_option, run_on_db
from mission_control.cli_staff import _operator
from mission_control.service.accounts.audit_log import cli_actor
from mission_control.service.releases import offers
from mission_control.service.releases.repository import (
    ReleaseRefused,
    Repository,
    generate_key,
    signers_of,
)

KEY = click.Path(dir_okay=False, exists=True, path_type=Path)
REPO = click.option(
    "--repo",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The release repository directory.",
)
SERVED_REPO = click.option(
    "--repo",
    required=True,
    envvar="MISSION_CONTROL_RELEASES_REPO",
    type=click.Path(file_okay=False, path_type=Path),
    help="The release repository (the one `serve --releases-repo` serves).",
)
KEYS = click.option(
    "--key", "keys", multiple=True, required=True, type=KEY, help="A vendor key (repeat)."
)


@click.group()
def releases() -> None:
    """The vendor's signed releases (TUF): keys, repository, publish, list."""


def _refusals(work: click.Command) -> click.Command:
    callback = work.callback
    assert callback is not None

    def run(*args: object, **kwargs: object) -> object:
        try:
            return callback(*args, **kwargs)
        except ReleaseRefused as e:
            raise click.ClickException(str(e)) from None

    work.callback = run
    return work


@_refusals
@releases.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def keygen(file: Path) -> None:
    """A new Ed25519 vendor key in FILE (0600); prints its key id."""
    try:
        click.echo(generate_key(file))
    except FileExistsError:
        raise click.ClickException(f"{file} exists: keys are never overwritten") from None


@_refusals
@releases.command()
@REPO
@KEYS
@click.option("--threshold", type=click.IntRange(min=1), required=True, help="k of the n keys.")
def init(repo: Path, keys: tuple[Path, ...], threshold: int) -> None:
    """A new repository whose root names the given keys with a k-of-n threshold."""
    click.echo(Repository(repo, datetime.now(UTC)).init(signers_of(keys), threshold))


@_refusals
@releases.command()
@click.argument("dists", nargs=-1, type=KEY, metavar="DIST...")
@click.option("--version", "version", required=True, help="The release version, e.g. 1.4.2.")
@REPO
@KEYS
def publish(dists: tuple[Path, ...], version: str, repo: Path, keys: tuple[Path, ...]) -> None:
    """Sign release VERSION (its wheels) into the repository; writes its offline bundle."""
    bundle = Repository(repo, datetime.now(UTC)).publish(version, list(dists), signers_of(keys))
    click.echo(f"published {version}: {len(dists)} file(s); bundle {bundle}")


@_refusals
@releases.command("list")
@REPO
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def list_releases(repo: Path, as_json: bool) -> None:
    """Each published release and its files; each role's expiry."""
    repository = Repository(repo, datetime.now(UTC))
    found = repository.releases()
    expires = {role: when.isoformat() for role, when in repository.expires().items()}
    if as_json:
        doc = {
            "releases": [
                {
                    "version": r.version,
                    "files": [{"name": n, "length": size, "sha256": h} for n, size, h in r.files],
                }
                for r in found
            ],
            "expires": expires,
        }
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    for r in found:
        click.echo(f"{r.version:<12} {', '.join(n for n, _s, _h in r.files)}")
    click.echo("expires: " + ", ".join(f"{role} {when}" for role, when in expires.items()))


def published_in(repo: Path) -> list[str]:
    """The versions published in `repo` now (ReleaseRefused for a broken repository)."""
    return [r.version for r in Repository(repo, datetime.now(UTC)).releases()]


@_refusals
@releases.command()
@click.argument("version")
@click.option("--cluster", required=True, help="The cluster (name or id) offered the release.")
@SERVED_REPO
@db_option
def offer(version: str, cluster: str, repo: Path, db_url: str) -> None:
    """Offer published release VERSION to a cluster: its leader fetches, verifies and installs
    it inside the cluster's maintenance window (`managed upgrade window`)."""
    published = published_in(repo)
    by = cli_actor(_operator())
    run_on_db(db_url, lambda ctx: offers.offer(ctx, cluster, version, published, by), migrate=False)
    click.echo(f"release {version} offered to {cluster}")
