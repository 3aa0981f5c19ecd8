"""Restoring parts of a committed backup, never exposing unauthenticated bytes.

Guarantees:
- A directory part is extracted into a hidden staging directory next to the destination while
  its frames are decrypted; the staging directory is renamed into place only after every frame
  authenticated, the frame count, size and ciphertext digest matched the signed manifest and
  the tar extracted safely. On any failure the staging directory is removed and the destination
  is untouched (it must be absent or an empty directory to begin with).
- `restore_part_bytes` returns a small part (the ZooKeeper dump) only after the same checks.
- Memory is bounded per part: one frame in flight, decrypted in place into pooled buffers.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from backup.atomic import fsync_directory
from backup.catalogue import load_manifest
from backup.errors import ConfigError, IntegrityError
from backup.frames import decrypt_frames
from backup.keys import RecipientPrivateKey, unwrap_data_key
from backup.layout import part_object
from backup.manifest import PartRecord, SignedManifest, Trusted
from backup.progress import ProgressCallback, ProgressEvent, ignore_progress
from backup.streams import ChunkReader
from backup.targets import Target
from backup.untar import Inventory, extract_archive

MAX_BYTES_PART = 256 * 1024 * 1024


class _CheckedPlaintext:
    """Plaintext of one part; `finish()` raises unless everything about it checked out."""

    def __init__(
        self,
        target: Target,
        signed: SignedManifest,
        record: PartRecord,
        private_key: RecipientPrivateKey,
        progress: ProgressCallback,
    ) -> None:
        self._target = target
        self._record = record
        self._progress = progress
        self._backup_id = signed.manifest.id
        self._data_key = unwrap_data_key(record.wrapped_key, private_key)
        self._digest = record.hasher()
        self._cipher_bytes = 0
        self.plain_bytes = 0
        self.frames = 0

    def _ciphertext(self) -> Iterator[bytes]:
        for chunk in self._target.get(part_object(self._backup_id, self._record.name)):
            self._digest.update(chunk)
            self._cipher_bytes += len(chunk)
            yield chunk

    def __iter__(self) -> Iterator[memoryview]:
        # One thread per part: opening frames on a thread ahead of the extraction cost more
        # CPU (GIL hand-offs) than it saved on this 2-core machine (docs/benchmarks.md).
        frames = decrypt_frames(
            self._ciphertext(), self._data_key, backup_id=self._backup_id, part=self._record.name
        )
        for plaintext in frames:
            self.frames += 1
            self.plain_bytes += len(plaintext)
            yield plaintext
            self._progress(
                ProgressEvent(
                    "restore", self._record.name, self.plain_bytes, self._record.size_plain
                )
            )

    def finish(self) -> None:
        name = self._record.name
        if self._digest.hexdigest() != self._record.digest:
            raise IntegrityError(
                f"part {name}: ciphertext digest does not match the manifest", part=name
            )
        if self.frames != self._record.frames or self.plain_bytes != self._record.size_plain:
            raise IntegrityError(
                f"part {name}: frame count or size differs from the manifest", part=name
            )


def restore_part_directory(
    backup_id: str,
    part: str,
    destination: Path,
    *,
    source: Target,
    private_key: RecipientPrivateKey,
    trusted: Trusted | None = None,
    progress: ProgressCallback = ignore_progress,
    inventory: Inventory | None = None,
) -> PartRecord:
    """Restore a directory part into `destination` (absent or empty); all or nothing.
    `inventory`, when given, receives every restored regular file's size and the BLAKE3 digest
    of the authenticated bytes written for it (`extract_archive`); without it nothing is hashed."""
    destination = destination.absolute()
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise ConfigError(f"restore destination {destination} must be absent or an empty directory")
    signed = load_manifest(source, backup_id, trusted)
    record = signed.manifest.part(part)
    plaintext = _CheckedPlaintext(source, signed, record, private_key, progress)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.with_name(f".{destination.name}.restore-{secrets.token_hex(6)}")
    staging.mkdir(mode=0o700)
    try:
        reader = ChunkReader(plaintext)
        extract_archive(reader, staging, inventory)
        _drain(reader)  # tar stops at its end marker; the remaining frames must still be checked
        plaintext.finish()
        if destination.exists():
            destination.rmdir()
        os.rename(staging, destination)
        fsync_directory(destination.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
        raise
    return record


def _drain(reader: ChunkReader) -> None:
    while reader.read(1024 * 1024):
        pass


def restore_part_bytes(
    backup_id: str,
    part: str,
    *,
    source: Target,
    private_key: RecipientPrivateKey,
    trusted: Trusted | None = None,
) -> bytes:
    """The plaintext of a small part (at most 256 MiB), returned only once fully checked."""
    signed = load_manifest(source, backup_id, trusted)
    record = signed.manifest.part(part)
    if record.size_plain > MAX_BYTES_PART:
        raise ConfigError(f"part {part} is too large to restore into memory; restore it to disk")
    plaintext = _CheckedPlaintext(source, signed, record, private_key, ignore_progress)
    data = b"".join(plaintext)
    plaintext.finish()
    return data
