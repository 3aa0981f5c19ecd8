"""Data tokens: ingest tokens (write one environment's data) and read tokens (an operator's
credential for reading data). Only a token's SHA-256 is stored; the token is shown once.

Format: the product's one credential format (`contract.credentials`): `mci_` (ingest) or `mcd_`
(data read), the record's id (12 hex digits), 30 random base62 characters and a checksum, so
`managed secrets scan` finds a leaked token and a mistyped one is refused before any lookup.
Tokens of the earlier form (`mgd<i|r>_<id>_<secret>_<crc32 hex>`) keep working until revoked.
Guarantees: `verify` compares digests in constant time; a token of one scope never passes as
another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from contract.credentials import (
    RECORD_ID_LENGTH,
    CredentialKind,
    issue,
    parse,
    random_base62,
)

Scope = Literal["ingest", "read"]
SCOPES: tuple[str, ...] = get_args(Scope)
_KINDS: dict[Scope, CredentialKind] = {
    "ingest": CredentialKind.DATA_INGEST,
    "read": CredentialKind.DATA_READ,
}
_SCOPES: dict[CredentialKind, Scope] = {kind: scope for scope, kind in _KINDS.items()}
#: The earlier form, still accepted: `mgd<scope letter>_<id>_<secret>_<crc32 hex>`.
_OLD_SHAPE = re.compile(r"mgd([ir])_([0-9a-f]{12})_([A-Za-z0-9_-]{43})_([0-9a-f]{8})")


def _check(text: str) -> str:
    return f"{binascii.crc32(text.encode()):08x}"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class TokenRecord:
    """What is stored of a token: never the token itself."""

    id: str
    scope: Scope
    env: str | None  # ingest: the environment it writes; read: the one it reads (None: all)
    operator: str | None  # read tokens: the operator whose credential it is
    digest: str
    created: float
    sensitive: bool = False  # internal read tokens only: minted for a grant that includes it

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scope": self.scope,
            "env": self.env,
            "operator": self.operator,
            "digest": self.digest,
            "created": self.created,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> TokenRecord:
        scope = doc["scope"]
        if scope not in SCOPES:
            raise ValueError(f"unknown token scope {scope!r}")
        return cls(
            id=str(doc["id"]),
            scope=scope,
            env=doc.get("env"),
            operator=doc.get("operator"),
            digest=str(doc["digest"]),
            created=float(doc["created"]),
        )


@dataclass(frozen=True)
class ParsedToken:
    scope: Scope
    id: str
    secret: str


def new_token(
    scope: Scope, env: str | None, operator: str | None, now: float
) -> tuple[str, TokenRecord]:
    """A fresh token (shown once) and the record to store."""
    token_id = secrets.token_hex(RECORD_ID_LENGTH // 2)
    random = random_base62()
    token = issue(_KINDS[scope], record_id=token_id, random=random)
    return token, TokenRecord(token_id, scope, env, operator, _digest(random), now)


def parse_token(token: str) -> ParsedToken | None:
    """The token's parts, or None when it is not a well-formed token at all."""
    text = token.strip()
    parsed = parse(text)
    if parsed is not None:
        scope = _SCOPES.get(parsed.kind)
        if scope is None or parsed.record_id is None:
            return None  # a credential of another kind (a cluster's, a staff token...)
        return ParsedToken(scope, parsed.record_id, parsed.random)
    match = _OLD_SHAPE.fullmatch(text)
    if match is None or _check(text[:-9]) != match.group(4):
        return None
    old_scope: Scope = "ingest" if match.group(1) == "i" else "read"
    return ParsedToken(old_scope, match.group(2), match.group(3))


def verify(parsed: ParsedToken, record: TokenRecord | None) -> bool:
    return (
        record is not None
        and record.scope == parsed.scope
        and record.id == parsed.id
        and hmac.compare_digest(record.digest, _digest(parsed.secret))
    )


#: Internal read tokens: what the leader uses to read every node for a support command. They are
#: never stored: a node checks them with a key derived from the cluster's credential (which every
#: node holds) and refuses them once expired (a minute).
INTERNAL_PREFIX = "mgds_"
INTERNAL_TTL = 60.0


def internal_key(cluster_credential: str) -> bytes:
    return hmac.new(
        cluster_credential.encode(), b"managed data internal read v1", hashlib.sha256
    ).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def mint_internal(key: bytes, reader: str, sensitive: bool, now: float) -> str:
    claims = json.dumps({"reader": reader, "sensitive": sensitive, "expires": now + INTERNAL_TTL})
    body = _b64(claims.encode())
    mac = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{INTERNAL_PREFIX}{body}.{mac}"  # "." is in no base64url text


def verify_internal(token: str, key: bytes | None, now: float) -> TokenRecord | None:
    """The read token's record if `token` is an internal token signed with `key`, unexpired."""
    if key is None or not token.startswith(INTERNAL_PREFIX):
        return None
    body, _, mac = token[len(INTERNAL_PREFIX) :].partition(".")
    expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        reader, sensitive, expires = claims["reader"], claims["sensitive"], claims["expires"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(reader, str) or not isinstance(sensitive, bool) or now >= float(expires):
        return None
    return TokenRecord("internal", "read", None, reader, "", now, sensitive)
