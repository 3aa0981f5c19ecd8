"""What a Mission Control heartbeat reply carries for remote support, and how the cluster reads it.

`RequestItem` and `CommandItem` are the contract's items (`contract.messages`), read tolerantly:
unknown fields are ignored and values a newer Mission Control may add are strings, refused here
item by item. The functions
turn them into the cluster's own terms: the person who acted (`mc_actor`), the request as it
arrives with Mission Control's deadline (`arriving_request`), the refusal of a request for
another cluster (`refuse_foreign`) and the closing of a grant whose approval Mission Control
refused (`withdraw`). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from contract.audit.canonical import JsonValue, format_time
from contract.audit.events import SYSTEM, Actor, ActorKind, AuditEvent
from contract.messages import PendingCommand, PendingSupportRequest
from contract.support.errors import InvalidTransition
from contract.support.requests import (
    AccessRequest,
    RequestState,
    Transition,
    request_event,
)

VIA = "mission-control"


#: One `support_requests` item of the heartbeat reply: the contract's model, read as it is.
RequestItem = PendingSupportRequest
#: One `commands` item of the heartbeat reply.
CommandItem = PendingCommand


def refused_by_mission_control(item: RequestItem) -> bool:
    """Mission Control refused the cluster's approval (`revoked` by `system`)."""
    return item.state == "revoked" and item.state_changed_by == SYSTEM.name


def arriving_request(item: RequestItem) -> AccessRequest:
    """The request as it arrives (validated by `AccessRequest`)."""
    return AccessRequest(
        id=item.id,
        cluster_id=item.cluster,
        engineer=item.engineer,
        reason=item.reason,
        role=item.role,  # type: ignore[arg-type]  # validated by AccessRequest
        duration=timedelta(seconds=item.duration_seconds),
        requested_at=item.requested_at,
    )


def honour_deadline(transition: Transition, deadline: datetime | None) -> Transition:
    """A pending request waits until the EARLIER of the cluster's and Mission Control's
    deadlines: an operator can never approve what Mission Control already expired."""
    request = transition.request
    if (
        deadline is None
        or request.state is not RequestState.PENDING
        or request.pending_until is None
        or request.pending_until <= deadline
    ):
        return transition
    new = replace(request, pending_until=deadline)
    notice = (
        f"request {request.id} waits for a cluster operator until {format_time(deadline)} "
        "(Mission Control's deadline)"
    )
    return Transition(new, transition.event, notice)


def already_expired(request: AccessRequest, deadline: datetime, now: datetime) -> Transition:
    """A request that reaches the cluster after Mission Control's deadline: stored pending
    with that deadline, so the same sweep expires it (no policy decision is made)."""
    new = replace(request, pending_until=deadline)
    event = request_event(new, request.requester, "support.requested", now)
    notice = f"request {request.id} arrived after its deadline {format_time(deadline)}"
    return Transition(new, event, notice)


def via(event: AuditEvent, engineer_role: str | None = None) -> AuditEvent:
    """Record that a person acted through Mission Control (the person stays the actor)."""
    actor = event.actor
    if actor.kind in (ActorKind.ENGINEER, ActorKind.STAFF) and actor.via is None:
        actor = replace(actor, via=VIA)
    detail = dict(event.detail)
    if engineer_role:
        detail["engineer_role"] = engineer_role
    return replace(event, actor=actor, detail=detail)


def refuse_foreign(request: AccessRequest, cluster_id: str, now: datetime) -> Transition:
    """A request that names another cluster is refused on arrival (and logged here)."""
    note = f"the request names cluster {request.cluster_id}, not this cluster ({cluster_id})"
    new = replace(
        request,
        state=RequestState.DENIED,
        decided_at=now,
        decided_by=Actor("support policy (cluster check)", ActorKind.SYSTEM),
        note=note,
    )
    detail: dict[str, JsonValue] = {
        "engineer": request.engineer,
        "role": request.role.value,
        "reason": request.reason,
        "state": new.state.value,
        "note": note,
    }
    event = AuditEvent(now, request.requester, "support.refused", cluster_id, request.id, detail)
    return Transition(new, event, f"request {request.id} refused: {note}")


def withdraw(request: AccessRequest, now: datetime, reason: str | None) -> Transition:
    """Mission Control (bad signature, expired there...) or the leader (the approver is not
    verified) refused an approval for this request: a grant that can never be used is closed
    (`revoked` by `system`, with the reason) instead of being shown as running; a request still
    pending here is denied."""
    note = reason or "Mission Control refused the approval"
    grant = request.grant
    if request.state is RequestState.PENDING:
        new = replace(
            request, state=RequestState.DENIED, decided_at=now, decided_by=SYSTEM, note=note
        )
    elif request.state is RequestState.APPROVED and grant is not None:
        closed = replace(
            grant, closed_at=min(now, grant.ends_at), closed_by=SYSTEM, close_reason=note
        )
        new = replace(request, state=RequestState.REVOKED, grant=closed)
    else:
        raise InvalidTransition(
            f"request {request.id} is {request.state.value}: no approval to withdraw"
        )
    event = request_event(new, SYSTEM, "support.approval.refused", now, note=note)
    return Transition(new, event, f"request {request.id}: {note}")


def safe_arguments(arguments: dict[str, Any]) -> dict[str, JsonValue]:
    """Arguments as canonical JSON for the audit log (floats and nesting become text)."""
    out: dict[str, JsonValue] = {}
    for key, value in arguments.items():
        if value is None or isinstance(value, str | int | bool):
            out[str(key)] = value
        else:
            out[str(key)] = repr(value)
    return out


def mc_actor(item: RequestItem) -> Actor:
    """Who changed a request at Mission Control: the engineer, or a staff member."""
    by = item.state_changed_by or item.engineer
    kind = ActorKind.ENGINEER if by == item.engineer else ActorKind.STAFF
    return Actor(by, kind, via=VIA)
