"""Signed approvals: a genuine approval is honoured once; forged, altered, replayed ones never."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.audit.events import Actor, ActorKind
from contract.support.approval import (
    MemoryReplayGuard,
    SignedApproval,
    sign_approval,
    verify_approval,
)
from contract.support.errors import ApprovalRejected
from contract.support.policy import AccessRole, SupportPolicy
from contract.support.requests import AccessRequest, approve, decide_on_arrival

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
APPROVED_AT = T0 + timedelta(hours=1)
KEY = Ed25519PrivateKey.generate()
OPERATOR = Actor("olga", ActorKind.OPERATOR)


def pending(request_id: str = "r1") -> AccessRequest:
    req = AccessRequest(
        id=request_id,
        cluster_id="c1",
        engineer="erik",
        reason="ticket 4711",
        role=AccessRole.USER,
        duration=timedelta(hours=4),
        requested_at=T0,
    )
    return decide_on_arrival(req, SupportPolicy(), T0).request


def signed(grant_id: str = "g1", role: AccessRole | None = None) -> SignedApproval:
    transition = approve(
        pending(), OPERATOR, APPROVED_AT, policy=SupportPolicy(), grant_id=grant_id, role=role
    )
    grant = transition.request.grant
    assert grant is not None
    return sign_approval(grant, KEY)


def check(approval: SignedApproval, **overrides: object) -> object:
    args: dict[str, object] = {
        "request": pending(),
        "now": APPROVED_AT + timedelta(seconds=5),
        "guard": MemoryReplayGuard(),
    }
    args.update(overrides)
    return verify_approval(approval, KEY.public_key(), **args)  # type: ignore[arg-type]


def test_genuine_approval_is_honoured() -> None:
    approval = signed()
    grant = check(approval)
    assert grant == approval.grant
    assert approval.grant.approved_by == OPERATOR


def test_wire_round_trip() -> None:
    approval = signed()
    assert SignedApproval.from_json(approval.to_json()) == approval
    with pytest.raises(ApprovalRejected, match="malformed"):
        SignedApproval.from_json({**approval.to_json(), "role": "root"})
    with pytest.raises(ApprovalRejected, match="malformed"):
        SignedApproval.from_json({"approval_id": "x"})
    backwards = {**approval.to_json(), "ends_at": "2025-03-01T12:00:00Z"}
    with pytest.raises(ApprovalRejected, match="malformed"):
        SignedApproval.from_json(backwards)


def test_closed_grant_is_signed_open_and_closed_carrier_is_refused() -> None:
    approval = signed()
    closed = replace(approval.grant, closed_at=APPROVED_AT, close_reason="revoked")
    assert sign_approval(closed, KEY) == approval
    with pytest.raises(ApprovalRejected, match="closed grant"):
        check(replace(approval, grant=closed))


@pytest.mark.parametrize(
    "change",
    [
        {"role": AccessRole.ADMIN},
        {"ends_at": APPROVED_AT + timedelta(hours=3, minutes=59)},
        {"starts_at": APPROVED_AT + timedelta(minutes=1)},
        {"engineer": "mallory"},
        {"request_id": "r2"},
        {"cluster_id": "c2"},
        {"grant_id": "g2"},
        {"approved_by": Actor("ollie", ActorKind.OPERATOR)},
    ],
)
def test_any_altered_field_breaks_the_signature(change: dict[str, object]) -> None:
    with pytest.raises(ApprovalRejected, match="signature does not verify"):
        approval = signed()
        check(replace(approval, grant=replace(approval.grant, **change)))  # type: ignore[arg-type]


def test_approval_signed_by_another_key_is_refused() -> None:
    grant = signed().grant
    forged = sign_approval(grant, Ed25519PrivateKey.generate())
    with pytest.raises(ApprovalRejected, match="forged"):
        check(forged)


def test_replayed_approval_is_refused() -> None:
    guard = MemoryReplayGuard()
    approval = signed()
    check(approval, guard=guard)
    with pytest.raises(ApprovalRejected, match="already used"):
        check(approval, guard=guard)


def test_approval_for_another_request_is_refused() -> None:
    with pytest.raises(ApprovalRejected, match="another request"):
        check(signed(), request=pending("r2"))


def test_approval_wider_than_request_is_refused() -> None:
    # The cluster key signs it, but the request asked for less (defence against a buggy or
    # compromised approver tool): Mission Control still refuses.
    req = replace(pending(), role=AccessRole.VIEWER, duration=timedelta(hours=1))
    with pytest.raises(ApprovalRejected, match="grants user but viewer"):
        check(signed(), request=req)
    with pytest.raises(ApprovalRejected, match="longer than the requested"):
        check(signed(role=AccessRole.VIEWER), request=req)


def test_stale_or_early_approvals_are_refused() -> None:
    with pytest.raises(ApprovalRejected, match="window ended"):
        check(signed(), now=APPROVED_AT + timedelta(hours=4))
    with pytest.raises(ApprovalRejected, match="in the future"):
        check(signed(), now=APPROVED_AT - timedelta(minutes=6))
    early_grant = replace(
        signed().grant, starts_at=T0 - timedelta(minutes=6), ends_at=T0 + timedelta(hours=1)
    )
    early = sign_approval(early_grant, KEY)
    with pytest.raises(ApprovalRejected, match="before the request"):
        check(early)


def test_a_cluster_clock_a_little_slow_is_within_the_skew_allowance() -> None:
    # Mission Control stamped the request; the cluster's clock is 30 s behind when it approves.
    slow = replace(
        signed().grant, starts_at=T0 - timedelta(seconds=30), ends_at=T0 + timedelta(hours=1)
    )
    grant = check(sign_approval(slow, KEY), now=T0 + timedelta(seconds=5))
    assert grant.starts_at == T0 - timedelta(seconds=30)


def test_replay_guard_forgets_only_ended_windows() -> None:
    guard = MemoryReplayGuard()
    assert guard.claim("a", T0 + timedelta(hours=1))
    assert guard.claim("b", T0 + timedelta(hours=3))
    assert not guard.claim("a", T0 + timedelta(hours=1))
    assert guard.prune(T0 + timedelta(hours=2)) == 1
    assert len(guard) == 1
    assert not guard.claim("b", T0 + timedelta(hours=3))


def test_sensitive_data_only_when_the_approval_says_so_and_it_is_signed() -> None:
    plain = signed()
    assert plain.grant.sensitive_data is False
    assert "sensitive_data" not in plain.to_json()  # the same bytes as before the flag existed
    transition = approve(
        pending(), OPERATOR, APPROVED_AT, policy=SupportPolicy(), grant_id="g2",
        sensitive_data=True,
    )  # fmt: skip
    grant = transition.request.grant
    assert grant is not None and grant.sensitive_data
    assert transition.event.detail["grant"]["sensitive_data"] is True  # type: ignore[index]
    with_data = sign_approval(grant, KEY)
    wire = with_data.to_json()
    assert wire["sensitive_data"] is True
    assert SignedApproval.from_json(wire) == with_data
    assert check(with_data) == grant
    # Adding the flag to an approval signed without it (or dropping it) breaks the signature.
    forged = SignedApproval.from_json({**plain.to_json(), "sensitive_data": True})
    with pytest.raises(ApprovalRejected):
        check(forged)
    stripped = {k: v for k, v in wire.items() if k != "sensitive_data"}
    with pytest.raises(ApprovalRejected):
        check(SignedApproval.from_json(stripped))
    with pytest.raises(ApprovalRejected, match="malformed"):
        SignedApproval.from_json({**wire, "sensitive_data": "yes"})
