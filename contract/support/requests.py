"""Access requests and grants: the pure state machine of remote support.

States::

    pending --approve--> approved --revoke--> revoked
       |                    `----end / window elapsed--> ended
       |--deny--> denied
       `--pending_ttl elapsed--> expired

Guarantees:
- Every function is pure: it takes the current record and an injected `now`, and returns a
  `Transition` (the new record, one audit event naming the person who acted, and a one-line
  notice for the other side). Nothing is mutated; storage applies the new record and appends the
  event in one transaction.
- An invalid step raises `InvalidTransition` (one clear line) and changes nothing.
- The access window starts at approval (never at request time) and never exceeds what the engineer
  asked for, nor the policy's `max_grant`. An approver may narrow role and duration, never widen.
- Terminal records (denied, expired, revoked, ended) keep their whole history; nothing is deleted.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import TypeAdapter

from contract.audit.canonical import JsonValue, format_time
from contract.audit.events import SYSTEM, Actor, ActorKind, AuditEvent
from contract.support.errors import InvalidTransition, RequestError
from contract.support.policy import AccessRole, SupportMode, SupportPolicy, format_duration

MAX_REASON_LENGTH = 2000


class RequestState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    REVOKED = "revoked"
    ENDED = "ended"


TERMINAL_STATES = frozenset(
    {RequestState.DENIED, RequestState.EXPIRED, RequestState.REVOKED, RequestState.ENDED}
)


def _aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None:
        raise RequestError(f"{what} must carry a timezone (use UTC)")


@dataclass(frozen=True)
class AccessGrant:
    """An approved access window. `grant_id` is the unique id the signed approval carries.

    `sensitive_data`: the engineer may see sensitive monitoring data (user tags) unmasked. Never
    by default: only an approval that says so explicitly (`approve(..., sensitive_data=True)`)
    sets it, and it is part of what the cluster signs.
    """

    grant_id: str
    request_id: str
    cluster_id: str
    engineer: str
    role: AccessRole
    starts_at: datetime
    ends_at: datetime
    approved_by: Actor
    closed_at: datetime | None = None
    closed_by: Actor | None = None
    close_reason: str | None = None
    sensitive_data: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", AccessRole(self.role))
        if not isinstance(self.sensitive_data, bool):
            raise RequestError("sensitive_data is true or false")
        _aware(self.starts_at, "grant start")
        _aware(self.ends_at, "grant end")
        if self.ends_at <= self.starts_at:
            raise RequestError("a grant must end after it starts")

    def is_open(self, now: datetime) -> bool:
        """True while the window is running and nobody has closed it."""
        return self.closed_at is None and self.starts_at <= now < self.ends_at


@dataclass(frozen=True)
class AccessRequest:
    """A support engineer's request for access to one cluster, and its outcome so far."""

    id: str
    cluster_id: str
    engineer: str
    reason: str
    role: AccessRole
    duration: timedelta
    requested_at: datetime
    state: RequestState = RequestState.PENDING
    pending_until: datetime | None = None
    decided_at: datetime | None = None
    decided_by: Actor | None = None
    note: str | None = None
    grant: AccessGrant | None = None

    def __post_init__(self) -> None:
        for name in ("id", "cluster_id", "engineer"):
            if not str(getattr(self, name)).strip():
                raise RequestError(f"a support request needs a {name.replace('_', ' ')}")
        if not self.reason.strip():
            raise RequestError("a support request needs a reason: say what you need to look at")
        if len(self.reason) > MAX_REASON_LENGTH:
            raise RequestError(f"the reason is too long (at most {MAX_REASON_LENGTH} characters)")
        try:
            object.__setattr__(self, "role", AccessRole(self.role))
        except ValueError:
            roles = ", ".join(r.value for r in AccessRole)
            raise RequestError(f"unknown role {self.role!r}: use one of {roles}") from None
        object.__setattr__(self, "state", RequestState(self.state))
        if self.duration <= timedelta(0):
            raise RequestError("the requested duration must be longer than zero")
        _aware(self.requested_at, "request time")

    @property
    def requester(self) -> Actor:
        return Actor(self.engineer, ActorKind.ENGINEER)


@dataclass(frozen=True)
class Transition:
    """The result of one step: the new record, its audit event, and a notice for the other side."""

    request: AccessRequest
    event: AuditEvent
    notice: str


def _event(
    request: AccessRequest, actor: Actor, action: str, now: datetime, **extra: Any
) -> AuditEvent:
    detail: dict[str, JsonValue] = {
        "engineer": request.engineer,
        "role": request.role.value,
        "duration": format_duration(request.duration),
        "reason": request.reason,
        "state": request.state.value,
    }
    grant = request.grant
    if grant is not None:
        terms: dict[str, JsonValue] = {
            "id": grant.grant_id,
            "role": grant.role.value,
            "starts_at": format_time(grant.starts_at),
            "ends_at": format_time(grant.ends_at),
            "approved_by": grant.approved_by.to_json(),
        }
        if grant.sensitive_data:
            terms["sensitive_data"] = True
        detail["grant"] = terms
    detail.update({k: v for k, v in extra.items() if v is not None})
    return AuditEvent(now, actor, action, request.cluster_id, request.id, detail)


def _require(request: AccessRequest, state: RequestState, doing: str) -> None:
    if request.state is not state:
        raise InvalidTransition(
            f"cannot {doing} request {request.id}: it is {request.state.value}, not {state.value}"
        )


def _require_open_pending(request: AccessRequest, now: datetime, doing: str) -> None:
    _require(request, RequestState.PENDING, doing)
    if request.pending_until is None:
        raise InvalidTransition(f"cannot {doing} request {request.id}: it was never received")
    if now >= request.pending_until:
        raise InvalidTransition(
            f"cannot {doing} request {request.id}: it expired at "
            f"{format_time(request.pending_until)}; the engineer must ask again"
        )


def _new_grant_id(grant_id: str | None) -> str:
    return grant_id if grant_id is not None else secrets.token_hex(16)


def _grant(
    request: AccessRequest,
    role: AccessRole,
    duration: timedelta,
    now: datetime,
    by: Actor,
    grant_id: str | None,
    sensitive_data: bool = False,
) -> AccessGrant:
    return AccessGrant(
        grant_id=_new_grant_id(grant_id),
        request_id=request.id,
        cluster_id=request.cluster_id,
        engineer=request.engineer,
        role=role,
        starts_at=now,
        ends_at=now + duration,
        approved_by=by,
        sensitive_data=sensitive_data,
    )


def decide_on_arrival(
    request: AccessRequest, policy: SupportPolicy, now: datetime, *, grant_id: str | None = None
) -> Transition:
    """Apply the cluster's policy to a request that just arrived.

    off -> denied at once; role not allowed -> denied; allowed mode or a pre-approved engineer ->
    approved at once (window starts now); otherwise pending until `now + policy.pending_ttl`.
    """
    if request.pending_until is not None or request.decided_at is not None:
        raise InvalidTransition(f"request {request.id} was already received")
    _require(request, RequestState.PENDING, "receive")
    actor = request.requester
    refusal: str | None = None
    if policy.mode is SupportMode.OFF:
        refusal = "remote support is off on this cluster"
    elif request.role not in policy.allowed_roles:
        allowed = ", ".join(sorted(r.value for r in policy.allowed_roles))
        refusal = f"role {request.role.value} is not allowed here (allowed: {allowed})"
    if refusal is not None:
        new = replace(
            request,
            state=RequestState.DENIED,
            decided_at=now,
            decided_by=Actor(f"support policy (mode {policy.mode.value})", ActorKind.SYSTEM),
            note=refusal,
        )
        return Transition(new, _event(new, actor, "support.refused", now, note=refusal), refusal)

    auto = policy.mode is SupportMode.ALLOWED or request.engineer in policy.preapproved
    if auto:
        rule = "mode allowed" if policy.mode is SupportMode.ALLOWED else "pre-approved engineer"
        by = Actor(f"support policy ({rule})", ActorKind.SYSTEM)
        duration = policy.cap_duration(request.duration)
        grant = _grant(request, request.role, duration, now, by, grant_id)
        new = replace(
            request, state=RequestState.APPROVED, decided_at=now, decided_by=by, grant=grant
        )
        capped = format_duration(duration) if duration < request.duration else None
        notice = (
            f"request {request.id} approved at once by policy ({rule}): {grant.role.value} "
            f"until {format_time(grant.ends_at)}"
        )
        event = _event(new, actor, "support.auto_approved", now, rule=rule, capped_to=capped)
        return Transition(new, event, notice)

    deadline = now + policy.pending_ttl
    new = replace(request, pending_until=deadline)
    notice = f"request {request.id} waits for a cluster operator until {format_time(deadline)}"
    return Transition(new, _event(new, actor, "support.requested", now), notice)


def approve(
    request: AccessRequest,
    approver: Actor,
    now: datetime,
    *,
    policy: SupportPolicy,
    role: AccessRole | None = None,
    duration: timedelta | None = None,
    grant_id: str | None = None,
    sensitive_data: bool = False,
) -> Transition:
    """A cluster operator approves a pending request, optionally narrowing role and duration;
    sensitive monitoring data only when `sensitive_data` says so explicitly."""
    _require_open_pending(request, now, "approve")
    if approver.kind is not ActorKind.OPERATOR:
        raise InvalidTransition("only a cluster operator can approve a support request")
    if policy.mode is SupportMode.OFF:
        raise InvalidTransition("remote support is off on this cluster; change the mode first")
    granted_role = AccessRole(role) if role is not None else request.role
    if not request.role.covers(granted_role):
        raise InvalidTransition(
            f"cannot grant {granted_role.value}: the engineer asked for {request.role.value}"
        )
    if granted_role not in policy.allowed_roles:
        raise InvalidTransition(f"role {granted_role.value} is not allowed by the support policy")
    wanted = duration if duration is not None else request.duration
    if wanted <= timedelta(0):
        raise InvalidTransition("the approved duration must be longer than zero")
    if wanted > request.duration:
        raise InvalidTransition(
            f"cannot approve {format_duration(wanted)}: the engineer asked for "
            f"{format_duration(request.duration)}"
        )
    granted = policy.cap_duration(wanted)
    grant = _grant(request, granted_role, granted, now, approver, grant_id, sensitive_data)
    new = replace(
        request, state=RequestState.APPROVED, decided_at=now, decided_by=approver, grant=grant
    )
    capped = format_duration(granted) if granted < wanted else None
    notice = (
        f"request {request.id} approved by {approver.name}: {granted_role.value} "
        f"until {format_time(grant.ends_at)}"
    )
    return Transition(new, _event(new, approver, "support.approved", now, capped_to=capped), notice)


def deny(request: AccessRequest, by: Actor, now: datetime, reason: str | None = None) -> Transition:
    """A cluster operator denies a pending request (the reason is shown to the engineer)."""
    _require_open_pending(request, now, "deny")
    if by.kind is not ActorKind.OPERATOR:
        raise InvalidTransition("only a cluster operator can deny a support request")
    note = reason.strip() if reason and reason.strip() else None
    new = replace(request, state=RequestState.DENIED, decided_at=now, decided_by=by, note=note)
    notice = f"request {request.id} denied by {by.name}" + (f": {note}" if note else "")
    return Transition(new, _event(new, by, "support.denied", now, note=note), notice)


def _close(
    request: AccessRequest,
    grant: AccessGrant,
    state: RequestState,
    at: datetime,
    by: Actor,
    why: str | None,
) -> AccessRequest:
    grant = replace(grant, closed_at=at, closed_by=by, close_reason=why)
    return replace(request, state=state, grant=grant)


def _require_running(request: AccessRequest, now: datetime, doing: str) -> AccessGrant:
    _require(request, RequestState.APPROVED, doing)
    grant = request.grant
    if grant is None:
        raise InvalidTransition(f"cannot {doing} request {request.id}: it has no grant")
    if now >= grant.ends_at:
        raise InvalidTransition(
            f"cannot {doing} request {request.id}: its window already ended at "
            f"{format_time(grant.ends_at)}"
        )
    return grant


def revoke(
    request: AccessRequest, by: Actor, now: datetime, reason: str | None = None
) -> Transition:
    """Either side ends a running grant early: a cluster operator, Mission Control staff, or the
    engineer holding it."""
    grant = _require_running(request, now, "revoke")
    if by.kind is ActorKind.SYSTEM:
        raise InvalidTransition("a revocation must name the person who revokes")
    if by.kind is ActorKind.ENGINEER and by.name != grant.engineer:
        raise InvalidTransition(f"only {grant.engineer} or an operator can revoke this grant")
    note = reason.strip() if reason and reason.strip() else None
    new = _close(request, grant, RequestState.REVOKED, now, by, note)
    notice = f"access for request {request.id} revoked by {by.name}" + (f": {note}" if note else "")
    return Transition(new, _event(new, by, "support.revoked", now, note=note), notice)


def end(request: AccessRequest, by: Actor, now: datetime) -> Transition:
    """The engineer closes their own grant before the window elapses."""
    grant = _require_running(request, now, "end")
    if by.kind is not ActorKind.ENGINEER or by.name != grant.engineer:
        raise InvalidTransition(
            f"only {grant.engineer} can end this grant; operators revoke instead"
        )
    new = _close(request, grant, RequestState.ENDED, now, by, "closed by the engineer")
    notice = f"{by.name} closed access for request {request.id}"
    return Transition(
        new, _event(new, by, "support.ended", now, note="closed by the engineer"), notice
    )


def expire_due(request: AccessRequest, now: datetime) -> Transition | None:
    """Expire a pending request past its deadline, or end a grant whose window has elapsed.

    Returns None when nothing is due. The recorded closing time is the deadline itself, not
    `now`, so a late sweep does not lengthen history.
    """
    if request.state is RequestState.PENDING and request.pending_until is not None:
        if now < request.pending_until:
            return None
        new = replace(
            request,
            state=RequestState.EXPIRED,
            decided_at=request.pending_until,
            decided_by=SYSTEM,
            note="no decision in time",
        )
        notice = f"request {request.id} expired without a decision"
        return Transition(new, _event(new, SYSTEM, "support.expired", now), notice)
    if request.state is RequestState.APPROVED and request.grant is not None:
        if now < request.grant.ends_at:
            return None
        grant = request.grant
        new = _close(request, grant, RequestState.ENDED, grant.ends_at, SYSTEM, "window elapsed")
        notice = f"access for request {request.id} ended: window elapsed"
        return Transition(
            new, _event(new, SYSTEM, "support.ended", now, note="window elapsed"), notice
        )
    return None


_REQUEST_ADAPTER: TypeAdapter[AccessRequest] = TypeAdapter(AccessRequest)


def request_to_json(request: AccessRequest) -> dict[str, Any]:
    """Storage form of a request (JSON-ready); `request_from_json` reads it back exactly."""
    dumped: dict[str, Any] = _REQUEST_ADAPTER.dump_python(request, mode="json")
    return dumped


def request_from_json(data: Any) -> AccessRequest:
    return _REQUEST_ADAPTER.validate_python(data)


def request_event(
    request: AccessRequest, actor: Actor, action: str, now: datetime, **extra: Any
) -> AuditEvent:
    """The audit event describing `request` (terms, state, grant) as every transition records
    it; for stores that apply a transition decided elsewhere (Mission Control mirrors the
    cluster's decisions)."""
    return _event(request, actor, action, now, **extra)
