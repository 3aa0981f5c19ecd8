"""Signed approvals: how Mission Control proves which cluster operator allowed what.

The cluster signs every grant (operator-approved or auto-approved by policy) with its Ed25519
key. The signed bytes are a domain-separation prefix and the canonical JSON of: approval id (a
unique random id, the grant id), request id, cluster id, engineer, role, window start and end,
and the approver (name and kind), `sensitive_data: true` when the approval grants sensitive
monitoring data (absent otherwise), and `approver_identity` when the cluster requires verified
approvers (absent otherwise): the approver's OpenID Connect ID token with the issuer and client
it was obtained from. Changing any of them breaks the signature; approvals without the optional
fields sign the same bytes as before they existed.

The embedded ID token lets the leader and Mission Control each check, with the provider's own
keys, that the person the approval names really approved (`verify_approver_identity`), so a
holder of the cluster's credential (who can sign anything) cannot name a person who did not.

Replay guard: Mission Control remembers every approval id it has honoured (`ReplayGuard.claim`,
which must be atomic: an INSERT into a table whose primary key is the id). An id can be
forgotten once its window has ended, because `verify_approval` refuses ended windows anyway, so
the memory needed is bounded by the grants that are running.

`verify_approval` refuses (with `ApprovalRejected`, one line) an approval that:
is not signed by this cluster's key; names another cluster, request or engineer; grants a wider
role or a longer window than requested; starts before the request was made or in the future
(either beyond `CLOCK_SKEW`, since the two times come from different clocks); has already
ended; or was already used.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contract.audit.canonical import (
    CanonicalFormError,
    JsonValue,
    canonical_json,
    format_time,
    parse_time,
)
from contract.audit.events import Actor
from contract.identity import IdentityRefused, ProviderKeys, VerifiedPerson, verify_approver
from contract.support.errors import ApprovalRejected
from contract.support.policy import AccessRole
from contract.support.requests import AccessGrant, AccessRequest

_DOMAIN = b"managed-support-approval-v1\n"
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class ApproverIdentity:
    """The approver's ID token as their provider issued it, and where it is to be checked."""

    issuer: str
    client_id: str
    id_token: str

    def to_json(self) -> dict[str, JsonValue]:
        return {"issuer": self.issuer, "client_id": self.client_id, "id_token": self.id_token}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ApproverIdentity:
        fields = (data["issuer"], data["client_id"], data["id_token"])
        if not all(isinstance(f, str) and f for f in fields):
            raise ValueError("approver_identity needs issuer, client_id and id_token")
        return cls(*fields)


def _signed_bytes(grant: AccessGrant, identity: ApproverIdentity | None) -> bytes:
    fields: dict[str, JsonValue] = {
        "approval_id": grant.grant_id,
        "request_id": grant.request_id,
        "cluster_id": grant.cluster_id,
        "engineer": grant.engineer,
        "role": grant.role.value,
        "starts_at": format_time(grant.starts_at),
        "ends_at": format_time(grant.ends_at),
        "approver": grant.approved_by.to_json(),
    }
    if grant.sensitive_data:  # only then: approvals without it sign the same bytes as before
        fields["sensitive_data"] = True
    if identity is not None:  # likewise: only on clusters that require verified approvers
        fields["approver_identity"] = identity.to_json()
    return _DOMAIN + canonical_json(fields)


@dataclass(frozen=True)
class SignedApproval:
    """A grant as the cluster signed it; travels to Mission Control as JSON.

    Only the opening of the grant is signed: `grant.closed_*` must be empty.
    """

    grant: AccessGrant
    signature: bytes
    identity: ApproverIdentity | None = None

    @property
    def approval_id(self) -> str:
        return self.grant.grant_id

    def signed_bytes(self) -> bytes:
        return _signed_bytes(self.grant, self.identity)

    def to_json(self) -> dict[str, Any]:
        grant = self.grant
        return {
            "approval_id": grant.grant_id,
            "request_id": grant.request_id,
            "cluster_id": grant.cluster_id,
            "engineer": grant.engineer,
            "role": grant.role.value,
            "starts_at": format_time(grant.starts_at),
            "ends_at": format_time(grant.ends_at),
            "approver": grant.approved_by.to_json(),
            "signature": base64.b64encode(self.signature).decode("ascii"),
            **({"sensitive_data": True} if grant.sensitive_data else {}),
            **({"approver_identity": self.identity.to_json()} if self.identity else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SignedApproval:
        """Read the wire form; any malformed field is an `ApprovalRejected`."""
        try:
            grant = AccessGrant(
                grant_id=str(data["approval_id"]),
                request_id=str(data["request_id"]),
                cluster_id=str(data["cluster_id"]),
                engineer=str(data["engineer"]),
                role=AccessRole(data["role"]),
                starts_at=parse_time(str(data["starts_at"])),
                ends_at=parse_time(str(data["ends_at"])),
                approved_by=Actor.from_json(data["approver"]),
                sensitive_data=data.get("sensitive_data") or False,
            )
            signature = base64.b64decode(str(data["signature"]), validate=True)
            embedded = data.get("approver_identity")
            identity = ApproverIdentity.from_json(embedded) if embedded is not None else None
        except (KeyError, TypeError, ValueError, CanonicalFormError) as exc:
            raise ApprovalRejected(f"malformed approval: {exc}") from None
        return cls(grant, signature, identity)


def sign_approval(
    grant: AccessGrant, key: Ed25519PrivateKey, identity: ApproverIdentity | None = None
) -> SignedApproval:
    """Sign the opening of `grant` (and the approver's `identity`, when given) with the
    cluster's private key."""
    opened = replace(grant, closed_at=None, closed_by=None, close_reason=None)
    return SignedApproval(opened, key.sign(_signed_bytes(opened, identity)), identity)


def verify_decider_identity(
    identity: ApproverIdentity | None,
    named: str,
    at: datetime,
    keys: ProviderKeys,
    *,
    label: str,
    issuer: str,
    client_id: str,
    approver_groups: frozenset[str],
    groups_claim: str = "groups",
) -> VerifiedPerson:
    """The person who decided (approved, denied, revoked) at `at`, proven by the embedded ID
    token `identity` with `issuer`'s keys and in one of `approver_groups`, and named `named` by
    the decision; `ApprovalRejected` (one line, starting with `label`) otherwise. A provider
    that does not answer raises what `keys` raises, which is not a refusal."""
    if identity is None:
        raise ApprovalRejected(f"{label} embeds no verified approver, and one is required")
    if (identity.issuer, identity.client_id) != (issuer, client_id):
        raise ApprovalRejected(
            f"{label}: the approver signed in at {identity.issuer} (client "
            f"{identity.client_id}), not at the trusted {issuer} (client {client_id})"
        )
    try:
        person = keys.check(
            issuer,
            lambda jwks: verify_approver(
                identity.id_token,
                jwks,
                issuer=issuer,
                client_id=client_id,
                approver_groups=approver_groups,
                now=int(at.timestamp()),
                groups_claim=groups_claim,
            ),
        )
    except IdentityRefused as e:
        raise ApprovalRejected(f"{label}: the approver is not verified: {e}") from None
    if named != person.label:
        raise ApprovalRejected(f"{label} names {named!r}, but its ID token proves {person.label!r}")
    return person


def verify_approver_identity(
    approval: SignedApproval,
    keys: ProviderKeys,
    *,
    issuer: str,
    client_id: str,
    approver_groups: frozenset[str],
    groups_claim: str = "groups",
) -> VerifiedPerson:
    """The person who approved, proven by the approval's embedded ID token with `issuer`'s keys
    and in one of `approver_groups`, or `ApprovalRejected` (one line).

    The token is checked at the approval's own signed time (the window's start), not now: an
    approval forwarded late stays valid, and a token that had expired (or was not yet issued)
    when the approval was signed never is. The approval must name the person the token proves,
    so nobody is named who did not approve. The caller (leader, Mission Control) decides which
    issuer, client and groups it trusts; a provider that does not answer raises what `keys`
    raises, which is not a refusal.
    """
    grant = approval.grant
    return verify_decider_identity(
        approval.identity,
        grant.approved_by.name,
        grant.starts_at,
        keys,
        label=f"approval {grant.grant_id}",
        issuer=issuer,
        client_id=client_id,
        approver_groups=approver_groups,
        groups_claim=groups_claim,
    )


class ReplayGuard(Protocol):
    """Remembers honoured approval ids. `claim` is atomic: True the first time, then False."""

    def claim(self, approval_id: str, forget_after: datetime) -> bool: ...


class MemoryReplayGuard:
    """In-process `ReplayGuard` (tests, single process). Mission Control uses a unique-key table."""

    def __init__(self) -> None:
        self._used: dict[str, datetime] = {}

    def claim(self, approval_id: str, forget_after: datetime) -> bool:
        if approval_id in self._used:
            return False
        self._used[approval_id] = forget_after
        return True

    def prune(self, now: datetime) -> int:
        """Forget ids whose window has ended; returns how many were forgotten."""
        stale = [i for i, until in self._used.items() if until <= now]
        for approval_id in stale:
            del self._used[approval_id]
        return len(stale)

    def __len__(self) -> int:
        return len(self._used)


def verify_approval(
    approval: SignedApproval,
    public_key: Ed25519PublicKey,
    *,
    request: AccessRequest,
    now: datetime,
    guard: ReplayGuard,
) -> AccessGrant:
    """Check `approval` against the cluster's key and the request it answers; claim its id.

    Returns the grant Mission Control may honour, or raises `ApprovalRejected`.
    """
    grant = approval.grant
    label = f"approval {grant.grant_id}"
    try:
        public_key.verify(approval.signature, approval.signed_bytes())
    except (InvalidSignature, CanonicalFormError):
        raise ApprovalRejected(
            f"{label}: signature does not verify with the key of "
            f"cluster {request.cluster_id} (forged or altered)"
        ) from None
    if grant.closed_at is not None:
        raise ApprovalRejected(f"{label} carries a closed grant")
    mismatches = [
        name
        for name, signed, expected in (
            ("cluster", grant.cluster_id, request.cluster_id),
            ("request", grant.request_id, request.id),
            ("engineer", grant.engineer, request.engineer),
        )
        if signed != expected
    ]
    if mismatches:
        raise ApprovalRejected(f"{label} is for another {', '.join(mismatches)}")
    if not request.role.covers(grant.role):
        raise ApprovalRejected(
            f"{label} grants {grant.role.value} but {request.role.value} was requested"
        )
    if grant.ends_at - grant.starts_at > request.duration:
        raise ApprovalRejected(f"{label} is longer than the requested duration")
    # Both times come from different clocks (Mission Control stamps the request, the cluster
    # the approval): the same skew allowance as for the future applies.
    if grant.starts_at < request.requested_at - CLOCK_SKEW:
        raise ApprovalRejected(f"{label} starts before the request was made")
    if grant.starts_at > now + CLOCK_SKEW:
        raise ApprovalRejected(f"{label} starts in the future; check the cluster's clock")
    if now >= grant.ends_at:
        raise ApprovalRejected(f"{label} window ended at {format_time(grant.ends_at)}")
    if not guard.claim(grant.grant_id, grant.ends_at):
        raise ApprovalRejected(f"{label} was already used (replay refused)")
    return grant
