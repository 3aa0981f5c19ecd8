"""The format of every secret the product issues: a kind prefix, base62 randomness, a checksum.

A credential reads ``<kind>_<body><checksum>``, as GitHub's tokens do:

- ``<kind>`` names what it opens: ``mcc`` a cluster's Mission Control credential, ``mct`` a
  staff API or console session token, ``mce`` a one-time enrollment token, ``mcr`` a cluster's
  renewal secret (it buys a new cluster credential after a leak, nothing else); ``mci`` and
  ``mcd`` a cluster's monitoring-data tokens (ingest: writes one environment; data read: an
  operator's credential for reading data), issued by the cluster itself, not by Mission Control.
- ``<body>`` is base62 (``0-9A-Za-z``). A cluster credential's body starts with the cluster id
  (the UUID's 32 hex digits), so the client knows which cluster it speaks for; a data token's
  with its record id (12 hex digits), so the node finds its stored digest in one lookup; every
  body ends with 30 random base62 characters (178 bits).
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
RECORD_ID_LENGTH = 12
_CLUSTER_ID_LENGTH = 32


class CredentialKind(StrEnum):
    """What a credential opens; the value is its prefix."""

    CLUSTER = "mcc"
    STAFF_TOKEN = "mct"
    ENROLLMENT = "mce"
    RENEWAL = "mcr"
    DATA_INGEST = "mci"
    DATA_READ = "mcd"

    @property
    def id_length(self) -> int:
        """Hex digits of the id the body starts with (a cluster's, a data token's record)."""
        return _ID_LENGTHS.get(self, 0)

    @property
    def body_length(self) -> int:
        """Characters between the underscore and the checksum."""
        return self.id_length + RANDOM_LENGTH

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
    CredentialKind.DATA_INGEST: "managed_data_ingest_token",
    CredentialKind.DATA_READ: "managed_data_read_token",
}
_ID_LENGTHS = {
    CredentialKind.CLUSTER: _CLUSTER_ID_LENGTH,
    CredentialKind.DATA_INGEST: RECORD_ID_LENGTH,
    CredentialKind.DATA_READ: RECORD_ID_LENGTH,
}

#: A candidate: a kind's prefix and its run of base62 (bytes, so scanners need not decode
#: files). Every kind starts with "mc" (a test holds them to it), a literal that lets the regex
#: engine skip ahead fast; the boundary before it and each kind's length are checked in `find`.
_CANDIDATE = re.compile(
    b"mc[" + b"".join(kind.value[2:].encode() for kind in CredentialKind) + b"]_[0-9A-Za-z]+"
)
_RECORD_ID = re.compile(f"[0-9a-f]{{{RECORD_ID_LENGTH}}}")
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


def issue(
    kind: CredentialKind,
    *,
    cluster_id: str | None = None,
    record_id: str | None = None,
    random: str | None = None,
) -> str:
    """A new credential of `kind`; a cluster credential names `cluster_id` (a UUID), a data
    token its `record_id` (12 lowercase hex digits). `random` (30 base62 characters) is
    injectable for tests."""
    body = random if random is not None else random_base62()
    if len(body) != RANDOM_LENGTH or any(c not in BASE62 for c in body):
        raise ValueError(f"the random part must be {RANDOM_LENGTH} base62 characters")
    if (cluster_id is not None) != (kind is CredentialKind.CLUSTER):
        raise ValueError(
            "a cluster credential names its cluster"
            if cluster_id is None
            else f"a {kind.value} credential names no cluster"
        )
    if (record_id is not None) != (kind.id_length == RECORD_ID_LENGTH):
        raise ValueError(
            f"a {kind.value} credential names its record"
            if record_id is None
            else f"a {kind.value} credential names no record"
        )
    if cluster_id is not None:
        body = uuid.UUID(cluster_id).hex + body
    elif record_id is not None:
        if not _RECORD_ID.fullmatch(record_id):
            raise ValueError(f"a record id is {RECORD_ID_LENGTH} lowercase hex digits")
        body = record_id + body
    head = f"{kind.value}_{body}"
    return head + checksum(head)


@dataclass(frozen=True)
class ParsedCredential:
    kind: CredentialKind
    cluster_id: str | None
    record_id: str | None = None  # data tokens: the record holding the token's digest
    random: str = ""  # the random part: what a data token's stored digest is of


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
    cluster_id = record_id = None
    ident, random = rest[: kind.id_length], rest[kind.id_length : kind.body_length]
    if kind is CredentialKind.CLUSTER:
        try:
            cluster_id = str(uuid.UUID(hex=ident))
        except ValueError:
            return None
    elif kind.id_length:
        if not _RECORD_ID.fullmatch(ident):
            return None
        record_id = ident
    return ParsedCredential(kind, cluster_id, record_id, random)


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
