"""Mission Control's copy of each cluster's signed audit checkpoints.

A cluster's leader sends every checkpoint it signs (`audit/checkpoint`, through the outbox and
the cluster-message path: credential, epoch fencing, message_id dedupe). Mission Control keeps
them in `cluster_checkpoints`, so someone who can write the cluster's ZooKeeper can no longer
hide a rewrite by deleting or re-signing the local checkpoints: `managed audit verify` fetches
these copies (`list_checkpoints`) and the key Mission Control pinned, and checks against them.

Guarantees:
- A checkpoint is stored only if its signature verifies with the cluster's PINNED key (the key
  is pinned at first sight and never silently replaced: `sync.public_key`).
- One checkpoint per (cluster, seq): the same one again changes nothing; a different one for a
  known seq is refused (422 `checkpoint_conflict`) and audited: it means the log was rewritten.
- Refusals are audited (`audit.checkpoint.refused`) in a transaction of their own.
"""

from __future__ import annotations

from sqlalchemy import select

from contract.audit.chain import AuditFormatError, Checkpoint
from contract.messages import AuditCheckpointCopy, CheckpointView, ClusterCheckpoints, SupportAck
from mission_control.db.engine import insert_or_ignore
from mission_control.db.schema import cluster_checkpoints, support_clusters
from mission_control.service.accounts import audit_log
from mission_control.service.context import ServiceContext
from mission_control.service.exchange.cluster_messages import accept
from mission_control.service.exchange.ingest import Scope
from mission_control.service.refusals import ClusterMessageRefused, InvalidInput, Refused
from mission_control.service.support.events import system_event
from mission_control.service.support.sync import pinned_key


class CheckpointConflict(Refused):
    """A checkpoint for a seq Mission Control already holds, with other content."""

    code = "checkpoint_conflict"
    http_status = 422


def _checkpoint(message: AuditCheckpointCopy) -> Checkpoint:
    try:
        return Checkpoint.from_json(message.model_dump(include={"seq", "hash", "at", "signature"}))
    except AuditFormatError as error:
        raise InvalidInput(str(error)) from None


async def checkpoint(
    ctx: ServiceContext, cluster_id: str, message: AuditCheckpointCopy
) -> SupportAck:
    """Keep a copy of one signed checkpoint of the cluster's audit log."""

    async def effect(scope: Scope) -> SupportAck:
        conn = scope.conn
        signed = _checkpoint(message)
        if not signed.verify(await pinned_key(conn, cluster_id)):
            raise InvalidInput(
                f"checkpoint at entry {signed.seq} does not verify with the key pinned for "
                "this cluster"
            )
        values = {
            "cluster_id": cluster_id,
            "seq": message.seq,
            "hash": message.hash,
            "at": message.at,
            "signature": message.signature,
            "received_at": ctx.clock(),
        }
        inserted = await conn.execute(
            insert_or_ignore(conn.dialect.name, cluster_checkpoints, ("cluster_id", "seq")),
            values,
        )
        if inserted.rowcount == 1:
            return SupportAck(recorded=True)
        row = (
            await conn.execute(
                select(cluster_checkpoints).where(
                    cluster_checkpoints.c.cluster_id == cluster_id,
                    cluster_checkpoints.c.seq == message.seq,
                )
            )
        ).one()
        if (row.hash, row.at, row.signature) == (message.hash, message.at, message.signature):
            return SupportAck(recorded=False)
        raise CheckpointConflict(
            f"another checkpoint at entry {message.seq} is already kept for this cluster "
            "(its audit log was rewritten?)"
        )

    try:
        return await accept(ctx, cluster_id, "audit/checkpoint", message, SupportAck, {}, effect)
    except Refused as error:
        event = system_event(
            cluster_id,
            f"checkpoint {message.seq}",
            "audit.checkpoint.refused",
            ctx.clock(),
            reason=str(error),
            seq=message.seq,
            hash=message.hash,
        )
        await audit_log.record_alone(ctx, [event])
        raise ClusterMessageRefused(error) from None


async def list_checkpoints(ctx: ServiceContext, cluster_id: str) -> ClusterCheckpoints:
    """The pinned key and every checkpoint kept for `cluster_id`, oldest first."""
    async with ctx.engine.connect() as conn:
        pem = await conn.scalar(
            select(support_clusters.c.public_key_pem).where(
                support_clusters.c.cluster_id == cluster_id
            )
        )
        rows = (
            await conn.execute(
                select(cluster_checkpoints)
                .where(cluster_checkpoints.c.cluster_id == cluster_id)
                .order_by(cluster_checkpoints.c.seq)
            )
        ).all()
    return ClusterCheckpoints(
        public_key_pem=pem,
        checkpoints=[
            CheckpointView(seq=r.seq, hash=r.hash, at=r.at, signature=r.signature) for r in rows
        ],
    )
