"""`BackupManifest`: what a committed backup contains, in canonical JSON, signed by the cluster.

Guarantees:
- The canonical form is JSON with sorted keys, no insignificant whitespace, UTF-8, integers
  only and `created` as `YYYY-MM-DDTHH:MM:SSZ`; a second implementation can reproduce it bytewise.
- The signature is Ed25519 over `SIGNING_CONTEXT + canonical(manifest)`; `parse_signed_manifest`
  rejects a manifest whose signature fails, or whose signer is not trusted when a trusted key
  or set of signer fingerprints is given. Without one it proves integrity only, not who signed:
  anyone can sign a manifest with a key of their own.
- `missing_nodes` (roster members that wrote no part) is left out of the canonical form when
  empty, so manifests written before the field existed keep verifying.
- Parts carry a digest of their stored ciphertext, so digest checks need no private key: BLAKE3
  (`blake3`) for parts written since manifest format 2, SHA-256 (`sha256`) before. A part
  carries exactly one; the other key is left out of the canonical form, so format-1 manifests
  keep verifying byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from backup.errors import KeyFileError, ManifestError
from backup.keys import WrappedKey, b64decode, b64encode
from backup.layout import BACKUP_ID, PART_NAME

SIGNING_CONTEXT = b"managed-backup/v1 manifest\n"
HexDigest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
# Who may have signed: the cluster's public key, or the fingerprints (`signer_id`) of keys the
# operator trusts (`--signer`, a signers file).
Trusted = Ed25519PublicKey | frozenset[str]

if TYPE_CHECKING:
    from typing_extensions import Buffer

# The digest of a part's stored object. New parts carry BLAKE3-256: writing a part is CPU-bound,
# and BLAKE3 costs a quarter of SHA-256's CPU (0.23 against 0.91 s per GiB on one core with the
# SHA extensions, benchmarks.md). Both are collision resistant; SHA-256 stays readable.
PartDigest = Literal["blake3", "sha256"]
WRITTEN_DIGEST: PartDigest = "blake3"


class Hasher(Protocol):
    def update(self, data: Buffer, /) -> object: ...
    def hexdigest(self) -> str: ...


def new_hasher(algorithm: PartDigest) -> Hasher:
    """A fresh hasher for `algorithm` (both release the GIL on large updates)."""
    return blake3.blake3() if algorithm == "blake3" else hashlib.sha256()


class PartRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(pattern=PART_NAME.pattern)]
    node: str
    size_plain: int = Field(ge=0)
    size_cipher: int = Field(ge=0)
    frames: int = Field(ge=1)
    blake3: HexDigest | None = None  # exactly one of the two digests
    sha256: HexDigest | None = None
    wrapped_key: WrappedKey

    @model_validator(mode="after")
    def _one_digest(self) -> PartRecord:
        if (self.blake3 is None) == (self.sha256 is None):
            raise ValueError("a part carries exactly one digest: blake3 or sha256")
        return self

    @model_serializer(mode="wrap")
    def _omit_absent_digest(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for key in ("blake3", "sha256"):
                if data.get(key) is None:
                    data.pop(key, None)
        return data

    @property
    def digest_algorithm(self) -> PartDigest:
        return "blake3" if self.blake3 is not None else "sha256"

    @property
    def digest(self) -> str:
        value = self.blake3 if self.blake3 is not None else self.sha256
        assert value is not None  # _one_digest
        return value

    def hasher(self) -> Hasher:
        """A fresh hasher for checking this part's stored object against `digest`."""
        return new_hasher(self.digest_algorithm)


class BackupManifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1, 2] = 2  # 2: a part's digest may be BLAKE3; 1: SHA-256 only
    id: Annotated[str, Field(pattern=BACKUP_ID.pattern)]
    cluster: str
    created: datetime
    epoch: int = Field(ge=0)
    key_id: HexDigest
    parts: tuple[PartRecord, ...]
    targets: tuple[str, ...]
    status: Literal["committed"] = "committed"
    missing_nodes: tuple[str, ...] = ()  # roster members that wrote no part (they were down)

    @model_serializer(mode="wrap")
    def _omit_empty_missing(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and not self.missing_nodes:
            data.pop("missing_nodes", None)
        return data

    @field_validator("created")
    @classmethod
    def _utc_seconds(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("created must carry a time zone")
        return value.astimezone(UTC).replace(microsecond=0)

    @field_serializer("created")
    def _format_created(self, value: datetime) -> str:
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")

    @field_validator("parts")
    @classmethod
    def _unique_parts(cls, parts: tuple[PartRecord, ...]) -> tuple[PartRecord, ...]:
        names = [p.name for p in parts]
        if len(set(names)) != len(names):
            raise ValueError("part names must be unique")
        return parts

    @model_validator(mode="after")
    def _digests_of_the_format(self) -> BackupManifest:
        if self.format == 1 and any(p.sha256 is None for p in self.parts):
            raise ValueError("format 1 manifests carry SHA-256 part digests only")
        return self

    def part(self, name: str) -> PartRecord:
        for record in self.parts:
            if record.name == name:
                return record
        raise ManifestError(f"backup {self.id} has no part {name!r}")


class ManifestSignature(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    algorithm: Literal["ed25519"] = "ed25519"
    signer: HexDigest  # SHA-256 of the raw 32-byte public key
    public_key: str  # raw public key, base64
    value: str  # signature, base64


class SignedManifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    manifest: BackupManifest
    signature: ManifestSignature

    def to_json(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signer_id(public: Ed25519PublicKey) -> str:
    """The fingerprint operators record and pass to `--signer`: hex SHA-256 of the raw key."""
    return hashlib.sha256(public.public_bytes_raw()).hexdigest()


def check_fingerprint(text: str) -> str:
    """A signer fingerprint as given by an operator (64 hex digits); ManifestError otherwise."""
    value = text.strip().lower()
    if not FINGERPRINT.match(value):
        raise ManifestError(
            f"signer {text!r} is not a fingerprint: 64 hex digits, as `managed backup show` prints"
        )
    return value


def trusted_fingerprints(trusted: Trusted | None) -> frozenset[str] | None:
    if trusted is None:
        return None
    if isinstance(trusted, Ed25519PublicKey):
        return frozenset({signer_id(trusted)})
    return frozenset(trusted)


def fingerprints(values: Iterable[str]) -> frozenset[str]:
    return frozenset(check_fingerprint(v) for v in values)


def sign_manifest(manifest: BackupManifest, signing_key: Ed25519PrivateKey) -> SignedManifest:
    """Sign the canonical form of `manifest` with the cluster's Ed25519 key."""
    public = signing_key.public_key()
    value = signing_key.sign(SIGNING_CONTEXT + canonical_json(manifest.model_dump(mode="json")))
    signature = ManifestSignature(
        signer=signer_id(public),
        public_key=b64encode(public.public_bytes_raw()),
        value=b64encode(value),
    )
    return SignedManifest(manifest=manifest, signature=signature)


def parse_signed_manifest(
    data: bytes, trusted: Trusted | None = None, *, where: str = "manifest"
) -> SignedManifest:
    """Parse and verify a stored manifest; ManifestError on any malformation or bad signature."""
    try:
        signed = SignedManifest.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(p) for p in first["loc"])
        raise ManifestError(f"{where} is malformed: {location}: {first['msg']}") from exc
    try:
        public = Ed25519PublicKey.from_public_bytes(
            b64decode(signed.signature.public_key, "signer key")
        )
    except (ValueError, KeyFileError) as exc:
        raise ManifestError(f"{where}: signer key is malformed") from exc
    if signer_id(public) != signed.signature.signer:
        raise ManifestError(f"{where}: signer id does not match the signer key")
    allowed = trusted_fingerprints(trusted)
    if allowed is not None and signed.signature.signer not in allowed:
        raise ManifestError(
            f"{where} is signed by {signed.signature.signer}, not by a signer you trust "
            f"({', '.join(sorted(allowed)) or 'none given'}): refusing it"
        )
    message = SIGNING_CONTEXT + canonical_json(signed.manifest.model_dump(mode="json"))
    try:
        public.verify(b64decode(signed.signature.value, "signature"), message)
    except (InvalidSignature, ValueError, KeyFileError) as exc:
        raise ManifestError(f"{where}: signature does not verify (altered manifest)") from exc
    return signed
