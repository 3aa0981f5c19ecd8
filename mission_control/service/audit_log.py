"""Mission Control's own audit log: `cluster.audit.chain` entries in the `audit_log` table.

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
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Row, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from cluster.audit.canonical import canonical_json
from cluster.audit.chain import (
    AuditEntry,
    AuditFormatError,
    ChainProblem,
    Checkpoint,
    ProblemKind,
    VerifyResult,
    append,
    verify_chain,
)
from cluster.audit.events import Actor, ActorKind, AuditEvent
from mission_control.db.schema import audit_checkpoints, audit_log
from mission_control.service.context import ServiceContext
from mission_control.service.signing_key import audit_key, stored_key

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


async def list_entries(
    ctx: ServiceContext,
    *,
    actor: str | None = None,
    cluster: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    limit: int = 1000,
) -> list[AuditEntry]:
    """Entries matching every given filter, newest first, at most `limit`."""
    query = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
    if actor is not None:
        query = query.where(audit_log.c.actor_name == actor)
    if cluster is not None:
        query = query.where(audit_log.c.cluster == cluster)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [entry_from_row(row) for row in rows]


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
