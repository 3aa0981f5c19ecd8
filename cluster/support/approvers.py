"""The leader's check of who approved: before it acts on an operator's approval, the leader
verifies the ID token the approval embeds, with the provider's own keys.

Why here too (the operator's `managed support approve` already checked the login): the approval
is written to ZooKeeper by whoever holds the cluster's credential, and that credential also
signs. Checking the embedded token again at the leader means a credential holder cannot open a
grant in the name of a person who did not approve, nor approve as someone outside the
approver groups, nor with a token that had expired when the approval was signed.

Rules (with `approver_groups` set in the support policy; without it there is nothing to check):
- an approval by an operator must embed an ID token of the policy's `approver_issuer` and
  `approver_client_id`, valid at the approval's own signed time, of a person in one of the
  approver groups, and the approval must name that person (`verify_approver_identity`);
- approvals the cluster's policy made on its own (mode allowed, pre-approved engineer) name
  no person and are not checked here;
- a grant that was running before approver groups were set has no embedded token: it is
  refused like any other, so setting approver groups ends grants no verified person approved.

The provider's keys come from its discovery document's `jwks_uri` over https (verified against
`ca_file`, else the system's store) and are cached for `KEYS_TTL_S`. A provider that does not
answer refuses nothing: `ApproversUnreachable`, and the caller holds its commands until the
check succeeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cluster.support.records import StoredRequest
from contract.audit.events import ActorKind
from contract.identity import ProviderKeys
from contract.support.approval import verify_approver_identity
from contract.support.errors import ApprovalRejected
from contract.support.policy import SupportPolicy
from contract.support.requests import RequestState

KEYS_TTL_S = 300.0


class ApproversUnreachable(Exception):
    """The approver's provider did not answer; nothing is decided about the approval yet."""


class ApproverCheck:
    """Verifies approvals once per leader term (a verified approval id is remembered)."""

    def __init__(self, ca_file: Path | None = None, *, keys_ttl_s: float = KEYS_TTL_S) -> None:
        self._ca_file = ca_file
        self._keys = ProviderKeys(self._fetch, ttl_s=keys_ttl_s)
        self._verified: set[str] = set()

    def _fetch(self, issuer: str) -> Mapping[str, Any]:
        # Imported here: authlib and requests are loaded only by a leader that checks approvals.
        from cluster.operator_identity import LoginFailed, fetch_keys

        try:
            return fetch_keys(issuer, self._ca_file)
        except LoginFailed as e:
            raise ApproversUnreachable(str(e)) from None

    def refusal(self, policy: SupportPolicy, stored: StoredRequest) -> str | None:
        """Why the leader must not act on `stored`'s approval; None when it may (or there is
        no operator approval to check). `ApproversUnreachable` when it cannot tell yet."""
        request, approval = stored.request, stored.approval
        grant = request.grant
        if not policy.approver_groups or request.state is not RequestState.APPROVED:
            return None
        if grant is None or grant.approved_by.kind is not ActorKind.OPERATOR:
            return None
        if approval is None:
            return f"request {request.id} is approved but carries no signed approval"
        if approval.approval_id in self._verified:
            return None
        try:
            verify_approver_identity(
                approval,
                self._keys,
                issuer=policy.approver_issuer,
                client_id=policy.approver_client_id,
                approver_groups=policy.approver_groups,
            )
        except ApprovalRejected as e:
            return f"the leader refused the approval: {e}"
        self._verified.add(approval.approval_id)
        return None

    def forget_all_but(self, approval_ids: set[str]) -> None:
        """Keep memory bounded: only approvals of grants still open are remembered."""
        self._verified &= approval_ids
