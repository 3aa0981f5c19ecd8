"""Which cluster operators Mission Control believes approved: the operator identity providers
the vendor trusts, per cluster, and the check of an approval's embedded ID token against them.

Why Mission Control checks at all (the cluster's Ed25519 signature already verifies): whoever
holds the cluster's credential can sign any approval, naming anyone. With a provider trusted
here for the cluster, the approval must also carry an ID token that the CUSTOMER'S provider
signed, for a person in the approver groups configured HERE, so a credential holder alone
cannot open a grant. The keys come from the provider (its discovery document's https
`jwks_uri`, certificate verified against `ca_file` or the system's store), never from the
cluster: keys the cluster sent would prove nothing the cluster's signature does not.

Rules, for an approval of cluster C whose Ed25519 signature verified:
- a provider lists C in `clusters`: every approval of C must embed an ID token of that
  provider (`issuer`, `client_id`), valid at the approval's signed time, of a person in one of
  `approver_groups`, and the approval must name that person. Anything else is refused,
  including approvals the cluster's policy made on its own (mode allowed, pre-approved
  engineers), which name no person: a cluster held to verified approvers needs one for every
  grant;
- no provider lists C: the cluster's signature decides, as before verified approvers existed;
  an embedded token is recorded as "not verifiable by the vendor" (nothing is checked against
  keys the cluster could have chosen).
A denial or revocation by an operator follows the same rules, with the ID token the decision
message embeds (`approver_identity`) checked at the decision's time (`check_decider`).
A provider that does not answer decides nothing (`ApproverUnverifiable`, 503: the cluster's
outbox sends the approval again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contract.identity import ProviderKeys
from contract.support.approval import ApproverIdentity, SignedApproval, verify_decider_identity
from contract.support.errors import ApprovalRejected
from mission_control.service.accounts.oidc_documents import OidcRefused, provider_keys
from mission_control.service.refusals import ApprovalInvalid, ApproverUnverifiable

KEYS_TTL_S = 300.0


class OperatorProvider(BaseModel):
    """One entry of `MISSION_CONTROL_OPERATOR_PROVIDERS` (a JSON list): the customer's OpenID
    Connect provider whose signed ID tokens prove who approved for the listed clusters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str = Field(pattern=r"^https://[^\s/]+(/\S*)?$", description="https://... only")
    client_id: str = Field(min_length=1, description="The client `managed login` uses there.")
    approver_groups: tuple[str, ...] = Field(min_length=1, description="Who may approve.")
    clusters: tuple[str, ...] = Field(min_length=1, description="Mission Control cluster ids.")
    groups_claim: str = "groups"
    ca_file: Path | None = Field(default=None, description="CA of the provider's certificate.")
    timeout_s: float = Field(default=10, gt=0, le=60)


def check_distinct(providers: Iterable[OperatorProvider]) -> None:
    """A cluster is held to one provider: `ValueError` naming a cluster listed twice."""
    seen: set[str] = set()
    for provider in providers:
        twice = seen.intersection(provider.clusters)
        if twice:
            raise ValueError(f"operator_providers: cluster {sorted(twice)[0]} is listed twice")
        seen.update(provider.clusters)


class TrustedApprovers:
    """The providers trusted per cluster and their keys (cached for `keys_ttl_s`)."""

    def __init__(
        self, providers: Iterable[OperatorProvider] = (), *, keys_ttl_s: float = KEYS_TTL_S
    ) -> None:
        listed = tuple(providers)
        check_distinct(listed)
        self._by_cluster = {c: p for p in listed for c in p.clusters}
        self._by_issuer = {p.issuer: p for p in listed}
        self._keys = ProviderKeys(self._fetch, ttl_s=keys_ttl_s)

    def _fetch(self, issuer: str) -> Mapping[str, Any]:
        provider = self._by_issuer[issuer]
        try:
            return provider_keys(issuer, provider.ca_file, provider.timeout_s)
        except OidcRefused as e:
            raise ApproverUnverifiable(f"the approver's provider {issuer}: {e}") from None

    def check(self, cluster_id: str, approval: SignedApproval) -> str | None:
        """What Mission Control knows of the approver (for the audit log), or `ApprovalInvalid`
        (one line) when the rules refuse it; blocking (it may fetch the provider's keys)."""
        grant = approval.grant
        return self.check_decider(
            cluster_id,
            approval.identity,
            grant.approved_by.name,
            grant.starts_at,
            label=f"approval {grant.grant_id}",
        )

    def check_decider(
        self,
        cluster_id: str,
        identity: ApproverIdentity | None,
        named: str,
        at: datetime,
        *,
        label: str,
    ) -> str | None:
        """What Mission Control knows of the operator named `named` who decided at `at` (an
        approval's signed start, or a denial's or revocation's time), by the ID token
        `identity` they embed; `ApprovalInvalid` (one line) when the rules refuse it. The same
        rules for every decision an operator makes; blocking (it may fetch keys)."""
        provider = self._by_cluster.get(cluster_id)
        if provider is None:
            if identity is None:
                return None
            return (
                f"not verifiable by the vendor: no trusted provider for cluster {cluster_id} "
                f"(the decision names {identity.issuer})"
            )
        try:
            person = verify_decider_identity(
                identity,
                named,
                at,
                self._keys,
                label=label,
                issuer=provider.issuer,
                client_id=provider.client_id,
                approver_groups=frozenset(provider.approver_groups),
                groups_claim=provider.groups_claim,
            )
        except ApprovalRejected as e:
            raise ApprovalInvalid(str(e)) from None
        return f"{person.label} verified by Mission Control at {provider.issuer}"
