"""The format of every secret the product issues: a kind prefix, base62 randomness, a checksum.

A credential reads ``<kind>_<body><checksum>``, as GitHub's tokens do:

- ``<kind>`` names what it opens: ``mcc`` a cluster's Mission Control credential, ``mct`` a
  staff API or console session token, ``mce`` a one-time enrollment token, ``mcr`` a cluster's
  renewal secret (it buys a new cluster credential after a leak, nothing else).
- ``<body>`` is base62 (``0-9A-Za-z``). A cluster credential's body starts with the cluster id
  (the UUID's 32 hex digits), so the client knows which cluster it speaks for; every body ends
  with 30 random base62 characters (178 bits).
- ``<checksum>`` is the CRC32 of everything before it (prefix, underscore and body, ASCII),
  in base62, left-padded with ``0`` to 6 characters.

Why: a scanner recognises a leaked credential by its prefix and fixed length, and the checksum
tells a real one from a string that merely looks like one (a random 36-character string passes
with odds of 1 in 2^32), so findings are almost never false. The checksum proves nothing about
validity: only the server's stored digest does.

Credentials issued before this format (``mcc.<id>.<secret>``, ``mct_`` + 43 URL-safe
characters, ``mce.<secret>``, ``mcs.<secret>``) keep working where they are accepted until they
are rotated; scanners do not look for them (they have no checksum to confirm a finding).
"""

from __future__ import annotations

import re
import secrets
import uuid
import zlib
from dataclasses import dataclass
from enum import StrEnum

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 30
CHECKSUM_LENGTH = 6
_CLUSTER_ID_LENGTH = 32


class CredentialKind(StrEnum):
    """What a credential opens; the value is its prefix."""

    CLUSTER = "mcc"
    STAFF_TOKEN = "mct"
    ENROLLMENT = "mce"
    RENEWAL = "mcr"

    @property
    def body_length(self) -> int:
        """Characters between the underscore and the checksum."""
        extra = _CLUSTER_ID_LENGTH if self is CredentialKind.CLUSTER else 0
        return extra + RANDOM_LENGTH

    @property
    def length(self) -> int:
        return len(self.value) + 1 + self.body_length + CHECKSUM_LENGTH

    @property
    def leak_type(self) -> str:
        """The `type` a secret-scanning partner report names this kind with."""
        return _LEAK_TYPES[self]


_LEAK_TYPES = {
    CredentialKind.CLUSTER: "managed_cluster_credential",
    CredentialKind.STAFF_TOKEN: "managed_staff_token",
    CredentialKind.ENROLLMENT: "managed_enrollment_token",
    CredentialKind.RENEWAL: "managed_cluster_renewal_secret",
}

#: A candidate: a kind's prefix and its run of base62 (bytes, so scanners need not decode
#: files). Every kind starts with "mc" (a test holds them to it), a literal that lets the regex
#: engine skip ahead fast; the boundary before it and each kind's length are checked in `find`.
_CANDIDATE = re.compile(
    b"mc[" + b"".join(kind.value[2:].encode() for kind in CredentialKind) + b"]_[0-9A-Za-z]+"
)
_WORD = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")


def base62(number: int, width: int) -> str:
    """`number` in base62, left-padded with ``0`` to `width` characters."""
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def checksum(head: str) -> str:
    """The 6-character checksum of ``<kind>_<body>``."""
    return base62(zlib.crc32(head.encode("ascii")), CHECKSUM_LENGTH)


def random_base62(length: int = RANDOM_LENGTH) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def issue(kind: CredentialKind, *, cluster_id: str | None = None, random: str | None = None) -> str:
    """A new credential of `kind`; a cluster credential names `cluster_id` (a UUID).
    `random` (30 base62 characters) is injectable for tests."""
    body = random if random is not None else random_base62()
    if len(body) != RANDOM_LENGTH or any(c not in BASE62 for c in body):
        raise ValueError(f"the random part must be {RANDOM_LENGTH} base62 characters")
    if kind is CredentialKind.CLUSTER:
        if cluster_id is None:
            raise ValueError("a cluster credential names its cluster")
        body = uuid.UUID(cluster_id).hex + body
    elif cluster_id is not None:
        raise ValueError(f"a {kind.value} credential names no cluster")
    head = f"{kind.value}_{body}"
    return head + checksum(head)


@dataclass(frozen=True)
class ParsedCredential:
    kind: CredentialKind
    cluster_id: str | None


def parse(text: str) -> ParsedCredential | None:
    """What `text` is when it is a credential of this format with a valid checksum, else None."""
    prefix, underscore, rest = text.partition("_")
    try:
        kind = CredentialKind(prefix)
    except ValueError:
        return None
    if not underscore or len(text) != kind.length or any(c not in BASE62 for c in rest):
        return None
    head, check = text[:-CHECKSUM_LENGTH], text[-CHECKSUM_LENGTH:]
    if checksum(head) != check:
        return None
    cluster_id = None
    if kind is CredentialKind.CLUSTER:
        try:
            cluster_id = str(uuid.UUID(hex=rest[:_CLUSTER_ID_LENGTH]))
        except ValueError:
            return None
    return ParsedCredential(kind, cluster_id)


def kind_of(text: str) -> CredentialKind | None:
    parsed = parse(text)
    return parsed.kind if parsed else None


def kind_for_leak_type(leak_type: str) -> CredentialKind | None:
    """The kind a partner report's `type` names, or None for a type this product never issued."""
    return next((k for k, name in _LEAK_TYPES.items() if name == leak_type), None)


@dataclass(frozen=True)
class Finding:
    """A credential found in some text: where (byte offset) and what."""

    offset: int
    credential: str
    kind: CredentialKind


def find(data: bytes) -> list[Finding]:
    """Every credential of this format in `data` whose checksum is valid, in order."""
    found = []
    for match in _CANDIDATE.finditer(data):
        start = match.start()
        if start and data[start - 1] in _WORD:
            continue  # part of a longer word: not a credential of ours
        text = match.group().decode("ascii")
        parsed = parse(text)
        if parsed is not None:
            found.append(Finding(start, text, parsed.kind))
    return found


def redacted(credential: str) -> str:
    """What to print of a found credential: the kind and the first characters only."""
    return credential[: credential.index("_") + 5] + "…"
