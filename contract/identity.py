"""A verified person: an OpenID Connect ID token checked against the provider's published keys.

Both sides need the same check (Mission Control for staff sign-in, the leader and Mission
Control for an approval that embeds its approver's ID token), so it lives here; it is pure: the
caller fetches the provider's JWKS and passes it in, with the time. The JOSE work is
`joserfc` (the library `authlib` itself delegates to); nothing here parses a token by hand.

Guarantees: a token is accepted only when
- its signature verifies with a key of `jwks` under an asymmetric algorithm (RS256, PS256, ES256,
  EdDSA: never `none`, never a shared-secret HS* that a public key could be misused as);
- `iss` is the configured issuer, `aud` names the client (and, with several audiences, `azp`
  is the client);
- `exp` is in the future and `iat` not in the future (each with `leeway_s`);
- `nonce` is the one expected, when one is expected;
- `sub` is a non-empty string.
Anything else raises `IdentityRefused` with one line that says which check failed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")


class IdentityRefused(Exception):
    """The token does not prove who it names; the message says which check failed."""


@dataclass(frozen=True)
class VerifiedPerson:
    """Who the provider vouches for, as its signed token says."""

    issuer: str
    subject: str
    groups: tuple[str, ...]
    #: Authentication methods the provider asserts (`amr`: "pwd", "otp", "mfa", ...).
    amr: tuple[str, ...]
    expires_at: int
    name: str = ""

    @property
    def label(self) -> str:
        """How audit entries name the person: their name and the provider's subject."""
        return f"{self.name} ({self.subject})" if self.name else self.subject


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return ()


def verify_id_token(
    token: str,
    jwks: Mapping[str, Any],
    *,
    issuer: str,
    client_id: str,
    now: int,
    nonce: str | None = None,
    groups_claim: str = "groups",
    leeway_s: int = 60,
) -> VerifiedPerson:
    """The person `token` proves, or `IdentityRefused`."""
    try:
        keys = KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as e:
        raise IdentityRefused(f"the provider's key set cannot be used: {e}") from None
    try:
        decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
    except (JoseError, ValueError, TypeError) as e:
        raise IdentityRefused(
            f"the token's signature does not verify: {type(e).__name__}"
        ) from None
    claims = decoded.claims
    if claims.get("iss") != issuer:
        raise IdentityRefused(f"the token was issued by {claims.get('iss')!r}, not {issuer!r}")
    audiences = _strings(claims.get("aud"))
    if client_id not in audiences:
        raise IdentityRefused("the token is not meant for this client (aud)")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise IdentityRefused("the token names several audiences and another party (azp)")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int) or exp + leeway_s <= now:
        raise IdentityRefused("the token has expired")
    if not isinstance(iat, int) or iat - leeway_s > now:
        raise IdentityRefused("the token was issued in the future (iat)")
    if nonce is not None and claims.get("nonce") != nonce:
        raise IdentityRefused("the token's nonce is not the one this sign-in sent")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise IdentityRefused("the token names no subject")
    name = claims.get("preferred_username") or claims.get("name") or ""
    return VerifiedPerson(
        issuer=issuer,
        subject=subject,
        groups=_strings(claims.get(groups_claim)),
        amr=_strings(claims.get("amr")),
        expires_at=exp,
        name=name if isinstance(name, str) else "",
    )


def verify_approver(
    token: str,
    jwks: Mapping[str, Any],
    *,
    issuer: str,
    client_id: str,
    approver_groups: frozenset[str],
    now: int,
    groups_claim: str = "groups",
) -> VerifiedPerson:
    """The person an approval's embedded ID token proves, when they are in one of
    `approver_groups` (the cluster's setting); `IdentityRefused` otherwise. The same check on
    the operator's machine, the leader and Mission Control: whoever holds the token and the
    provider's keys reaches the same answer."""
    if not approver_groups:
        raise IdentityRefused("no approver groups are configured: nobody may approve")
    person = verify_id_token(
        token, jwks, issuer=issuer, client_id=client_id, now=now, groups_claim=groups_claim
    )
    if not approver_groups.intersection(person.groups):
        raise IdentityRefused(f"{person.label} is in none of the approver groups")
    return person


T = TypeVar("T")


class ProviderKeys:
    """Each provider's published key set (JWKS), kept for `ttl_s` so that checking every
    approval does not ask the provider each time.

    `fetch(issuer)` does the I/O (each side has its own HTTP client and CA settings); it may
    raise anything, and the error reaches the caller unchanged (a provider that does not answer
    is not a refused identity). `check` runs a verification with the keys; when it refuses with
    keys that came from the cache, they are fetched again and the check runs once more, so a
    provider that rotated its keys within `ttl_s` is not mistaken for a forgery.
    """

    def __init__(
        self,
        fetch: Callable[[str], Mapping[str, Any]],
        *,
        ttl_s: float = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._clock = clock
        self._cached: dict[str, tuple[float, Mapping[str, Any]]] = {}
        self._lock = threading.Lock()

    def _fetched(self, issuer: str) -> Mapping[str, Any]:
        keys = self._fetch(issuer)
        with self._lock:
            self._cached[issuer] = (self._clock() + self._ttl_s, keys)
        return keys

    def check(self, issuer: str, verify: Callable[[Mapping[str, Any]], T]) -> T:
        """`verify(keys)` with `issuer`'s keys: cached ones, then fresh ones if they refuse."""
        with self._lock:
            cached = self._cached.get(issuer)
        if cached is None or cached[0] <= self._clock():
            return verify(self._fetched(issuer))
        try:
            return verify(cached[1])
        except IdentityRefused:
            return verify(self._fetched(issuer))
