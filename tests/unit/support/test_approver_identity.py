"""An approval that embeds its approver's ID token (`verify_approver_identity`), with real keys:
the token is signed along with the approval, checked at the approval's own time with the
provider's keys, and must prove a person in the approver groups whom the approval names.
Keys are cached and fetched again once when a cached set refuses (the provider rotated)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from contract.audit.events import Actor, ActorKind
from contract.identity import ProviderKeys
from contract.support.approval import (
    ApproverIdentity,
    SignedApproval,
    sign_approval,
    verify_approver_identity,
)
from contract.support.errors import ApprovalRejected
from contract.support.policy import AccessRole
from contract.support.requests import AccessGrant

ISSUER, CLIENT = "https://idp.example.org", "managed-cli"
GROUPS = frozenset({"cluster-approvers"})
SIGNED_AT = datetime(2027, 1, 15, 9, 0, tzinfo=UTC)
AT = int(SIGNED_AT.timestamp())
KEY = Ed25519PrivateKey.generate()
PROVIDER = RSAKey.generate_key(2048, parameters={"kid": "k1"})
OLGA = Actor("olga (u-1001)", ActorKind.OPERATOR, via=f"oidc {ISSUER}")


def id_token(key: Any = PROVIDER, kid: str = "k1", **claims: Any) -> str:
    payload = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "u-1001",
        "preferred_username": "olga",
        "groups": ["cluster-approvers"],
        "iat": AT - 30,
        "exp": AT + 270,
        **claims,
    }
    return jwt.encode({"alg": "RS256", "kid": kid}, payload, key)


def approval(token: str, by: Actor = OLGA, issuer: str = ISSUER) -> SignedApproval:
    grant = AccessGrant(
        grant_id="g1",
        request_id="r1",
        cluster_id="c1",
        engineer="erik",
        role=AccessRole.USER,
        starts_at=SIGNED_AT,
        ends_at=SIGNED_AT + timedelta(hours=2),
        approved_by=by,
    )
    return sign_approval(grant, KEY, ApproverIdentity(issuer, CLIENT, token))


def keys_of(*sets: list[RSAKey]) -> tuple[ProviderKeys, list[str]]:
    """A cache over `sets` (one per fetch, the last repeated), and the issuers it fetched."""
    fetched: list[str] = []

    def fetch(issuer: str) -> dict[str, Any]:
        fetched.append(issuer)
        return KeySet(sets[min(len(fetched), len(sets)) - 1]).as_dict(private=False)

    return ProviderKeys(fetch, ttl_s=60), fetched


def verify(signed: SignedApproval, keys: ProviderKeys | None = None) -> Any:
    cache = keys or keys_of([PROVIDER])[0]
    return verify_approver_identity(
        signed, cache, issuer=ISSUER, client_id=CLIENT, approver_groups=GROUPS
    )


def test_the_identity_is_signed_with_the_approval_and_travels_with_it() -> None:
    signed = approval(id_token())
    wire = signed.to_json()
    assert wire["approver_identity"]["issuer"] == ISSUER
    assert SignedApproval.from_json(wire) == signed
    KEY.public_key().verify(signed.signature, signed.signed_bytes())
    # Another token under the same signature does not verify: the token is signed too.
    swapped = SignedApproval.from_json(
        {**wire, "approver_identity": {**wire["approver_identity"], "id_token": id_token(sub="x")}}
    )
    with pytest.raises(InvalidSignature):
        KEY.public_key().verify(swapped.signature, swapped.signed_bytes())
    # Without an identity, the wire form and the signed bytes are those of before.
    plain = sign_approval(signed.grant, KEY)
    assert "approver_identity" not in plain.to_json()
    assert b"approver_identity" not in plain.signed_bytes()
    with pytest.raises(ApprovalRejected, match="malformed"):
        SignedApproval.from_json({**wire, "approver_identity": {"issuer": ISSUER}})


def test_a_verified_approver_in_the_groups_is_the_person_named() -> None:
    person = verify(approval(id_token()))
    assert person.label == "olga (u-1001)" and person.subject == "u-1001"


@pytest.mark.parametrize(
    ("signed", "why"),
    [
        (approval(id_token()[:-3] + "AAA"), "signature does not verify"),
        (approval(id_token(exp=AT - 61)), "expired"),
        (approval(id_token(iat=AT + 600, exp=AT + 900)), "issued in the future"),
        (approval(id_token(groups=["staff"])), "none of the approver groups"),
        (approval(id_token(key=RSAKey.generate_key(2048))), "signature does not verify"),
        (approval(id_token(), by=Actor("root", ActorKind.OPERATOR)), "names 'root'"),
        (approval(id_token(), issuer="https://other.example.org"), "not at the trusted"),
        (sign_approval(approval(id_token()).grant, KEY), "embeds no verified approver"),
    ],
    ids=["altered", "expired", "future", "outsider", "stranger", "misnamed", "issuer", "none"],
)
def test_an_approval_that_does_not_prove_its_approver_is_refused(
    signed: SignedApproval, why: str
) -> None:
    with pytest.raises(ApprovalRejected, match=why):
        verify(signed)


def test_checked_at_the_approvals_own_time_not_when_it_arrives() -> None:
    signed = approval(id_token())
    late = replace(signed.grant, starts_at=SIGNED_AT + timedelta(hours=1))
    # The same token, in an approval signed an hour later: expired by then.
    with pytest.raises(ApprovalRejected, match="expired"):
        verify(sign_approval(late, KEY, signed.identity))
    assert verify(signed).subject == "u-1001"  # whenever it is checked


def test_keys_are_cached_and_fetched_again_when_the_provider_rotated() -> None:
    rotated = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    keys, fetched = keys_of([PROVIDER], [rotated])
    verify(approval(id_token()), keys)
    verify(approval(id_token()), keys)
    assert fetched == [ISSUER]  # cached
    verify(approval(id_token(key=rotated, kid="k2")), keys)
    assert fetched == [ISSUER, ISSUER]  # refused with the cached set: fetched once more
    with pytest.raises(ApprovalRejected):
        verify(approval(id_token(key=RSAKey.generate_key(2048))), keys)
