"""Staff API tokens for scripts: issued per user, shown once, stored only as a SHA-256 digest.

Format: `contract.credentials` (``mct_`` + 30 base62 characters, 178 random bits, + a CRC32
checksum), so log redaction and secret scanners recognise a leaked token; tokens of the older
format (`mct_` + 43 URL-safe characters) keep working until revoked. SHA-256 is enough for
storage because the token has full entropy: there is nothing to brute-force that is cheaper than
guessing the random part. A token acts
with its owner's current role, looked up at each use, so demoting or disabling a user takes effect
at once.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from contract.credentials import CredentialKind, issue

PREFIX = CredentialKind.STAFF_TOKEN.value + "_"


@dataclass(frozen=True)
class StaffToken:
    """What is stored: the owner, the digest and a short hint to tell tokens apart in a list."""

    owner: str
    digest: str
    hint: str
    created_at: datetime
    label: str = ""


@dataclass(frozen=True)
class IssuedToken:
    """The plaintext (show it once, never store it) and the record to store."""

    plaintext: str
    record: StaffToken


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(
    owner: str,
    now: datetime,
    *,
    label: str = "",
    random: str | None = None,
) -> IssuedToken:
    """A new token for `owner`; `random` (30 base62 characters) is injectable for tests."""
    if not owner.strip():
        raise ValueError("a token needs an owner")
    plaintext = issue(CredentialKind.STAFF_TOKEN, random=random)
    record = StaffToken(
        owner=owner,
        digest=token_digest(plaintext),
        hint=plaintext[: len(PREFIX) + 4] + "…",
        created_at=now,
        label=label,
    )
    return IssuedToken(plaintext, record)


def looks_like_token(text: str) -> bool:
    return text.startswith(PREFIX) and len(text) > len(PREFIX) + 16


def token_matches(presented: str, record: StaffToken) -> bool:
    """Constant-time comparison of a presented token with a stored record."""
    return hmac.compare_digest(token_digest(presented), record.digest)
