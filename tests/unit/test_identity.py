"""ID token verification (`contract.identity`) with real keys: accepted when signed by the
provider for this client and fresh; refused when signed by another key, expired, for another
audience or issuer, altered, unsigned, or with the wrong nonce."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from contract.identity import IdentityRefused, verify_approver, verify_id_token

ISSUER = "https://idp.example.org"
CLIENT = "mission-control"
NOW = 1_800_000_000
PROVIDER = RSAKey.generate_key(2048, parameters={"kid": "provider-1"})
STRANGER = RSAKey.generate_key(2048, parameters={"kid": "provider-1"})
JWKS = KeySet([PROVIDER]).as_dict(private=False)


def token(key: Any = PROVIDER, alg: str = "RS256", **claims: Any) -> str:
    payload = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "248289761001",
        "preferred_username": "jane",
        "groups": ["cluster-approvers"],
        "amr": ["pwd", "otp"],
        "iat": NOW - 10,
        "exp": NOW + 300,
        "nonce": "n-0S6_WzA2Mj",
        **claims,
    }
    return jwt.encode({"alg": alg, "kid": "provider-1"}, payload, key)


def verify(raw: str, **kwargs: Any) -> Any:
    return verify_id_token(
        raw, JWKS, issuer=ISSUER, client_id=CLIENT, now=NOW, nonce="n-0S6_WzA2Mj", **kwargs
    )


def test_a_token_of_the_provider_for_this_client_is_accepted() -> None:
    person = verify(token())
    assert person.subject == "248289761001" and person.label == "jane (248289761001)"
    assert person.groups == ("cluster-approvers",) and person.amr == ("pwd", "otp")
    ec = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
    both = KeySet([PROVIDER, ec]).as_dict(private=False)
    raw = jwt.encode({"alg": "ES256", "kid": "ec-1"}, {**_claims(), "groups": "one"}, ec)
    assert verify_id_token(raw, both, issuer=ISSUER, client_id=CLIENT, now=NOW).groups == ("one",)


def _claims() -> dict[str, Any]:
    return {"iss": ISSUER, "aud": [CLIENT], "sub": "s", "iat": NOW, "exp": NOW + 60}


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (lambda: token(STRANGER), "signature"),
        (lambda: token(exp=NOW - 61), "expired"),
        (lambda: token(aud="another-client"), "aud"),
        (lambda: token(aud=[CLIENT, "other"]), "azp"),
        (lambda: token(iss="https://evil.example"), "issued by"),
        (lambda: token(iat=NOW + 3600), "future"),
        (lambda: token(nonce="replayed"), "nonce"),
        (lambda: token(sub=""), "subject"),
    ],
)
def test_refused(raw: Any, why: str) -> None:
    with pytest.raises(IdentityRefused, match=why):
        verify(raw())


def test_an_altered_or_unsigned_or_hmac_token_is_refused() -> None:
    header, payload, signature = token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["groups"] = ["mc-admins"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(IdentityRefused, match="signature"):
        verify(f"{header}.{forged}.{signature}")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    with pytest.raises(IdentityRefused, match="signature"):
        verify(f"{none_header}.{payload}.")
    # A shared-secret token keyed with the provider's public key material is never accepted.
    secret = OctKey.import_key(json.dumps(JWKS).encode())
    with pytest.raises(IdentityRefused):
        verify(token(secret, alg="HS256"))
    with pytest.raises(IdentityRefused, match="key set"):
        verify_id_token(token(), {"keys": "no"}, issuer=ISSUER, client_id=CLIENT, now=NOW)


APPROVERS = frozenset({"cluster-approvers"})


def approver(raw: str) -> Any:
    return verify_approver(
        raw, JWKS, issuer=ISSUER, client_id=CLIENT, approver_groups=APPROVERS, now=NOW
    )


def test_an_approver_is_a_verified_person_in_an_approver_group() -> None:
    assert approver(token()).label == "jane (248289761001)"
    with pytest.raises(IdentityRefused, match="none of the approver groups"):
        approver(token(groups=["staff"]))
    with pytest.raises(IdentityRefused, match="expired"):
        approver(token(exp=NOW - 3600))
    header, payload, signature = token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["groups"] = ["cluster-approvers", "root"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(IdentityRefused, match="signature"):
        approver(f"{header}.{forged}.{signature}")
    with pytest.raises(IdentityRefused, match="no approver groups"):
        verify_approver(
            token(), JWKS, issuer=ISSUER, client_id=CLIENT, approver_groups=frozenset(), now=NOW
        )
