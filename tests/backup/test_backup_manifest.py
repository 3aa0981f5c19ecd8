"""Manifest canonical form and cluster signature (pure)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import ValidationError

from backup.errors import ManifestError
from backup.keys import key_id, wrap_data_key
from backup.manifest import (
    BackupManifest,
    PartRecord,
    check_fingerprint,
    parse_signed_manifest,
    sign_manifest,
    signer_id,
)


def manifest() -> BackupManifest:
    public = X25519PrivateKey.generate().public_key()
    part = PartRecord(
        name="node-a",
        node="node-a",
        size_plain=10,
        size_cipher=50,
        frames=1,
        sha256="ab" * 32,
        wrapped_key=wrap_data_key(os.urandom(32), public),
    )
    return BackupManifest(
        id="20250101T020000Z-0a1b2c3d",
        cluster="c1",
        created=datetime(2025, 1, 1, 3, 0, 0, 123, tzinfo=timezone(timedelta(hours=1))),
        epoch=4,
        key_id=key_id(public),
        parts=(part,),
        targets=("file:///mnt/x",),
    )


def test_canonical_json_round_trip_and_signature() -> None:
    signing = Ed25519PrivateKey.generate()
    signed = sign_manifest(manifest(), signing)
    data = signed.to_json()
    assert json.loads(data)["manifest"]["created"] == "2025-01-01T02:00:00Z"
    assert b" " not in data
    again = parse_signed_manifest(data, signing.public_key())
    assert again == signed
    assert again.to_json() == data


def test_altered_manifest_fails_signature() -> None:
    signing = Ed25519PrivateKey.generate()
    data = sign_manifest(manifest(), signing).to_json().replace(b'"epoch":4', b'"epoch":5')
    with pytest.raises(ManifestError, match="signature does not verify"):
        parse_signed_manifest(data)


def test_untrusted_signer_is_refused() -> None:
    data = sign_manifest(manifest(), Ed25519PrivateKey.generate()).to_json()
    with pytest.raises(ManifestError, match="not by a signer you trust"):
        parse_signed_manifest(data, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(ManifestError, match="not by a signer you trust"):
        parse_signed_manifest(data, frozenset({"ab" * 32}))


def test_trusted_fingerprints_and_missing_nodes() -> None:
    signing = Ed25519PrivateKey.generate()
    fingerprint = signer_id(signing.public_key())
    plain = sign_manifest(manifest(), signing)
    assert b"missing_nodes" not in plain.to_json()  # older readers' canonical form
    gappy = sign_manifest(manifest().model_copy(update={"missing_nodes": ("n3",)}), signing)
    data = gappy.to_json()
    assert b'"missing_nodes":["n3"]' in data
    again = parse_signed_manifest(data, frozenset({fingerprint}))
    assert again.manifest.missing_nodes == ("n3",)
    assert check_fingerprint(fingerprint.upper() + "\n") == fingerprint
    with pytest.raises(ManifestError, match="64 hex digits"):
        check_fingerprint(fingerprint[:16])


def test_malformed_manifest_is_one_line() -> None:
    with pytest.raises(ManifestError, match="malformed") as info:
        parse_signed_manifest(b'{"manifest": {}}')
    assert "\n" not in str(info.value)


def test_duplicate_part_names_refused() -> None:
    m = manifest()
    with pytest.raises(ValidationError, match="unique"):
        BackupManifest.model_validate({**m.model_dump(), "parts": [m.parts[0], m.parts[0]]})


def test_naive_datetime_refused() -> None:
    m = manifest()
    with pytest.raises(ValidationError, match="time zone"):
        BackupManifest.model_validate({**m.model_dump(), "created": datetime(2025, 1, 1)})
    assert m.created.tzinfo == UTC


def test_a_part_carries_exactly_one_digest_and_format_1_means_sha256() -> None:
    part = manifest().parts[0]
    fields = part.model_dump() | {"wrapped_key": part.wrapped_key}
    with pytest.raises(ValidationError, match="exactly one digest"):
        PartRecord(**(fields | {"blake3": "cd" * 32}))
    with pytest.raises(ValidationError, match="exactly one digest"):
        PartRecord(**(fields | {"sha256": None}))
    modern = PartRecord(**(fields | {"sha256": None, "blake3": "cd" * 32}))
    assert (modern.digest_algorithm, modern.digest) == ("blake3", "cd" * 32)
    assert "sha256" not in modern.model_dump(mode="json")
    fields = manifest().model_dump() | {"parts": (modern,)}
    assert BackupManifest(**fields).format == 2
    with pytest.raises(ValidationError, match="SHA-256 part digests only"):
        BackupManifest(**(fields | {"format": 1}))
