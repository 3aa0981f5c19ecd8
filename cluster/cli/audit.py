"""`managed audit log|verify`: read the cluster's hash-chained audit log and check it."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from cluster.cli.common import Globals, emit, json_option, pass_globals

if TYPE_CHECKING:
    from cluster.audit.chain import AuditEntry

# Domain modules are imported inside the commands (see cluster.cli.support).


@click.group()
def audit() -> None:
    """The audit log: every support request, decision, command and result."""


def parse_since(text: str, now: datetime) -> datetime:
    """`2025-03-01`, `2025-03-01T12:00:00Z` (UTC when no offset), or a duration such as `2h`."""
    from cluster.support.errors import PolicyError
    from cluster.support.policy import parse_duration

    try:
        return now - parse_duration(text)
    except PolicyError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither an ISO time (2025-03-01T12:00:00Z) nor a duration (2h, 7d)",
            param_hint="--since",
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _line(entry: AuditEntry) -> str:
    detail = dict(entry.detail)
    note = detail.get("result") or detail.get("note") or detail.get("reason") or ""
    what = detail.get("command") or detail.get("state") or ""
    text = f"{what}: {note}" if what and note else str(what or note)
    return (
        f"{entry.seq:>6}  {entry.at.strftime('%Y-%m-%d %H:%M:%SZ')}  {entry.actor}  "
        f"{entry.action}  {entry.subject}  {text}"
    ).rstrip()


@audit.command("log")
@click.option("--since", help="Only entries from this time (ISO 8601) or this long ago (2h, 7d).")
@json_option
@pass_globals
def log_cmd(g: Globals, since: str | None, as_json: bool) -> None:
    """Show the audit log, oldest first."""
    from cluster.audit.store import AuditLog

    start = parse_since(since, datetime.now(UTC)) if since else None
    with g.session() as client:
        entries = AuditLog(client, g.paths).entries()
    shown = [e for e in entries if start is None or e.at >= start]
    rows: list[dict[str, Any]] = [e.to_json() for e in shown]
    emit(
        as_json,
        rows,
        lambda: "\n".join(_line(e) for e in shown) if shown else "no audit entries",
    )


@audit.command()
@json_option
@pass_globals
def verify(g: Globals, as_json: bool) -> None:
    """Check every entry and signed checkpoint; exit 1 naming the first altered, inserted or
    removed entry."""
    from cluster.audit.canonical import format_time
    from cluster.audit.store import AuditLog
    from cluster.support.keys import load_public_key

    with g.session() as client:
        result = AuditLog(client, g.paths).verify(load_public_key(client, g.paths))
    if as_json:
        doc = {
            "ok": result.ok,
            "summary": result.summary(),
            "entries": result.entries,
            "last_seq": result.last_seq,
            "anchored_seq": result.anchored_seq,
            "unanchored": result.unanchored,
            "problem": (
                {
                    "seq": result.problem.seq,
                    "kind": result.problem.kind.value,
                    "reason": result.problem.reason,
                }
                if result.problem
                else None
            ),
            "checkpoint_problems": [str(p) for p in result.checkpoint_problems],
            "checked_at": format_time(datetime.now(UTC)),
        }
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    elif result.ok:
        click.echo(result.summary())
    else:
        click.echo(f"audit log damaged: {result.summary()}", err=True)
    if not result.ok:
        sys.exit(1)
