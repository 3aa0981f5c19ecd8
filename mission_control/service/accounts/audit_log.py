"""Mission Control's own audit log: `contract.audit.chain` entries in the `audit_log` table.

Guarantees:
- `record` appends in the caller's transaction, so an action and its audit entries commit or
  roll back together. Appends are serialised (PostgreSQL: a transaction-level advisory lock;
  SQLite: the database write lock every transaction takes), so sequence numbers never collide.
- Every field of an entry is its own column and the entry is rebuilt from the columns for
  verification: editing any of them (or deleting, inserting, reordering rows) is found by
  `verify`, which reports the first problem.
- A checkpoint signed with Mission Control's key (`signing_key`) is added whenever the
  `CheckpointSchedule` says so (every 100 entries or 15 minutes by default).

Not guaranteed: whoever can write the database AND read the key could rewrite history; see
docs/remote-support.md, "Audit log".
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import ColumnElement, Row, and_, insert, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from contract.audit.canonical import canonical_json
from contract.audit.chain import (
    AuditEntry,
    AuditFormatError,
    ChainProblem,
    Checkpoint,
    ProblemKind,
    VerifyResult,
    append,
    verify_chain,
)
from contract.audit.events import Actor, ActorKind, AuditEvent
from contract.messages import StaffRole
from mission_control.db.schema import access_requests, audit_checkpoints, audit_log
from mission_control.service.accounts.signing_key import audit_key, stored_key
from mission_control.service.context import ServiceContext
from mission_control.staff.identity import StaffIdentity

log = logging.getLogger(__name__)
_PG_LOCK_KEY = 0x6D635F6175646974  # "mc_audit"


def _row_values(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at,
        "actor_name": entry.actor.name,
        "actor_kind": entry.actor.kind.value,
        "actor_via": entry.actor.via,
        "action": entry.action,
        "cluster": entry.cluster,
        "subject": entry.subject,
        "detail": canonical_json(dict(entry.detail)).decode("utf-8"),
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def entry_from_row(row: Row[Any]) -> AuditEntry:
    """Rebuild an entry from its columns (AuditFormatError if a column is unreadable)."""
    return AuditEntry.from_json(
        {
            "seq": row.seq,
            "at": row.at.isoformat(),
            "actor": {"name": row.actor_name, "kind": row.actor_kind, "via": row.actor_via},
            "action": row.action,
            "cluster": row.cluster,
            "subject": row.subject,
            "detail": json.loads(row.detail),
            "prev_hash": row.prev_hash,
            "hash": row.hash,
        }
    )


def _checkpoint_from_row(row: Row[Any]) -> Checkpoint:
    return Checkpoint.from_json(
        {"seq": row.seq, "hash": row.hash, "at": row.at.isoformat(), "signature": row.signature}
    )


async def _head(conn: AsyncConnection) -> AuditEntry | None:
    row = (await conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(1))).first()
    return None if row is None else entry_from_row(row)


async def _last_checkpoint(conn: AsyncConnection) -> Checkpoint | None:
    row = (
        await conn.execute(
            select(audit_checkpoints).order_by(audit_checkpoints.c.seq.desc()).limit(1)
        )
    ).first()
    return None if row is None else _checkpoint_from_row(row)


async def record(
    conn: AsyncConnection, ctx: ServiceContext, events: Iterable[AuditEvent]
) -> list[AuditEntry]:
    """Append `events` to the log in the caller's transaction; sign a checkpoint when due."""
    events = list(events)
    if not events:
        return []
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    head = await _head(conn)
    entries: list[AuditEntry] = []
    for event in events:
        head = append(head, event)
        entries.append(head)
    await conn.execute(insert(audit_log), [_row_values(e) for e in entries])
    now = ctx.clock()
    if ctx.support.checkpoints.due(await _last_checkpoint(conn), head, now):
        assert head is not None
        await _sign(conn, head, now, await audit_key(conn, now))
    return entries


async def _sign(conn: AsyncConnection, head: AuditEntry, now: datetime, key: Any) -> None:
    checkpoint = Checkpoint.sign(head, now, key)
    await conn.execute(
        insert(audit_checkpoints).values(
            seq=checkpoint.seq,
            hash=checkpoint.hash,
            at=checkpoint.at,
            signature=base64.b64encode(checkpoint.signature).decode("ascii"),
        )
    )


async def record_alone(ctx: ServiceContext, events: Iterable[AuditEvent]) -> None:
    """Append in a transaction of its own: for refusals, whose own transaction rolls back."""
    async with ctx.engine.begin() as conn:
        await record(conn, ctx, events)


# Who sees what of the log (the console's audit page and `GET /api/v1/audit` both ask here).
_WHOLE_LOG = frozenset({StaffRole.OPERATOR, StaffRole.ADMIN})
_PEOPLE = (ActorKind.ENGINEER.value, ActorKind.STAFF.value)
# A failed login's stored reason says which factor was wrong ("wrong password", "TOTP
# refused: ..."): an oracle for anyone holding a password. Only admins read it.
_REDACTED_ACTIONS = frozenset({"staff.login.failed"})
REDACTED_LOGIN = "login refused"


def sees_whole_log(viewer: StaffIdentity) -> bool:
    """Operators and admins read the whole log; support engineers only their part of it."""
    try:
        return StaffRole(viewer.role) in _WHOLE_LOG
    except ValueError:
        return False


def _visible_to(viewer: StaffIdentity) -> ColumnElement[bool]:
    """Support engineers see the entries where they acted or that are about them: their
    account, or one of their own access requests (its approval, denial, expiry...)."""
    acted = and_(audit_log.c.actor_name == viewer.user, audit_log.c.actor_kind.in_(_PEOPLE))
    own_requests = select(access_requests.c.id).where(access_requests.c.engineer == viewer.user)
    return or_(acted, audit_log.c.subject == viewer.user, audit_log.c.subject.in_(own_requests))


def redact_for(viewer: StaffIdentity | None, entry: AuditEntry) -> AuditEntry:
    """`entry` as `viewer` may read it: a failed login's reason only for admins (and Mission
    Control itself, `viewer=None`); others read "login refused". A redacted entry no longer
    matches its hash: `verify` always reads the stored log."""
    if viewer is None or entry.action not in _REDACTED_ACTIONS:
        return entry
    if viewer.role == StaffRole.ADMIN.value:
        return entry
    return replace(entry, detail={"reason": REDACTED_LOGIN})


async def list_entries(
    ctx: ServiceContext,
    *,
    viewer: StaffIdentity | None = None,
    actor: str | None = None,
    cluster: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> list[AuditEntry]:
    """Entries matching every given filter (`since` inclusive, `until` exclusive), newest
    first, at most `limit`, as `viewer` may see them: operators and admins the whole log,
    support engineers only entries they are the actor or the subject of (their account or one
    of their access requests), and failed logins' reasons only admins (`redact_for`).
    `viewer=None` is Mission Control itself (the CLI): the whole log as stored. Every page or
    API reply shown to a person passes its viewer."""
    query = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
    if viewer is not None and not sees_whole_log(viewer):
        query = query.where(_visible_to(viewer))
    if actor is not None:
        query = query.where(audit_log.c.actor_name == actor)
    if cluster is not None:
        query = query.where(audit_log.c.cluster == cluster)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    if until is not None:
        query = query.where(audit_log.c.at < until)
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [redact_for(viewer, entry_from_row(row)) for row in rows]


async def known_actions(ctx: ServiceContext) -> list[str]:
    """Every action recorded so far, sorted (for filter suggestions)."""
    async with ctx.engine.connect() as conn:
        rows = await conn.execute(
            select(audit_log.c.action).distinct().order_by(audit_log.c.action)
        )
        return [str(row.action) for row in rows]


async def verify(ctx: ServiceContext) -> VerifyResult:
    """Verify the whole log against its signed checkpoints; the first problem is reported."""
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(select(audit_log).order_by(audit_log.c.seq))).all()
        checkpoint_rows = (await conn.execute(select(audit_checkpoints))).all()
        key = await stored_key(conn)
    entries: list[AuditEntry] = []
    for row in rows:
        try:
            entries.append(entry_from_row(row))
        except AuditFormatError as error:
            problem = ChainProblem(len(entries) + 1, ProblemKind.ALTERED, str(error))
            return VerifyResult(
                entries=len(rows), last_seq=rows[-1].seq if rows else 0, problem=problem
            )
    checkpoints: list[Checkpoint] = []
    for row in checkpoint_rows:
        try:
            checkpoints.append(_checkpoint_from_row(row))
        except AuditFormatError as error:
            problem = ChainProblem(row.seq, ProblemKind.ALTERED, f"its checkpoint: {error}")
            return VerifyResult(
                entries=len(rows), last_seq=rows[-1].seq if rows else 0, problem=problem
            )
    # Without a stored key no checkpoint can be genuine: a throwaway key reports them as forged.
    public = (key or Ed25519PrivateKey.generate()).public_key()
    return verify_chain(entries, checkpoints, public)


def cli_actor(name: str) -> Actor:
    """The person running a `mission-control` command, as an audit actor."""
    return Actor(name, ActorKind.STAFF, via="mission-control cli")
