"""`managed audit log|verify`: read the cluster's hash-chained audit log and check it."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from cluster.cli.common import Globals, emit, json_option, pass_globals
from cluster.zk import ZooKeeper

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from contract.audit.chain import AuditEntry, Checkpoint
    from contract.messages import ClusterCheckpoints

# Domain modules are imported inside the commands (see cluster.cli.support).


@click.group()
def audit() -> None:
    """The audit log: every support request, decision, command and result."""


def parse_since(text: str, now: datetime) -> datetime:
    """`2025-03-01`, `2025-03-01T12:00:00Z` (UTC when no offset), or a duration such as `2h`."""
    from contract.support.errors import PolicyError
    from contract.support.policy import parse_duration

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


@dataclass(frozen=True)
class _Reference:
    """What the log is checked against: the key, Mission Control's copies, and how."""

    key: Ed25519PublicKey | None
    copies: list[Checkpoint] | None
    scope: str
    key_problem: str | None = None


def _fetch_copies(g: Globals, client: ZooKeeper) -> ClusterCheckpoints | None:
    """Mission Control's copies of the checkpoints, or None when the cluster is not enrolled."""
    from cluster.backups.config_store import read_config
    from cluster.link.client import MissionControlClient
    from cluster.link.credentials import CREDENTIAL_SECRET
    from cluster.link.errors import MessageRejected, MissionControlUnavailable
    from cluster.link.settings import Link
    from cluster.secrets import SecretsUnavailable, read_secret

    config, _ = read_config(client, g.paths)
    link = Link.from_config(config)
    if link is None:
        return None
    try:
        credential = read_secret(client, g.paths, g.zk_auth, CREDENTIAL_SECRET)
    except SecretsUnavailable as error:
        raise click.ClickException(
            f"comparing with Mission Control's copy needs the cluster's credential ({error}); "
            "pass --offline to check only the local copy"
        ) from None
    if credential is None:
        return None

    async def fetch() -> ClusterCheckpoints:
        async with MissionControlClient(
            link.url,
            credential=credential.decode(),
            ca_pem=link.ca_pem or None,
        ) as mc:
            return await mc.audit_checkpoints()

    try:
        return asyncio.run(fetch())
    except (MissionControlUnavailable, MessageRejected, ValueError) as error:
        raise click.ClickException(
            f"cannot fetch Mission Control's copy of the checkpoints ({error}); "
            "pass --offline to check only the local copy"
        ) from None


def _reference(g: Globals, client: ZooKeeper, offline: bool) -> _Reference:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from cluster.support.keys import load_public_key, public_pem
    from contract.audit.chain import Checkpoint

    local = load_public_key(client, g.paths)
    if offline:
        return _Reference(local, None, "the local copy only (--offline)")
    remote = _fetch_copies(g, client)
    if remote is None:
        return _Reference(local, None, "the local copy only (not enrolled at Mission Control)")
    copies = [Checkpoint.from_json(c.model_dump()) for c in remote.checkpoints]
    scope = f"{len(copies)} checkpoint copies at Mission Control"
    if remote.public_key_pem is None:
        return _Reference(local, copies, scope + " (no key pinned there yet)")
    try:
        pinned = load_pem_public_key(remote.public_key_pem.encode())
    except ValueError:
        pinned = None
    if not isinstance(pinned, Ed25519PublicKey):
        raise click.ClickException("Mission Control sent a pinned key that is not Ed25519")
    problem = None
    if local is None or public_pem(local) != public_pem(pinned):
        problem = (
            "support/public-key in ZooKeeper is not the key Mission Control pinned for this "
            "cluster (replaced?); checked with the pinned key"
        )
    return _Reference(pinned, copies, scope + ", with the key it pinned", problem)


@audit.command()
@click.option("--offline", is_flag=True, help="Check only the local copy (no Mission Control).")
@json_option
@pass_globals
def verify(g: Globals, offline: bool, as_json: bool) -> None:
    """Check every entry and signed checkpoint; exit 1 naming the first altered, inserted or
    removed entry. When the cluster is enrolled, the checkpoints are also compared with the
    copies Mission Control keeps, with the key it pinned (needs --zk-auth)."""
    from cluster.audit.store import AuditLog
    from cluster.support.keys import public_key_protected
    from contract.audit.canonical import format_time

    with g.session() as client:
        reference = _reference(g, client, offline)
        result = AuditLog(client, g.paths).verify(reference.key, copies=reference.copies)
        protected = public_key_protected(client, g.paths, g.zk_auth)
    ok = result.ok and reference.key_problem is None
    notes = [] if protected else [_UNPROTECTED]
    if as_json:
        doc = {
            "ok": ok,
            "summary": result.summary(),
            "checked_against": reference.scope,
            "key_problem": reference.key_problem,
            "notes": notes,
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
    elif ok:
        click.echo(f"{result.summary()}; checked against {reference.scope}")
        for note in notes:
            click.echo(f"note: {note}", err=True)
    else:
        summary = result.summary() if not result.ok else str(reference.key_problem)
        click.echo(f"audit log damaged: {summary}", err=True)
        details = [str(p) for p in result.checkpoint_problems]
        if reference.key_problem and not result.ok:
            details.insert(0, reference.key_problem)
        for line in [d for d in details if d != summary][:10]:
            click.echo(f"  also: {line}", err=True)
        click.echo(f"  (checked against {reference.scope})", err=True)
    if not ok:
        sys.exit(1)


_UNPROTECTED = (
    "support/public-key can be changed without the cluster's credential; the leader protects it "
    "(or run `managed support mode` with --zk-auth)"
)
