"""Access requests as support engineers see them: create, list, read, end early; the sweep.

Guarantees:
- Only support-l2/l3 may request access (403 for operators and admins); a request needs a
  reason, an enrolled cluster and a duration of at most 7 days. It is `pending` until the
  cluster decides, and expires at Mission Control after `SupportSettings.pending_ttl`.
- The requester sees their own requests; operators and admins see every request. Another
  engineer's request is "not found", never "forbidden", so ids leak nothing.
- `end_request` closes the engineer's own running grant through the pure state machine
  (`contract.support.requests.end`); `revoke_request` lets support-l3, operators and admins end
  any running grant (`revoked`, naming them). Both mark it for the cluster (`sync_state`), which
  learns it from the next heartbeat reply and applies it before any later command. Every change
  and its audit entry commit together.
- Every refused attempt (a role that may not request access, ending or revoking what one may
  not) is audited with the person's name, in a transaction of its own.
- Reads show the state as of now: a pending request past its deadline reads `expired`, a grant
  past its window reads `ended`, even before `sweep` has stored that.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sqlalchemy import and_, delete, or_, select

from contract.audit.events import Actor, ActorKind, AuditEvent
from contract.support.errors import InvalidTransition, RequestError
from contract.support.policy import AccessRole
from contract.support.requests import (
    AccessRequest,
    RequestState,
    Transition,
    end,
    expire_due,
    request_event,
    revoke,
)
from mission_control.db.schema import access_requests, approval_ids, clusters
from mission_control.errors import Forbidden, NotFound
from mission_control.service.accounts import audit_log, login_throttle
from mission_control.service.context import ServiceContext
from mission_control.service.fleet.admin import find_cluster_id
from mission_control.service.refusals import InvalidInput, InvalidState
from mission_control.service.support import access_store
from mission_control.service.support.access_store import StoredRequest
from mission_control.staff.auth import AUDIT_SCOPE
from mission_control.staff.identity import StaffIdentity
from mission_control.staff.roles import can_request_access, can_revoke_grants
from mission_control.staff_protocol import AccessRequestCreate, AccessRequestView

_OVERSIGHT = ("operator", "admin")
VIA = "mission-control"
log = logging.getLogger(__name__)


def _current(stored: StoredRequest, ctx: ServiceContext) -> StoredRequest:
    due = expire_due(stored.request, ctx.clock())
    return stored if due is None else replace(stored, request=due.request)


def visible_to(identity: StaffIdentity, stored: StoredRequest) -> bool:
    return identity.role in _OVERSIGHT or stored.request.engineer == identity.user


async def refused(
    ctx: ServiceContext,
    identity: StaffIdentity,
    action: str,
    cluster: str,
    subject: str,
    error: Exception,
    **detail: str | None,
) -> None:
    """Audit an attempt the service refused, naming the person (its own transaction)."""
    event = AuditEvent(
        ctx.clock(),
        identity.actor,
        action,
        cluster,
        subject,
        {"reason": str(error), "role": identity.role, **detail},
    )
    await audit_log.record_alone(ctx, [event])


async def create_request(
    ctx: ServiceContext, identity: StaffIdentity, body: AccessRequestCreate
) -> AccessRequestView:
    """Record a new pending request for the cluster to decide on."""
    if not can_request_access(identity.role):
        error = Forbidden(
            f"role {identity.role} cannot request cluster access (support-l2/l3 only)"
        )
        await refused(
            ctx, identity, "support.request.refused", AUDIT_SCOPE, body.cluster, error,
            requested_cluster=body.cluster, requested_role=body.role,
        )  # fmt: skip
        raise error
    now = ctx.clock()
    async with ctx.engine.begin() as conn:
        cluster_id = await find_cluster_id(conn, body.cluster)
        row = (
            await conn.execute(
                select(clusters.c.name, clusters.c.enrolled_at).where(clusters.c.id == cluster_id)
            )
        ).one()
        if row.enrolled_at is None:
            raise InvalidState(f"cluster {row.name} is not enrolled yet; it cannot be reached")
        try:
            request = AccessRequest(
                id=str(uuid.uuid4()),
                cluster_id=cluster_id,
                engineer=identity.user,
                reason=body.reason.strip(),
                role=AccessRole(body.role),
                duration=body.duration_delta,
                requested_at=now,
                pending_until=now + ctx.support.pending_ttl,
            )
        except RequestError as error:
            raise InvalidInput(str(error)) from None
        stored = StoredRequest(request, identity.role, row.name)
        await access_store.add(conn, stored, now)
        event = request_event(request, identity.actor, "support.requested", now)
        await audit_log.record(conn, ctx, [event])
    return access_store.to_view(stored)


async def list_requests(
    ctx: ServiceContext,
    identity: StaffIdentity,
    cluster: str | None = None,
    *,
    limit: int | None = None,
) -> list[AccessRequestView]:
    """Requests the caller may see, newest first, optionally of one cluster (id or name), at
    most `limit` of them."""
    query = access_store.select_requests().order_by(access_requests.c.requested_at.desc())
    if limit is not None:
        query = query.limit(limit)
    if identity.role not in _OVERSIGHT:
        query = query.where(access_requests.c.engineer == identity.user)
    async with ctx.engine.connect() as conn:
        if cluster is not None:
            query = query.where(
                access_requests.c.cluster_id == await find_cluster_id(conn, cluster)
            )
        rows = (await conn.execute(query)).all()
    return [access_store.to_view(_current(access_store.from_row(r), ctx)) for r in rows]


async def get_request(
    ctx: ServiceContext, identity: StaffIdentity, request_id: str
) -> AccessRequestView:
    async with ctx.engine.connect() as conn:
        stored = await access_store.load(conn, request_id)
    if stored is None or not visible_to(identity, stored):
        raise NotFound(f"no access request {request_id}")
    return access_store.to_view(_current(stored, ctx))


async def end_request(
    ctx: ServiceContext, identity: StaffIdentity, request_id: str
) -> AccessRequestView:
    """The engineer closes their own running grant early; the cluster applies it next."""

    def step(stored: StoredRequest, now: datetime) -> Transition:
        if stored.request.engineer != identity.user:
            raise Forbidden(f"only {stored.request.engineer} can end this grant")
        return end(stored.request, identity.actor, now)

    return await _close(ctx, identity, request_id, "support.end.refused", step)


async def revoke_request(
    ctx: ServiceContext, identity: StaffIdentity, request_id: str, reason: str | None = None
) -> AccessRequestView:
    """Staff end a running grant now (`revoked`, naming them); the cluster applies it before
    its next command. support-l3, operators and admins may revoke any grant; an engineer may
    revoke their own (ending it is the usual way)."""

    def step(stored: StoredRequest, now: datetime) -> Transition:
        own = stored.request.engineer == identity.user
        if not own and not can_revoke_grants(identity.role):
            raise Forbidden(
                f"role {identity.role} cannot revoke another engineer's grant "
                "(support-l3, operator or admin only)"
            )
        # Staff act as staff here: the state machine lets only the grant's own engineer
        # revoke as an engineer.
        actor = identity.actor if own else Actor(identity.user, ActorKind.STAFF, via=VIA)
        return revoke(stored.request, actor, now, reason)

    return await _close(ctx, identity, request_id, "support.revoke.refused", step, revoker=True)


async def _close(
    ctx: ServiceContext,
    identity: StaffIdentity,
    request_id: str,
    refused_action: str,
    step: Callable[[StoredRequest, datetime], Transition],
    *,
    revoker: bool = False,
) -> AccessRequestView:
    """Apply `step` to a running grant and mark it for the cluster; audit a refusal."""
    now = ctx.clock()
    error: Exception | None = None
    cluster = AUDIT_SCOPE
    async with ctx.engine.begin() as conn:
        stored = await access_store.load(conn, request_id, lock=True)
        may_see = stored is not None and (
            visible_to(identity, stored) or (revoker and can_revoke_grants(identity.role))
        )
        if stored is None or not may_see:
            error = NotFound(f"no access request {request_id}")
        else:
            cluster = stored.request.cluster_id
            try:
                transition = step(stored, now)
            except InvalidTransition as invalid:
                error = InvalidState(str(invalid))
            except Forbidden as forbidden:
                error = forbidden
            else:
                grant = transition.request.grant
                assert grant is not None
                stored = replace(
                    stored,
                    request=transition.request,
                    sync_state=transition.request.state.value,
                    state_changed_by=identity.user,
                    state_reason=grant.close_reason,
                )
                await access_store.save(conn, stored, now)
                await audit_log.record(conn, ctx, [transition.event])
    if error is not None:
        await refused(ctx, identity, refused_action, cluster, request_id, error)
        raise error
    assert stored is not None
    return access_store.to_view(stored)


async def sweep(ctx: ServiceContext) -> int:
    """Store expiries of pending requests and ends of elapsed grants (audited as `system`);
    forget approval ids whose window has ended. Returns how many requests changed."""
    now = ctx.clock()
    due = or_(
        and_(
            access_requests.c.state == RequestState.PENDING.value,
            access_requests.c.pending_until <= now,
        ),
        and_(
            access_requests.c.state == RequestState.APPROVED.value,
            access_requests.c.ends_at <= now,
        ),
    )
    changed = 0
    async with ctx.engine.begin() as conn:
        query = access_store.select_requests().where(due).with_for_update(of=access_requests)
        events = []
        for row in (await conn.execute(query)).all():
            stored = access_store.from_row(row)
            transition = expire_due(stored.request, now)
            if transition is None:
                continue
            await access_store.save(conn, replace(stored, request=transition.request), now)
            events.append(transition.event)
            changed += 1
        await audit_log.record(conn, ctx, events)
        await conn.execute(delete(approval_ids).where(approval_ids.c.forget_after <= now))
    return changed


async def sweep_support_forever(ctx: ServiceContext, interval_s: float) -> None:
    """`sweep` (and prune the login throttle) every `interval_s` seconds until cancelled; a
    failed sweep is logged and retried."""
    while True:
        try:
            await sweep(ctx)
            # Staff accounts ride along: forgotten login throttle records.
            await login_throttle.prune(ctx, ctx.clock())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("support sweep failed; retrying in %s s", interval_s)
        await asyncio.sleep(interval_s)
