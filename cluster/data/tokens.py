"""Data tokens: ingest tokens (write one environment's data) and read tokens (an operator's
credential for reading data). Only a token's SHA-256 is stored; the token is shown once.

Format: `mgd<scope letter>_<id>_<secret>_<check>`: a recognisable prefix (a secret scanner finds
leaked tokens), the record's id, 32 random bytes (URL-safe base64) and a CRC-32 of the rest, so
a mistyped token is refused before any lookup. Guarantees: `verify` compares digests in constant
time; a token of one scope never passes as another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

Scope = Literal["ingest", "read"]
SCOPES: tuple[str, ...] = get_args(Scope)
_SHAPE = re.compile(r"mgd([ir])_([0-9a-f]{12})_([A-Za-z0-9_-]{43})_([0-9a-f]{8})")


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
    token_id = secrets.token_hex(6)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    body = f"mgd{scope[0]}_{token_id}_{secret}"
    record = TokenRecord(token_id, scope, env, operator, _digest(secret), now)
    return f"{body}_{_check(body)}", record


def parse_token(token: str) -> ParsedToken | None:
    """The token's parts, or None when it is not a well-formed token at all."""
    match = _SHAPE.fullmatch(token.strip())
    if match is None or _check(token.strip()[:-9]) != match.group(4):
        return None
    scope: Scope = "ingest" if match.group(1) == "i" else "read"
    return ParsedToken(scope, match.group(2), match.group(3))


def verify(parsed: ParsedToken, record: TokenRecord | None) -> bool:
    return (
        record is not None
        and record.scope == parsed.scope
        and record.id == parsed.id
        and hmac.compare_digest(record.digest, _digest(parsed.secret))
    )
