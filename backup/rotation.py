"""Key rotation: re-wrap every backup's data keys for a new customer key pair.

Guarantees: only the wrapped keys and the manifest's key id change (re-signed by the cluster);
no ciphertext is read or rewritten. Backups already on the new key are skipped, so an
interrupted rotation can simply be run again. The old private key is needed to unwrap; backups
wrapped for yet another key are left alone and reported. A re-wrapped manifest replaces the
old one on every given target that holds it (mirrors first, the primary last), never creating a
manifest on a target without that backup's data.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backup.catalogue import list_backups
from backup.destinations import TargetSet
from backup.keys import RecipientPrivateKey, RecipientPublicKey, key_id, rewrap_data_key
from backup.layout import manifest_object
from backup.manifest import SignedManifest, Trusted, sign_manifest
from backup.writer import publish_manifest


@dataclass(frozen=True)
class RotationReport:
    new_key_id: str
    rotated: tuple[str, ...]
    already_current: tuple[str, ...]
    unreadable: tuple[str, ...]
    other_key: tuple[str, ...] = ()  # wrapped neither for the old nor for the new key


def rewrap_manifest(
    signed: SignedManifest,
    old_private: RecipientPrivateKey,
    new_public: RecipientPublicKey,
    signing_key: Ed25519PrivateKey,
) -> SignedManifest:
    """The same backup, its part keys wrapped for `new_public`, signed again."""
    manifest = signed.manifest
    parts = tuple(
        p.model_copy(
            update={"wrapped_key": rewrap_data_key(p.wrapped_key, old_private, new_public)}
        )
        for p in manifest.parts
    )
    updated = manifest.model_copy(update={"parts": parts, "key_id": key_id(new_public)})
    return sign_manifest(type(manifest).model_validate(updated.model_dump()), signing_key)


def rotate_key(
    targets: TargetSet,
    *,
    old_private: RecipientPrivateKey,
    new_public: RecipientPublicKey,
    signing_key: Ed25519PrivateKey,
    trusted: Trusted | None = None,
) -> RotationReport:
    """Re-wrap every committed backup on the primary and publish it to every target."""
    new_id, old_id = key_id(new_public), key_id(old_private.public_key())
    catalogue = list_backups(targets.primary, trusted)
    rotated: list[str] = []
    current: list[str] = []
    other: list[str] = []
    for signed in catalogue.backups:
        backup_id = signed.manifest.id
        if signed.manifest.key_id == new_id:
            current.append(backup_id)
            continue
        if signed.manifest.key_id != old_id:
            other.append(backup_id)
            continue
        holding = [t for t in targets.mirrors if t.size(manifest_object(backup_id)) is not None]
        publish_manifest(
            rewrap_manifest(signed, old_private, new_public, signing_key),
            TargetSet(primary=targets.primary, mirrors=tuple(holding)),
        )
        rotated.append(backup_id)
    return RotationReport(
        new_id, tuple(rotated), tuple(current), catalogue.unreadable, tuple(other)
    )
