"""`managed data ...`: read the cluster's monitoring data, remask it, forget a person, and say
who may see sensitive fields.

Reads ask every serving node over HTTPS with the reader's own read token (`--token`, env
`MANAGED_DATA_TOKEN`; the nodes' CA: `--ca-file`, env `MANAGED_DATA_CA`) and merge; user tags
are shown as `*****` unless the token's operator holds `sensitive-data`. Remask and forget are
jobs every node applies (also a node that is down now, when it returns); the command waits for
the serving nodes and reports what each changed. Changes are audited under `--operator`.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from cluster.cli.common import Globals, emit, json_option, pass_globals
from cluster.cli.deciders import operator_actor, operator_option

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str | None, now: float) -> float | None:
    """`30m`, `2h`, `7d` (ago), epoch seconds, or an ISO 8601 time with its offset."""
    if value is None:
        return None
    match = re.fullmatch(r"(\d+)([smhd])", value)
    if match:
        return now - int(match.group(1)) * UNITS[match.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            "give 30m, 2h, 7d, epoch seconds or an ISO 8601 time", param_hint="--since"
        ) from None
    if moment.tzinfo is None:
        raise click.BadParameter("an ISO time needs its UTC offset", param_hint="--since")
    return moment.timestamp()


def token_option(f: Any) -> Any:
    f = click.option(
        "--ca-file",
        envvar="MANAGED_DATA_CA",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="CA of the nodes' HTTPS certificates (env MANAGED_DATA_CA).",
    )(f)
    return click.option(
        "--token",
        envvar="MANAGED_DATA_TOKEN",
        required=True,
        help="Your read token (env MANAGED_DATA_TOKEN).",
    )(f)


@click.group()
def data() -> None:
    """Monitoring data: sessions, actions, logs; remask, forget, sensitive-data."""


def _read(
    g: Globals,
    kind: str,
    env_name: str,
    user_tag: str | None,
    since: str | None,
    limit: int,
    token: str,
    ca_file: Path | None,
    as_json: bool,
) -> None:
    from cluster.data import registry
    from cluster.data.reader import read_all

    query = {"env": env_name, "limit": str(limit)}
    if user_tag is not None:
        query["user_tag"] = user_tag
    start = parse_since(since, time.time())
    if start is not None:
        query["since"] = repr(start)
    with g.session() as client:
        nodes = registry.endpoints(client, g.paths)
    if not nodes:
        raise click.ClickException("no node serves the data API (is data_listen set?)")
    merged = read_all(nodes, kind, query, token, ca_file)
    rows = merged.rows[:limit]
    doc = {"env": env_name, "rows": rows, "missing": merged.missing}

    def text() -> str:
        lines = [_line(kind, r) for r in rows] or [f"no {kind}"]
        lines += [f"(node {n} did not answer: {why})" for n, why in merged.missing.items()]
        return "\n".join(lines)

    emit(as_json, doc, text)


def _when(at: Any) -> str:
    return datetime.fromtimestamp(float(at)).strftime("%Y-%m-%d %H:%M:%S")


def _line(kind: str, r: dict[str, Any]) -> str:
    if kind == "sessions":
        tag = r.get("user_tag") or ("anonymous" if r.get("anonymous") else "-")
        return (
            f"{_when(r['last_seen'])}  {r['id'][:12]}  {r['app']}  {tag}  {r['ip']}  [{r['node']}]"
        )
    if kind == "actions":
        return f"{_when(r['at'])}  {r['kind']:6}  {r['name']}  {r['page']}  [{r['node']}]"
    return f"{_when(r['at'])}  {r['level']:5}  {r['message']}  [{r['node']}]"


def _read_command(kind: str) -> click.Command:
    @click.command(kind, help=f"{kind.capitalize()} of ENV from every serving node, newest first.")
    @click.option("--env", "env_name", required=True)
    @click.option("--user-tag", help="Only this person's (matched exactly, shown masked).")
    @click.option("--since", help="30m, 2h, 7d, epoch seconds or ISO 8601.")
    @click.option("--limit", type=click.IntRange(1, 5000), default=100, show_default=True)
    @token_option
    @json_option
    @pass_globals
    def command(g: Globals, /, **kw: Any) -> None:
        _read(g, kind, **kw)

    return command


for _kind in ("sessions", "actions", "logs"):
    data.add_command(_read_command(_kind))


def _job(g: Globals, operator: str, kind: str, env_name: str, tag: str | None, wait: float) -> Any:
    from cluster.data import registry

    with g.session() as client:
        registry.read_settings(client, g.paths).environment(env_name)
        serving = set(registry.endpoints(client, g.paths))
        job = registry.submit_job(client, g.paths, operator_actor(operator), kind, env_name, tag)
        deadline = time.monotonic() + wait
        reports: dict[str, Any] = {}
        while time.monotonic() < deadline:
            reports = registry.job_reports(client, g.paths, job)
            if serving <= set(reports):
                break
            time.sleep(0.2)
    return job, serving, reports


def _report_lines(serving: set[str], reports: dict[str, Any]) -> list[str]:
    lines = [f"  {node}: {result}" for node, result in sorted(reports.items())]
    late = sorted(serving - set(reports))
    if late:
        lines.append(f"  not yet applied on {', '.join(late)} (they apply it when they can)")
    lines.append("  nodes not serving now apply it when they start")
    return lines


@data.command()
@click.option("--env", "env_name", required=True)
@click.option("--wait", type=float, default=30.0, show_default=True, help="Seconds to wait.")
@operator_option
@pass_globals
def remask(g: Globals, env_name: str, wait: float, operator: str) -> None:
    """Apply ENV's current processing rules (and URI masking) to what is stored already."""
    _job_, serving, reports = _job(g, operator, "remask", env_name, None, wait)
    click.echo("\n".join([f"remask of {env_name}:", *_report_lines(serving, reports)]))


@data.command()
@click.option("--env", "env_name", required=True)
@click.option("--user-tag", required=True, help="The person's user tag (e.g. their e-mail).")
@click.option("--wait", type=float, default=30.0, show_default=True, help="Seconds to wait.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@operator_option
@pass_globals
def forget(g: Globals, env_name: str, user_tag: str, wait: float, yes: bool, operator: str) -> None:
    """Delete a person's sessions and actions on every node; say what backups still hold."""
    from cluster.backups import store as backup_store

    if not yes:
        click.confirm(f"Delete every session of this user tag in {env_name}?", abort=True)
    job, serving, reports = _job(g, operator, "forget", env_name, user_tag, wait)
    with g.session() as client:
        runs = backup_store.list_runs(client, g.paths)
    lines = [
        f"forgot the user tag in {env_name} (job {job.name}):",
        *_report_lines(serving, reports),
    ]
    done = sorted((r for r in runs if r.status == "ok"), key=lambda r: r.started)
    if done:
        ids = ", ".join(r.id for r in done[-3:])
        lines.append(
            f"  {len(done)} existing backup(s) may still hold these sessions (newest: {ids}); "
            "they leave with backup retention, and a node restored from one applies this "
            "forget again when it starts"
        )
    else:
        lines.append("  no existing backup holds them")
    click.echo("\n".join(lines))


@data.group("sensitive-data")
def sensitive_data() -> None:
    """Who may see user tags and other sensitive fields unmasked."""


def _set_permission(g: Globals, name: str, grant: bool, operator: str) -> None:
    from cluster.data import registry
    from cluster.data.settings import check_data_name

    check_data_name("operator", name)

    def change(settings: Any) -> Any:
        holders = set(settings.sensitive_data)
        holders = holders | {name} if grant else holders - {name}
        return type(settings)(settings.environments, frozenset(holders)), {"operator": name}

    action = "data.sensitive.granted" if grant else "data.sensitive.revoked"
    with g.session() as client:
        registry.change_settings(client, g.paths, operator_actor(operator), action, name, change)


@sensitive_data.command("grant")
@click.argument("name")
@operator_option
@pass_globals
def grant(g: Globals, name: str, operator: str) -> None:
    """Let operator NAME see sensitive fields unmasked (through NAME's read tokens)."""
    _set_permission(g, name, True, operator)
    click.echo(f"{name} now holds sensitive-data")


@sensitive_data.command("revoke")
@click.argument("name")
@operator_option
@pass_globals
def revoke(g: Globals, name: str, operator: str) -> None:
    """Take sensitive-data away from operator NAME."""
    _set_permission(g, name, False, operator)
    click.echo(f"{name} no longer holds sensitive-data")
