"""Remote-support messages from a cluster's leader: decisions, command results, its public key
and its support policy. Each goes through the cluster-message path (`cluster_messages.accept`):
credential, epoch fencing and message_id dedupe, each message in its batch's transaction.

Guarantees:
- An `approved` decision is honoured only with a `SignedApproval` that verifies with this
  cluster's PINNED Ed25519 key and matches the request Mission Control holds
  (`contract.support.approval.verify_approval`); its approval id is claimed in `approval_ids`
  (primary key), so a replayed approval is refused even under another message_id. Forged,
  mismatching and replayed approvals are all refused with 422 (`approval_rejected`,
  `approval_replayed`: never 409, which the cluster's outbox reads as epoch fencing; see
  `refusals.ClusterMessageRefused`), and written to the audit log (in a transaction of their
  own, since the message's transaction rolls back).
- A refused approval is not silently dropped: the request (denied here if it was still pending)
  is listed to the cluster as `revoked` by `system` with the reason, until the cluster confirms,
  so the cluster closes the grant it believed running instead of showing it as approved.
- With an operator identity provider trusted here for the cluster, the approval must also embed
  a verified approver (`mission_control.service.support.approvers`), checked with that
  provider's keys after the signature; refused like a forged approval otherwise. The audit
  entry of an honoured approval says what Mission Control knows of the approver.
- A denial or revocation by an operator of such a cluster must embed that operator's ID token
  (`approver_identity`), checked the same way at the decision's time; refused with 422
  (`approval_rejected`) and audited otherwise, and Mission Control's record stays as it was
  (the cluster's leader enforces its own revocation either way). Steps the cluster took on its
  own (`system`) are not checked. The audit entry says what Mission Control knows of the person.
- The first public key a cluster sends is pinned; a different one later is refused (422
  `public_key_conflict`) and audited.
- Decisions on requests that are already in the reported state change nothing; a cluster
  confirming a state Mission Control set (the engineer ended the grant) stops it being listed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import replace
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contract.audit.events import SYSTEM, ActorKind, AuditEvent
from contract.messages import (
    SupportAck,
    SupportCommandResult,
    SupportDecision,
    SupportPolicyReport,
    SupportPublicKey,
)
from contract.support.approval import ApproverIdentity, SignedApproval, verify_approval
from contract.support.errors import ApprovalRejected
from contract.support.requests import RequestState, request_event
from mission_control.db.engine import insert_or_ignore
from mission_control.db.schema import approval_ids, support_clusters
from mission_control.errors import NotFound
from mission_control.service.accounts import audit_log
from mission_control.service.context import ServiceContext
from mission_control.service.exchange.cluster_messages import accept
from mission_control.service.exchange.ingest import Scope
from mission_control.service.refusals import (
    ApprovalInvalid,
    ApprovalReplayed,
    ApproverUnverifiable,
    ClusterMessageRefused,
    InvalidInput,
    InvalidState,
    KeyConflict,
    Refused,
)
from mission_control.service.support import access_store
from mission_control.service.support.access_store import StoredRequest
from mission_control.service.support.commands import record_result
from mission_control.service.support.events import cluster_person, system_event

log = logging.getLogger(__name__)
_NOTHING = SupportAck(recorded=False)
_CLOSED = (RequestState.REVOKED, RequestState.ENDED)
_REFUSED = (RequestState.DENIED, RequestState.EXPIRED)


class _DeferredClaim:
    """`ReplayGuard` whose claim is made afterwards by an atomic INSERT (`_claim`): claiming is
    the last check of `verify_approval`, so deferring it changes nothing but makes it async."""

    def __init__(self) -> None:
        self.claimed: tuple[str, datetime] | None = None

    def claim(self, approval_id: str, forget_after: datetime) -> bool:
        self.claimed = (approval_id, forget_after)
        return True


async def _claim(conn: AsyncConnection, guard: _DeferredClaim, request_id: str) -> bool:
    assert guard.claimed is not None
    approval_id, forget_after = guard.claimed
    result = await conn.execute(
        insert_or_ignore(conn.dialect.name, approval_ids, ("approval_id",)),
        {"approval_id": approval_id, "request_id": request_id, "forget_after": forget_after},
    )
    return result.rowcount == 1


async def pinned_key(conn: AsyncConnection, cluster_id: str) -> Ed25519PublicKey:
    pem = await conn.scalar(
        select(support_clusters.c.public_key_pem).where(support_clusters.c.cluster_id == cluster_id)
    )
    if pem is None:
        raise KeyConflict("no public key is pinned for this cluster: send support/public-key first")
    return _parse_key(pem)


def _parse_key(pem: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, TypeError) as error:
        raise InvalidInput(f"public_key_pem is not a PEM public key: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput("public_key_pem must be an Ed25519 public key")
    return key


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


async def _approve(
    conn: AsyncConnection, ctx: ServiceContext, stored: StoredRequest, message: SupportDecision
) -> tuple[StoredRequest, AuditEvent] | None:
    request, now = stored.request, ctx.clock()
    if message.approval is None:
        raise ApprovalInvalid("an approved decision must carry the signed approval")
    try:
        approval = SignedApproval.from_json(message.approval.model_dump())
    except ApprovalRejected as error:
        raise ApprovalInvalid(str(error)) from None
    if request.grant is not None and request.grant.grant_id == approval.approval_id:
        return None  # honoured before (the same approval sent again)
    if request.state is not RequestState.PENDING:
        raise InvalidState(f"request {request.id} is {request.state.value}, not pending")
    guard = _DeferredClaim()
    key = await pinned_key(conn, request.cluster_id)
    try:
        grant = verify_approval(approval, key, request=request, now=now, guard=guard)
    except ApprovalRejected as error:
        raise ApprovalInvalid(str(error)) from None
    # After the signature: only the cluster's own approvals are worth asking its provider about.
    approver = await asyncio.to_thread(ctx.support.approvers.check, request.cluster_id, approval)
    terms = message.grant
    if terms is not None and (terms.role, terms.starts_at, terms.ends_at) != (
        grant.role.value,
        grant.starts_at,
        grant.ends_at,
    ):
        raise ApprovalInvalid(f"grant terms differ from the signed approval {grant.grant_id}")
    if not await _claim(conn, guard, request.id):
        raise ApprovalReplayed(f"approval {grant.grant_id} was already used (replay refused)")
    new = replace(
        request,
        state=RequestState.APPROVED,
        decided_at=grant.starts_at,
        decided_by=grant.approved_by,
        grant=grant,
    )
    actor = replace(grant.approved_by, via="cluster")
    event = request_event(
        new, actor, "support.approved", now, approval_id=grant.grant_id, approver=approver
    )
    return replace(stored, request=new), event


async def _decider(
    ctx: ServiceContext, cluster_id: str, message: SupportDecision, now: datetime
) -> str | None:
    """What Mission Control knows of the operator who denied or revoked (the embedded ID token
    checked like an approval's, `approvers.check_decider`); `ApprovalInvalid` when refused.
    Steps the cluster took on its own (`system`) name no person and are not checked."""
    if message.state not in ("denied", "revoked"):
        return None
    if cluster_person(message.by).kind is not ActorKind.OPERATOR:
        return None
    embedded = message.approver_identity
    identity = ApproverIdentity.from_json(embedded.model_dump()) if embedded else None
    return await asyncio.to_thread(
        ctx.support.approvers.check_decider,
        cluster_id,
        identity,
        message.by,
        message.at or now,
        label=f"{message.state} decision on {message.request_id}",
    )


def _close(stored: StoredRequest, message: SupportDecision, now: datetime) -> StoredRequest | None:
    """The record after the cluster reports `message.state`; None when nothing changes."""
    request = stored.request
    at = message.at or now
    state = RequestState(message.state)
    actor = cluster_person(message.by)
    if (
        request.state is state
        or (request.state in _CLOSED and state in _CLOSED)
        or (stored.sync_state is not None and request.state in _REFUSED)
    ):
        # Already closed here (by the engineer, staff, the window elapsed, or the approval was
        # refused here): the cluster confirms.
        return None if stored.sync_state is None else replace(stored, sync_state=None)
    if state in (RequestState.DENIED, RequestState.EXPIRED):
        if request.state is not RequestState.PENDING:
            raise InvalidState(f"request {request.id} is {request.state.value}, not pending")
        new = replace(request, state=state, decided_at=at, decided_by=actor, note=message.reason)
    else:
        grant = request.grant
        if request.state is not RequestState.APPROVED or grant is None:
            raise InvalidState(f"request {request.id} is {request.state.value}, not approved")
        closed = replace(grant, closed_at=at, closed_by=actor, close_reason=message.reason)
        new = replace(request, state=state, grant=closed)
    return replace(stored, request=new, sync_state=None)


async def decision(ctx: ServiceContext, cluster_id: str, message: SupportDecision) -> SupportAck:
    """Apply a cluster's decision on one of its requests (see the module docstring)."""

    async def effect(scope: Scope) -> SupportAck:
        conn = scope.conn
        now = ctx.clock()
        stored = await access_store.load(conn, message.request_id, cluster_id=cluster_id, lock=True)
        if stored is None:
            raise NotFound(f"no access request {message.request_id} for this cluster")
        approval_json = None
        if message.state == "approved":
            approved = await _approve(conn, ctx, stored, message)
            if approved is None:
                return _NOTHING
            new, event = approved
            assert message.approval is not None
            approval_json = json.dumps(message.approval.model_dump(), sort_keys=True)
        else:
            closed = _close(stored, message, now)
            if closed is None:
                return _NOTHING
            new = closed
            confirmed = new.request == stored.request
            action = "support.confirmed" if confirmed else "support." + (message.state)
            decider = None if confirmed else await _decider(ctx, cluster_id, message, now)
            extra = {"decider": decider} if decider else {}
            event = request_event(
                new.request, cluster_person(message.by), action, now, note=message.reason, **extra
            )
        await access_store.save(conn, new, now, approval=approval_json)
        await audit_log.record(conn, ctx, [event])
        return SupportAck(recorded=True)

    try:
        return await accept(ctx, cluster_id, "support/decision", message, SupportAck, {}, effect)
    except ApproverUnverifiable as error:
        log.warning("cluster %s: approval for %s waits: %s", cluster_id, message.request_id, error)
        raise  # 503: nothing decided, the cluster sends it again
    except (Refused, NotFound) as error:
        approval_id = message.approval.approval_id if message.approval else None
        await _refused(ctx, cluster_id, message.request_id, "support.decision.refused", error,
                       state=message.state, by=message.by, approval_id=approval_id)  # fmt: skip
        if message.state == "approved" and isinstance(error, Refused):
            await _approval_refused(ctx, cluster_id, message.request_id, error)
        if isinstance(error, Refused):
            raise ClusterMessageRefused(error) from None
        raise


async def _approval_refused(
    ctx: ServiceContext, cluster_id: str, request_id: str, error: Refused
) -> None:
    """Tell the cluster its approval was refused: a pending request is denied here, and the
    request is listed to the cluster as `revoked` by `system` until it confirms."""
    now = ctx.clock()
    reason = f"Mission Control refused the approval: {error}"
    async with ctx.engine.begin() as conn:
        stored = await access_store.load(conn, request_id, cluster_id=cluster_id, lock=True)
        if stored is None or stored.request.state not in (RequestState.PENDING, *_REFUSED):
            return  # unknown here, or honoured/closed already: nothing to withdraw
        if stored.request.state is not RequestState.PENDING and stored.sync_state == "revoked":
            return  # already told
        events: list[AuditEvent] = []
        request = stored.request
        if request.state is RequestState.PENDING:
            request = replace(
                request,
                state=RequestState.DENIED,
                decided_at=now,
                decided_by=SYSTEM,
                note=reason,
            )
            events.append(request_event(request, SYSTEM, "support.denied", now, note=reason))
        new = replace(
            stored,
            request=request,
            sync_state=RequestState.REVOKED.value,
            state_changed_by=SYSTEM.name,
            state_reason=reason,
        )
        await access_store.save(conn, new, now)
        await audit_log.record(conn, ctx, events)


async def _refused(
    ctx: ServiceContext,
    cluster_id: str,
    subject: str,
    action: str,
    error: Exception,
    **detail: str | None,
) -> None:
    log.warning("cluster %s: %s: %s", cluster_id, action, error)
    event = system_event(cluster_id, subject, action, ctx.clock(), reason=str(error), **detail)
    await audit_log.record_alone(ctx, [event])


async def command_result(
    ctx: ServiceContext, cluster_id: str, message: SupportCommandResult
) -> SupportAck:
    """Store the cluster's answer to a queued command."""

    async def effect(scope: Scope) -> SupportAck:
        return await record_result(scope.conn, ctx, cluster_id, message)

    kind = "support/command-result"
    return await accept(ctx, cluster_id, kind, message, SupportAck, {}, effect)


async def _support_row(conn: AsyncConnection, cluster_id: str) -> None:
    await conn.execute(
        insert_or_ignore(conn.dialect.name, support_clusters, ("cluster_id",)),
        {"cluster_id": cluster_id},
    )


async def public_key(ctx: ServiceContext, cluster_id: str, message: SupportPublicKey) -> SupportAck:
    """Pin the cluster's approval-signing key (the first one sent); refuse a different one."""
    key = _parse_key(message.public_key_pem)
    fingerprint = hashlib.sha256(_raw(key)).hexdigest()

    async def effect(scope: Scope) -> SupportAck:
        conn = scope.conn
        now = ctx.clock()
        await _support_row(conn, cluster_id)
        pinned = await conn.scalar(
            select(support_clusters.c.public_key_pem)
            .where(support_clusters.c.cluster_id == cluster_id)
            .with_for_update()
        )
        if pinned is not None:
            if _raw(_parse_key(pinned)) == _raw(key):
                return _NOTHING
            raise KeyConflict("another public key is pinned for this cluster; refusing a new one")
        await conn.execute(
            update(support_clusters)
            .where(support_clusters.c.cluster_id == cluster_id)
            .values(public_key_pem=message.public_key_pem, key_pinned_at=now)
        )
        event = system_event(cluster_id, cluster_id, "support.key.pinned", now, sha256=fingerprint)
        await audit_log.record(conn, ctx, [event])
        return SupportAck(recorded=True)

    try:
        return await accept(ctx, cluster_id, "support/public-key", message, SupportAck, {}, effect)
    except KeyConflict as error:
        await _refused(
            ctx, cluster_id, cluster_id, "support.key.refused", error, sha256=fingerprint
        )
        raise ClusterMessageRefused(error) from None


async def policy(ctx: ServiceContext, cluster_id: str, message: SupportPolicyReport) -> SupportAck:
    """Remember the cluster's support policy so the console can show it (the cluster decides)."""
    stored = message.model_dump(mode="json", exclude={"message_id", "epoch"})

    async def effect(scope: Scope) -> SupportAck:
        conn = scope.conn
        await _support_row(conn, cluster_id)
        await conn.execute(
            update(support_clusters)
            .where(support_clusters.c.cluster_id == cluster_id)
            .values(policy=stored, policy_updated_at=ctx.clock())
        )
        return SupportAck(recorded=True)

    return await accept(ctx, cluster_id, "support/policy", message, SupportAck, {}, effect)
