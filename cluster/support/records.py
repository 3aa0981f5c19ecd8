"""Support records as stored in ZooKeeper and the messages that report them (pure helpers of
`cluster.support.store`): ids that are safe znode names, the stored request record and the
`support/decision` body.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from cluster.errors import ClusterError
from contract.audit.canonical import format_time
from contract.limits import printable
from contract.messages import SupportDecisionBody
from contract.routes import (
    SUPPORT_COMMAND_RESULT,
    SUPPORT_DECISION,
    SUPPORT_POLICY,
    SUPPORT_PUBLIC_KEY,
)
from contract.support.approval import ApproverIdentity, SignedApproval
from contract.support.errors import SupportError
from contract.support.requests import (
    AccessRequest,
    RequestState,
    request_from_json,
    request_to_json,
)

DECISION_KIND = SUPPORT_DECISION.kind
RESULT_KIND = SUPPORT_COMMAND_RESULT.kind
PUBLIC_KEY_KIND = SUPPORT_PUBLIC_KEY.kind
POLICY_KIND = SUPPORT_POLICY.kind
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class SupportStoreError(ClusterError):
    """A support record is missing, unreadable or cannot be written."""


def check_id(what: str, value: str) -> str:
    """Request and command ids become znode names: letters, digits, `.`, `_`, `:`, `-` only."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise SupportStoreError(f"invalid {what} id {value!r}: use letters, digits, . _ : -")
    return value


def dump_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class StoredRequest:
    """A request record as stored, with the znode version a change must compare against."""

    request: AccessRequest
    approval: SignedApproval | None
    engineer_role: str | None
    version: int

    def to_bytes(self) -> bytes:
        return dump_json(
            {
                "request": request_to_json(self.request),
                "approval": self.approval.to_json() if self.approval else None,
                "engineer_role": self.engineer_role,
            }
        )

    @classmethod
    def from_bytes(cls, request_id: str, data: bytes, version: int) -> StoredRequest:
        try:
            doc = json.loads(data)
            approval = doc.get("approval")
            return cls(
                request_from_json(doc["request"]),
                SignedApproval.from_json(approval) if approval else None,
                doc.get("engineer_role"),
                version,
            )
        except (ValueError, KeyError, TypeError, AttributeError, SupportError) as exc:
            raise SupportStoreError(f"support request {request_id} is unreadable: {exc}") from None


def decision_body(
    request: AccessRequest,
    approval: SignedApproval | None,
    identity: ApproverIdentity | None = None,
) -> SupportDecisionBody:
    """The `support/decision` message body for a request's current state; a denial or
    revocation carries the ID token of the verified person who decided (`identity`), when
    given (an approval carries it signed, inside `approval`)."""
    grant = request.grant
    if request.state in (RequestState.REVOKED, RequestState.ENDED) and grant is not None:
        by = grant.closed_by.name if grant.closed_by else "system"
        reason = grant.close_reason
        at = grant.closed_at or request.decided_at
    else:
        by = request.decided_by.name if request.decided_by else "system"
        reason = request.note
        at = request.decided_at
    signed = approval if approval and request.state is RequestState.APPROVED else None
    closing = request.state in (RequestState.DENIED, RequestState.REVOKED)
    decider = identity if closing and identity is not None else None
    return SupportDecisionBody.model_validate(
        {
            "request_id": request.id,
            "state": request.state.value,
            "by": printable(by, 256),
            "reason": printable(reason, 4000) if reason is not None else None,
            "at": format_time(at) if at else None,
            "approval": signed.to_json() if signed else None,
            "grant": (
                {
                    "role": grant.role.value,
                    "starts_at": format_time(grant.starts_at),
                    "ends_at": format_time(grant.ends_at),
                }
                if grant is not None
                else None
            ),
            "approver_identity": decider.to_json() if decider else None,
        }
    )
