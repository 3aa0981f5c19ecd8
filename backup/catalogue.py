"""Reading what a target holds: committed backups (signed manifests) and leftover objects.

Guarantees: only manifests whose signature verifies (against `trusted` when given) are returned
as backups; unreadable ones are reported by name, never silently dropped or deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from backup.errors import ManifestError, TargetError
from backup.layout import backup_id_of, is_manifest, manifest_object
from backup.manifest import SignedManifest, Trusted, parse_signed_manifest
from backup.targets import Target

MAX_MANIFEST_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Catalogue:
    target: str
    backups: tuple[SignedManifest, ...]  # sorted by id, oldest first
    unreadable: tuple[str, ...]  # one line per manifest that failed to parse or verify
    present_ids: frozenset[str]  # every backup id with any object (committed or not)
    objects: tuple[str, ...]

    @property
    def committed_ids(self) -> frozenset[str]:
        ids = {b.manifest.id for b in self.backups}
        ids.update(i for i in (backup_id_of(o) for o in self.objects if is_manifest(o)) if i)
        return frozenset(ids)


def read_all(chunks: Iterable[bytes], limit: int, what: str) -> bytes:
    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) > limit:
            raise ManifestError(f"{what} is larger than {limit} bytes")
    return bytes(data)


def load_manifest(target: Target, backup_id: str, trusted: Trusted | None = None) -> SignedManifest:
    """The verified manifest of `backup_id` on `target`; TargetError if there is none."""
    name = manifest_object(backup_id)
    where = f"manifest of {backup_id} on {target.location.url}"
    if target.size(name) is None:
        raise TargetError(f"no committed backup {backup_id} on {target.location.url}")
    signed = parse_signed_manifest(
        read_all(target.get(name), MAX_MANIFEST_BYTES, where), trusted, where=where
    )
    if signed.manifest.id != backup_id:
        raise ManifestError(f"{where} names backup {signed.manifest.id} instead")
    return signed


def list_backups(target: Target, trusted: Trusted | None = None) -> Catalogue:
    """Everything on `target`: verified backups, unreadable manifests, all backup ids."""
    objects = target.list()
    backups: list[SignedManifest] = []
    unreadable: list[str] = []
    for name in objects:
        backup_id = backup_id_of(name)
        if backup_id is None or not is_manifest(name):
            continue
        try:
            backups.append(load_manifest(target, backup_id, trusted))
        except (ManifestError, TargetError) as exc:
            unreadable.append(str(exc))
    present = frozenset(i for i in (backup_id_of(o) for o in objects) if i is not None)
    return Catalogue(
        target=target.location.url,
        backups=tuple(sorted(backups, key=lambda s: s.manifest.id)),
        unreadable=tuple(unreadable),
        present_ids=present,
        objects=tuple(objects),
    )
