"""Verifying a committed backup on every target it was written to.

Guarantees:
- The targets checked are the ones the signed manifest records (`targets`: the primary and the
  mirrors at the time of the backup), not whatever is configured now; the manifest is found on
  the first of the given targets that holds it. A recorded target is opened with the same
  credentials and endpoint rules as any other.
- The report names the manifest's signer (its fingerprint); with `trusted` a manifest signed
  by anyone else is refused before anything is read.
- Without a private key: every part object on the primary and every mirror is read in full and
  its size and SHA-256 compared with the signed manifest, so every stored byte is proven intact.
- With the private key: additionally every frame of every part is decrypted and authenticated,
  and the frame count is checked; the first bad frame is named.
- Mirrors' manifests must be identical to the primary's.
- Problems are collected, not raised: the report lists each one and `first_problem` names the
  first bad part (and frame when known). Plaintext is discarded as it is checked.
- Memory is bounded: each object is fetched and hashed on a thread at most READ_AHEAD chunks
  ahead of the decryption.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from backup.catalogue import load_manifest
from backup.destinations import TargetSet
from backup.errors import BackupError, IntegrityError, TargetError
from backup.frames import decrypt_frames
from backup.keys import RecipientPrivateKey, unwrap_data_key
from backup.layout import part_object
from backup.manifest import Hasher, PartRecord, SignedManifest, Trusted
from backup.progress import ProgressCallback, ProgressEvent, ignore_progress
from backup.readahead import read_ahead
from backup.targets import Target, TargetLocation, open_target, parse_target_url

READ_AHEAD = 8  # chunks (1 MiB each) fetched ahead of the decryption


@dataclass(frozen=True)
class Problem:
    target: str
    part: str | None
    frame: int | None
    message: str


@dataclass(frozen=True)
class VerifyReport:
    backup_id: str
    deep: bool  # frames decrypted and authenticated
    checked_objects: int
    checked_bytes: int
    problems: tuple[Problem, ...]
    signer: str = ""  # fingerprint of the key that signed the manifest
    targets: tuple[str, ...] = ()  # the targets checked: the manifest's recorded ones
    key_id: str = ""  # the public key the backup's data keys are wrapped for

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def describe(self) -> str:
        how = "decrypted and authenticated" if self.deep else "ciphertext digests checked"
        if self.ok:
            return (
                f"backup {self.backup_id}: OK, {self.checked_objects} objects, "
                f"{self.checked_bytes} bytes, {how}"
            )
        first = self.problems[0]
        return f"backup {self.backup_id}: {len(self.problems)} problem(s); first: {first.message}"


class _Hashing:
    def __init__(self, chunks: Iterable[bytes], digest: Hasher) -> None:
        self._chunks = chunks
        self.digest = digest
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.digest.update(chunk)
            self.size += len(chunk)
            yield chunk


def verify_part(
    target: Target,
    signed: SignedManifest,
    record: PartRecord,
    data_key: bytes | None,
    progress: ProgressCallback = ignore_progress,
) -> None:
    """Check one stored part; raise IntegrityError (or TargetError) on the first problem."""
    backup_id = signed.manifest.id
    where = f"{target.location.url}: part {record.name}"
    hashing = _Hashing(target.get(part_object(backup_id, record.name)), record.hasher())

    def reported() -> Iterator[bytes]:
        # Fetching and hashing (BLAKE3 releases the GIL) run on a thread, READ_AHEAD chunks
        # ahead of the decryption.
        for chunk in read_ahead(hashing, READ_AHEAD):
            yield chunk
            progress(
                ProgressEvent(
                    "verify", record.name, hashing.size, record.size_cipher, target.location.url
                )
            )

    frames = 0
    if data_key is None:
        for _ in reported():
            pass
    else:
        try:
            for _ in decrypt_frames(reported(), data_key, backup_id=backup_id, part=record.name):
                frames += 1
        except IntegrityError as exc:
            raise IntegrityError(
                f"{target.location.url}: {exc}", part=exc.part, frame=exc.frame
            ) from exc
    if hashing.size != record.size_cipher:
        raise IntegrityError(
            f"{where}: {hashing.size} bytes stored, manifest says {record.size_cipher}",
            part=record.name,
        )
    if hashing.digest.hexdigest() != record.digest:
        raise IntegrityError(f"{where}: ciphertext digest mismatch", part=record.name)
    if data_key is not None and frames != record.frames:
        raise IntegrityError(
            f"{where}: {frames} frames, manifest says {record.frames}", part=record.name
        )


def locate_manifest(
    targets: Sequence[Target], backup_id: str, trusted: Trusted | None = None
) -> tuple[Target, SignedManifest]:
    """The first target holding backup `backup_id`'s manifest, and that verified manifest."""
    first_error: BackupError | None = None
    for target in targets:
        try:
            return target, load_manifest(target, backup_id, trusted)
        except TargetError as exc:
            first_error = first_error or exc
    assert first_error is not None, "no target given"
    raise first_error


def recorded_targets(
    signed: SignedManifest,
    found_on: Target,
    available: Sequence[Target],
    opener: Callable[[TargetLocation], Target] = open_target,
) -> TargetSet:
    """The targets the manifest records (reusing `available` ones with the same URL), plus the
    one it was found on if that is not among them."""
    by_url = {t.location.url: t for t in (*available, found_on)}
    opened = [by_url.get(url) or opener(parse_target_url(url)) for url in signed.manifest.targets]
    if found_on.location.url not in {t.location.url for t in opened}:
        opened.append(found_on)
    return TargetSet(primary=opened[0], mirrors=tuple(opened[1:]))


def verify_backup(
    backup_id: str,
    targets: TargetSet,
    *,
    private_key: RecipientPrivateKey | None = None,
    trusted: Trusted | None = None,
    progress: ProgressCallback = ignore_progress,
    opener: Callable[[TargetLocation], Target] = open_target,
) -> VerifyReport:
    """Verify backup `backup_id` on every target its manifest records (see module docstring).

    Only a manifest whose signer was checked (`trusted`) may name targets to open; without a
    trusted signer, only the given `targets` are checked."""
    found_on, signed = locate_manifest(targets.all, backup_id, trusted)
    if trusted is not None:
        targets = recorded_targets(signed, found_on, targets.all, opener)
    keys = (
        {r.name: unwrap_data_key(r.wrapped_key, private_key) for r in signed.manifest.parts}
        if private_key is not None
        else {}
    )
    problems: list[Problem] = []
    objects = checked = 0
    for target in targets.all:
        url = target.location.url
        if target is not found_on:
            try:
                if load_manifest(target, backup_id, trusted) != signed:
                    problems.append(Problem(url, None, None, f"{url}: manifest differs"))
            except BackupError as exc:
                problems.append(Problem(url, None, None, str(exc)))
                continue
        for record in signed.manifest.parts:
            try:
                verify_part(target, signed, record, keys.get(record.name), progress)
            except IntegrityError as exc:
                problems.append(Problem(url, exc.part, exc.frame, str(exc)))
            except BackupError as exc:
                problems.append(Problem(url, record.name, None, str(exc)))
            objects += 1
            checked += record.size_cipher
    return VerifyReport(
        backup_id=backup_id,
        deep=private_key is not None,
        checked_objects=objects,
        checked_bytes=checked,
        problems=tuple(problems),
        signer=signed.signature.signer,
        targets=targets.urls,
        key_id=signed.manifest.key_id,
    )
