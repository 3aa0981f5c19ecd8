"""The request/grant state machine: every transition, every refusal, expiry on an injected clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from contract.audit.events import SYSTEM, Actor, ActorKind
from contract.support.errors import InvalidTransition, RequestError
from contract.support.policy import AccessRole, SupportMode, SupportPolicy
from contract.support.requests import (
    TERMINAL_STATES,
    AccessRequest,
    RequestState,
    Transition,
    approve,
    decide_on_arrival,
    deny,
    end,
    expire_due,
    request_from_json,
    request_to_json,
    revoke,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
OPERATOR = Actor("olga", ActorKind.OPERATOR)
ENGINEER = Actor("erik", ActorKind.ENGINEER, via="mission-control")
STAFF = Actor("sam", ActorKind.STAFF)
APPROVAL = SupportPolicy()


def request(**changes: object) -> AccessRequest:
    fields: dict[str, object] = {
        "id": "r1",
        "cluster_id": "c1",
        "engineer": "erik",
        "reason": "customer ticket 4711: slow dashboards",
        "role": AccessRole.USER,
        "duration": timedelta(hours=4),
        "requested_at": T0,
    }
    fields.update(changes)
    return AccessRequest(**fields)  # type: ignore[arg-type]


def pending(at: datetime = T0, policy: SupportPolicy = APPROVAL) -> AccessRequest:
    return decide_on_arrival(request(), policy, at).request


def approved(at: datetime = T0 + timedelta(hours=1)) -> AccessRequest:
    return approve(pending(), OPERATOR, at, policy=APPROVAL, grant_id="g1").request


# --- arrival -------------------------------------------------------------------------------


def test_approval_mode_leaves_request_pending_with_deadline() -> None:
    t = decide_on_arrival(request(), APPROVAL, T0)
    assert t.request.state is RequestState.PENDING
    assert t.request.pending_until == T0 + timedelta(days=4)
    assert t.request.grant is None
    assert t.event.action == "support.requested"
    assert t.event.actor == Actor("erik", ActorKind.ENGINEER)
    assert t.event.detail["reason"] == "customer ticket 4711: slow dashboards"
    assert "waits for a cluster operator" in t.notice


def test_off_mode_refuses_at_once_and_logs() -> None:
    t = decide_on_arrival(request(), SupportPolicy(mode=SupportMode.OFF), T0)
    assert t.request.state is RequestState.DENIED
    assert t.request.decided_at == T0
    assert t.event.action == "support.refused"
    assert t.event.detail["note"] == "remote support is off on this cluster"
    assert t.request.decided_by is not None and t.request.decided_by.kind is ActorKind.SYSTEM


def test_role_not_allowed_is_refused_at_once() -> None:
    policy = SupportPolicy(allowed_roles=frozenset({AccessRole.VIEWER}))
    t = decide_on_arrival(request(role=AccessRole.ADMIN), policy, T0)
    assert t.request.state is RequestState.DENIED
    assert "role admin is not allowed here (allowed: viewer)" in t.notice


def test_allowed_mode_approves_at_once_with_window_from_now() -> None:
    policy = SupportPolicy(mode=SupportMode.ALLOWED, max_grant=timedelta(hours=2))
    t = decide_on_arrival(request(), policy, T0, grant_id="g9")
    assert t.request.state is RequestState.APPROVED
    grant = t.request.grant
    assert grant is not None
    assert (grant.grant_id, grant.starts_at, grant.ends_at) == ("g9", T0, T0 + timedelta(hours=2))
    assert t.event.action == "support.auto_approved"
    assert t.event.detail["capped_to"] == "2h"
    assert grant.approved_by.kind is ActorKind.SYSTEM


def test_preapproved_engineer_is_approved_in_approval_mode() -> None:
    policy = SupportPolicy(preapproved=frozenset({"erik"}))
    t = decide_on_arrival(request(), policy, T0)
    assert t.request.state is RequestState.APPROVED
    assert t.event.detail["rule"] == "pre-approved engineer"
    assert t.request.grant is not None and len(t.request.grant.grant_id) == 32
    other = decide_on_arrival(request(engineer="zoe"), policy, T0)
    assert other.request.state is RequestState.PENDING


def test_arrival_twice_is_refused() -> None:
    with pytest.raises(InvalidTransition, match="already received"):
        decide_on_arrival(pending(), APPROVAL, T0)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"reason": "  "}, "needs a reason"),
        ({"reason": "x" * 2001}, "too long"),
        ({"engineer": ""}, "needs a engineer"),
        ({"id": ""}, "needs a id"),
        ({"role": "root"}, "unknown role 'root'"),
        ({"duration": timedelta(0)}, "longer than zero"),
        ({"requested_at": datetime(2025, 1, 1)}, "timezone"),
    ],
)
def test_invalid_requests_cannot_exist(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(RequestError, match=fragment):
        request(**changes)


# --- approve / deny ------------------------------------------------------------------------


def test_window_starts_at_approval_not_at_request() -> None:
    later = T0 + timedelta(days=1)
    t = approve(pending(), OPERATOR, later, policy=APPROVAL, grant_id="g1")
    grant = t.request.grant
    assert grant is not None
    assert grant.starts_at == later and grant.ends_at == later + timedelta(hours=4)
    assert grant.approved_by == OPERATOR
    assert t.event.actor == OPERATOR and t.event.action == "support.approved"
    assert t.event.detail["grant"]["approved_by"]["name"] == "olga"  # type: ignore[index,call-overload]
    assert "approved by olga" in t.notice


def test_approver_may_narrow_role_and_duration() -> None:
    t = approve(
        pending(),
        OPERATOR,
        T0,
        policy=APPROVAL,
        role=AccessRole.VIEWER,
        duration=timedelta(hours=1),
    )
    grant = t.request.grant
    assert grant is not None
    assert grant.role is AccessRole.VIEWER and grant.ends_at - grant.starts_at == timedelta(hours=1)


def test_approval_is_capped_by_policy() -> None:
    policy = SupportPolicy(max_grant=timedelta(hours=1))
    t = approve(pending(), OPERATOR, T0, policy=policy)
    assert t.request.grant is not None
    assert t.request.grant.ends_at == T0 + timedelta(hours=1)
    assert t.event.detail["capped_to"] == "1h"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"role": AccessRole.ADMIN}, "cannot grant admin: the engineer asked for user"),
        ({"duration": timedelta(hours=5)}, "cannot approve 5h: the engineer asked for 4h"),
        ({"duration": timedelta(0)}, "longer than zero"),
    ],
)
def test_approver_cannot_widen(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidTransition, match=fragment):
        approve(pending(), OPERATOR, T0, policy=APPROVAL, **kwargs)  # type: ignore[arg-type]


def test_only_operators_approve_or_deny() -> None:
    for actor in (ENGINEER, STAFF, SYSTEM):
        with pytest.raises(InvalidTransition, match="only a cluster operator"):
            approve(pending(), actor, T0, policy=APPROVAL)
        with pytest.raises(InvalidTransition, match="only a cluster operator"):
            deny(pending(), actor, T0)


def test_policy_changes_after_request_are_respected() -> None:
    with pytest.raises(InvalidTransition, match="off"):
        approve(pending(), OPERATOR, T0, policy=SupportPolicy(mode=SupportMode.OFF))
    viewers_only = SupportPolicy(allowed_roles=frozenset({AccessRole.VIEWER}))
    with pytest.raises(InvalidTransition, match="not allowed"):
        approve(pending(), OPERATOR, T0, policy=viewers_only)
    narrowed = approve(pending(), OPERATOR, T0, policy=viewers_only, role=AccessRole.VIEWER)
    assert narrowed.request.state is RequestState.APPROVED


def test_deny_records_reason_for_the_engineer() -> None:
    t = deny(pending(), OPERATOR, T0 + timedelta(minutes=5), reason=" maintenance window ")
    assert t.request.state is RequestState.DENIED
    assert t.request.note == "maintenance window"
    assert t.notice == "request r1 denied by olga: maintenance window"
    assert t.event.action == "support.denied" and t.event.actor == OPERATOR


def test_decisions_after_the_pending_deadline_are_refused() -> None:
    deadline = T0 + timedelta(days=4)
    with pytest.raises(InvalidTransition, match="expired"):
        approve(pending(), OPERATOR, deadline, policy=APPROVAL)
    with pytest.raises(InvalidTransition, match="expired"):
        deny(pending(), OPERATOR, deadline)
    just_before = deadline - timedelta(microseconds=1)
    assert approve(pending(), OPERATOR, just_before, policy=APPROVAL).request.grant is not None


def test_request_never_received_cannot_be_decided() -> None:
    with pytest.raises(InvalidTransition, match="never received"):
        approve(request(), OPERATOR, T0, policy=APPROVAL)


# --- revoke / end / expiry -----------------------------------------------------------------


@pytest.mark.parametrize("by", [OPERATOR, STAFF, Actor("erik", ActorKind.ENGINEER)])
def test_either_side_can_revoke(by: Actor) -> None:
    now = T0 + timedelta(hours=2)
    t = revoke(approved(), by, now, reason="done")
    assert t.request.state is RequestState.REVOKED
    grant = t.request.grant
    assert grant is not None
    assert (grant.closed_at, grant.closed_by, grant.close_reason) == (now, by, "done")
    assert not grant.is_open(now)
    assert t.event.action == "support.revoked" and t.event.actor == by


def test_revoke_refusals() -> None:
    with pytest.raises(InvalidTransition, match="only erik or an operator"):
        revoke(approved(), Actor("zoe", ActorKind.ENGINEER), T0 + timedelta(hours=2))
    with pytest.raises(InvalidTransition, match="name the person"):
        revoke(approved(), SYSTEM, T0 + timedelta(hours=2))
    with pytest.raises(InvalidTransition, match="already ended"):
        revoke(approved(), OPERATOR, T0 + timedelta(hours=5))
    with pytest.raises(InvalidTransition, match="it is pending, not approved"):
        revoke(pending(), OPERATOR, T0)


def test_engineer_ends_own_grant_early() -> None:
    now = T0 + timedelta(hours=2)
    t = end(approved(), Actor("erik", ActorKind.ENGINEER), now)
    assert t.request.state is RequestState.ENDED
    assert t.request.grant is not None and t.request.grant.closed_at == now
    with pytest.raises(InvalidTransition, match="operators revoke instead"):
        end(approved(), OPERATOR, now)


def test_pending_request_expires_on_the_clock() -> None:
    req = pending()
    assert expire_due(req, T0 + timedelta(days=4) - timedelta(seconds=1)) is None
    late = T0 + timedelta(days=9)
    t = expire_due(req, late)
    assert t is not None
    assert t.request.state is RequestState.EXPIRED
    assert t.request.decided_at == T0 + timedelta(days=4)  # the deadline, not the sweep time
    assert t.event.action == "support.expired" and t.event.at == late


def test_grant_ends_when_window_elapses() -> None:
    req = approved()  # window 13:00 - 17:00
    assert expire_due(req, T0 + timedelta(hours=4, minutes=59)) is None
    t = expire_due(req, T0 + timedelta(hours=6))
    assert t is not None and t.request.state is RequestState.ENDED
    assert t.request.grant is not None
    assert t.request.grant.closed_at == T0 + timedelta(hours=5)
    assert t.request.grant.close_reason == "window elapsed"


def test_nothing_due_for_terminal_or_new_requests() -> None:
    far = T0 + timedelta(days=100)
    assert expire_due(request(), far) is None
    denied = deny(pending(), OPERATOR, T0).request
    assert expire_due(denied, far) is None


def _all_steps(req: AccessRequest, now: datetime) -> list[Transition | None]:
    results: list[Transition | None] = []
    steps: tuple[Callable[[], Transition], ...] = (
        lambda: approve(req, OPERATOR, now, policy=APPROVAL),
        lambda: deny(req, OPERATOR, now),
        lambda: revoke(req, OPERATOR, now),
        lambda: end(req, Actor("erik", ActorKind.ENGINEER), now),
    )
    for step in steps:
        try:
            results.append(step())
        except InvalidTransition:
            results.append(None)
    results.append(expire_due(req, now + timedelta(days=30)))
    return results


def test_terminal_states_accept_no_transition() -> None:
    now = T0 + timedelta(hours=2)
    terminals = [
        deny(pending(), OPERATOR, T0).request,
        expire_due(pending(), T0 + timedelta(days=5)).request,  # type: ignore[union-attr]
        revoke(approved(), OPERATOR, now).request,
        end(approved(), Actor("erik", ActorKind.ENGINEER), now).request,
    ]
    assert {r.state for r in terminals} == TERMINAL_STATES
    for req in terminals:
        assert _all_steps(req, now) == [None] * 5, req.state


def test_history_is_kept_after_the_grant_ends() -> None:
    ended = revoke(approved(), OPERATOR, T0 + timedelta(hours=2), reason="fixed").request
    assert ended.reason and ended.decided_by == OPERATOR and ended.grant is not None
    assert ended.grant.approved_by == OPERATOR and ended.grant.close_reason == "fixed"


def test_storage_round_trip() -> None:
    for req in (
        request(),
        pending(),
        approved(),
        revoke(approved(), STAFF, T0 + timedelta(hours=2)).request,
    ):
        assert request_from_json(request_to_json(req)) == req
