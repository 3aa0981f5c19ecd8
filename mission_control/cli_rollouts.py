"""`mission-control rollouts create|pause|resume|show|list`: a release rolled out across the
fleet wave by wave (docs/releases.md, "Fleet rollouts"). `serve` takes the steps; these
commands record what the vendor wants. Errors are one line, exit 1; a refused create writes
nothing.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import click

from mission_control.cli_common import FiniteFloat, db_option, json_option, run_on_db
from mission_control.cli_releases import SERVED_REPO, published_in
from mission_control.cli_staff import _operator
from mission_control.service.accounts.audit_log import cli_actor
from mission_control.service.releases import rollout_views as views
from mission_control.service.releases import rollouts as store
from mission_control.service.releases.repository import ReleaseRefused


@click.group()
def rollouts() -> None:
    """Fleet rollouts: a release offered to the clusters a selector picks, wave by wave."""


def _print(rollout: views.Rollout) -> None:
    sizes = ",".join(str(s) for s in rollout.sizes)
    click.echo(
        f"rollout {rollout.id}: {rollout.version} to {rollout.selector} "
        f"(waves {sizes}), {rollout.state}, wave {rollout.wave} of {len(rollout.sizes)}"
    )
    click.echo(f"  {rollout.reason}")
    for c in rollout.clusters:
        versions = ",".join(sorted(set(c.versions))) or "-"
        line = f"  wave {c.wave}  {c.name:<24} {c.state:<9} {versions:<16} {c.health or '-'}"
        click.echo(line + (f"  {c.failure}" if c.failure else ""))


@rollouts.command()
@click.argument("version")
@click.option(
    "--clusters",
    "selector",
    required=True,
    help="all, geography=EU, or a comma list of cluster names (enrolled clusters).",
)
@click.option(
    "--waves",
    required=True,
    help="Cumulative wave sizes, counts or percentages of the selection: 1,10%,50%,100%.",
)
@click.option(
    "--deadline-hours",
    type=FiniteFloat(0.001, 24 * 90),
    default=24.0,
    show_default=True,
    help="How long a cluster may take to run VERSION healthy after its offer.",
)
@SERVED_REPO
@db_option
def create(
    version: str, selector: str, waves: str, deadline_hours: float, repo: Path, db_url: str
) -> None:
    """Roll release VERSION out to the selected clusters, wave by wave."""
    try:
        published = published_in(repo)
    except ReleaseRefused as e:
        raise click.ClickException(str(e)) from None
    by = cli_actor(_operator())
    deadline = timedelta(hours=deadline_hours)
    made = run_on_db(
        db_url,
        lambda ctx: store.create(ctx, version, selector, waves, deadline, published, by),
        migrate=False,
    )
    _print(made)


@rollouts.command()
@click.argument("rollout_id", metavar="ID")
@db_option
def pause(rollout_id: str, db_url: str) -> None:
    """Pause a rollout: nothing more is offered until it resumes."""
    by = cli_actor(_operator())
    _print(run_on_db(db_url, lambda ctx: store.pause(ctx, rollout_id, by), migrate=False))


@rollouts.command()
@click.argument("rollout_id", metavar="ID")
@db_option
def resume(rollout_id: str, db_url: str) -> None:
    """Resume a paused rollout; its failed clusters are offered the release again."""
    by = cli_actor(_operator())
    _print(run_on_db(db_url, lambda ctx: store.resume(ctx, rollout_id, by), migrate=False))


@rollouts.command()
@click.argument("rollout_id", metavar="ID")
@json_option
@db_option
def show(rollout_id: str, as_json: bool, db_url: str) -> None:
    """One rollout: its waves and each cluster's version and state."""
    found = run_on_db(db_url, lambda ctx: views.show(ctx, rollout_id), migrate=False)
    if as_json:
        click.echo(json.dumps(found.as_json(), indent=2, sort_keys=True))
    else:
        _print(found)


@rollouts.command("list")
@json_option
@db_option
def list_rollouts(as_json: bool, db_url: str) -> None:
    """Every rollout, newest first."""
    found = run_on_db(db_url, views.list_rollouts, migrate=False)
    if as_json:
        click.echo(json.dumps([r.as_json() for r in found], indent=2, sort_keys=True))
        return
    for r in found:
        done = sum(c.state == "finished" for c in r.clusters)
        click.echo(
            f"{r.id:<5} {r.version:<12} {r.state.value:<10} wave {r.wave}/{len(r.sizes)}  "
            f"{done}/{len(r.clusters)} finished  {r.selector}"
        )
