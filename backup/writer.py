"""Writing a backup: each node's parts, then the leader's manifest commit.

Guarantees:
- `write_part` encrypts the stream once (fresh random data key per part, wrapped for the
  customer's public key, then forgotten) and sends the same ciphertext to the primary and every
  mirror concurrently, hashing it on the way, with memory bounded whatever the part's size.
  The stages overlap on their own threads: reading the plaintext (READ_AHEAD frames ahead),
  sealing (the calling thread), hashing, and each target's writes (QUEUE_DEPTH frames behind).
  Sealing allocates nothing per frame: each frame is sealed into a recycled buffer that is
  reused only once every consumer let go of it (`backup.frames.SealedBuffers`).
  It returns a `PartRecord` only if every target stored the complete object; otherwise it
  removes what it can of the part and raises.
- `commit_manifest` checks every part exists with its recorded size on every target, calls
  `before_publish` (the leader's fence check: if it raises, nothing is written), then writes
  the signed manifest to the mirrors and the primary last. The manifest is the commit: a backup
  without one is invisible to list/restore and is cleaned up as an orphan later.
- `withdraw_manifest` takes a commit back (primary first), for a leader whose commit could not
  be recorded.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backup.archive import DirectoryStream, tree_totals
from backup.destinations import TargetSet
from backup.errors import BackupError, ManifestError, TargetError
from backup.fanout import FanOut
from backup.frames import DEFAULT_FRAME_SIZE, FrameEncryptor, ciphertext_size
from backup.keys import DATA_KEY_BYTES, RandomBytes, RecipientPublicKey, key_id, wrap_data_key
from backup.layout import check_backup_id, check_part_name, manifest_object, part_object
from backup.manifest import (
    WRITTEN_DIGEST,
    BackupManifest,
    PartRecord,
    SignedManifest,
    new_hasher,
    sign_manifest,
)
from backup.progress import ProgressCallback, ProgressEvent, ignore_progress
from backup.streams import Chunk, Readable
from backup.throttle import TokenBucket

QUEUE_DEPTH = 4  # chunks per consumer: one per sealed frame
READ_AHEAD = 4  # plaintext frames read ahead of the sealing


@dataclass(frozen=True)
class BackupContext:
    """What every node needs to write its parts of one backup (no secrets in here)."""

    backup_id: str
    recipient: RecipientPublicKey
    frame_size: int = DEFAULT_FRAME_SIZE

    def __post_init__(self) -> None:
        check_backup_id(self.backup_id)

    @property
    def key_id(self) -> str:
        return key_id(self.recipient)


class _Hasher:
    """A fan-out consumer that hashes the ciphertext while the targets store it."""

    def __init__(self) -> None:
        self.digest = new_hasher(WRITTEN_DIGEST)

    def __call__(self, chunks: Iterable[Chunk]) -> int:
        size = 0
        for chunk in chunks:
            self.digest.update(chunk)
            size += memoryview(chunk).nbytes
        return size


def write_part(
    source: Readable,
    *,
    ctx: BackupContext,
    part: str,
    node: str,
    targets: TargetSet,
    progress: ProgressCallback = ignore_progress,
    total_bytes: int | None = None,
    limiter: TokenBucket | None = None,
    rng: RandomBytes = os.urandom,
    expected_bytes: int | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> PartRecord:
    """Encrypt `source` as part `part` of backup `ctx.backup_id` onto every target.

    `total_bytes` is the plaintext total shown by progress; `expected_bytes` (default: the same)
    the plaintext size to plan storage for (S3 part sizes), preferably an estimate from above.
    Once `cancelled()` is true the write fails (`FanOutAborted`) and stores nothing, even if
    every chunk was already sealed and only a throttled target is still writing.
    """
    name = part_object(ctx.backup_id, check_part_name(part))
    planned = expected_bytes if expected_bytes is not None else total_bytes
    size_hint = None if planned is None else ciphertext_size(planned, ctx.frame_size)
    data_key = rng(DATA_KEY_BYTES)
    wrapped = wrap_data_key(data_key, ctx.recipient, rng)
    encryptor = FrameEncryptor(
        source,
        data_key,
        backup_id=ctx.backup_id,
        part=part,
        frame_size=ctx.frame_size,
        ahead=READ_AHEAD,
    )
    del data_key

    def reported() -> Iterator[Chunk]:
        for chunk in encryptor:
            yield chunk
            progress(ProgressEvent("write", part, encryptor.plain_bytes, total_bytes))

    hasher = _Hasher()
    consumers: list[tuple[str, Callable[[Iterable[Chunk]], int]]] = [(WRITTEN_DIGEST, hasher)]
    consumers += [
        (t.location.url, functools.partial(t.put, name, size_hint=size_hint)) for t in targets.all
    ]
    fanout = FanOut(
        consumers,
        depth=QUEUE_DEPTH,
        limiters=[None, *([limiter] * len(targets.all))],
        cancelled=cancelled,
    )
    try:
        results = fanout.run(reported())
    except BaseException:
        _remove_quietly(targets, name)
        raise
    finally:
        encryptor.close()
    size = results[0]
    for target, stored in zip(targets.all, results[1:], strict=True):
        if stored != size:
            _remove_quietly(targets, name)
            raise TargetError(
                f"{target.location.url}: stored {stored} bytes of {name}, expected {size}"
            )
    return PartRecord(
        name=part,
        node=node,
        size_plain=encryptor.plain_bytes,
        size_cipher=size,
        frames=encryptor.frames,
        wrapped_key=wrapped,
        **{WRITTEN_DIGEST: hasher.digest.hexdigest()},
    )


def write_directory_part(
    directory: Path,
    *,
    ctx: BackupContext,
    part: str,
    node: str,
    targets: TargetSet,
    progress: ProgressCallback = ignore_progress,
    limiter: TokenBucket | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    leave_out: Collection[str] = (),
) -> PartRecord:
    """`write_part` of a node data directory as a deterministic tar (see backup.archive),
    without the entries directly under it that `leave_out` names.

    The progress total is the sum of the regular files' sizes (the tar adds headers); storage
    is planned for the tar's estimated size."""
    with DirectoryStream(directory, leave_out) as stream:
        files, archive = tree_totals(stream.tree)
        return write_part(
            stream,
            ctx=ctx,
            part=part,
            node=node,
            targets=targets,
            progress=progress,
            total_bytes=files,
            limiter=limiter,
            expected_bytes=archive,
            cancelled=cancelled,
        )


def _remove_quietly(targets: TargetSet, name: str) -> None:
    for target in targets.all:
        with contextlib.suppress(BackupError, OSError):
            target.delete(name)


def commit_manifest(
    *,
    ctx: BackupContext,
    cluster: str,
    epoch: int,
    created: datetime,
    parts: Sequence[PartRecord],
    targets: TargetSet,
    signing_key: Ed25519PrivateKey,
    missing_nodes: Sequence[str] = (),
    before_publish: Callable[[], None] | None = None,
) -> SignedManifest:
    """Check every part on every target, then write the signed manifest (mirrors first)."""
    if not parts:
        raise ManifestError(f"backup {ctx.backup_id} has no parts; nothing to commit")
    for record in parts:
        if record.wrapped_key.key_id != ctx.key_id:
            raise ManifestError(f"part {record.name} is wrapped for another key")
        name = part_object(ctx.backup_id, record.name)
        for target in targets.all:
            size = target.size(name)
            if size != record.size_cipher:
                found = "missing" if size is None else f"{size} bytes"
                raise TargetError(
                    f"{target.location.url}: part {record.name} is {found}, "
                    f"expected {record.size_cipher} bytes; backup {ctx.backup_id} not committed"
                )
    manifest = BackupManifest(
        id=ctx.backup_id,
        cluster=cluster,
        created=created,
        epoch=epoch,
        key_id=ctx.key_id,
        parts=tuple(parts),
        targets=targets.urls,
        missing_nodes=tuple(sorted(missing_nodes)),
    )
    signed = sign_manifest(manifest, signing_key)
    if before_publish is not None:
        before_publish()
    publish_manifest(signed, targets)
    return signed


def withdraw_manifest(backup_id: str, targets: TargetSet) -> list[str]:
    """Delete a manifest everywhere, the primary first; the targets where that failed."""
    name = manifest_object(backup_id)
    failed: list[str] = []
    for target in (targets.primary, *targets.mirrors):
        try:
            target.delete(name)
        except (BackupError, OSError) as exc:
            failed.append(f"{target.location.url}: {exc}")
    return failed


def publish_manifest(signed: SignedManifest, targets: TargetSet) -> None:
    """Write (or replace) a manifest on every target, the primary last.

    A first commit that fails part-way is undone; a replacement (key rotation) that fails
    leaves some targets with the old, still valid manifest and raises.
    """
    name = manifest_object(signed.manifest.id)
    body = signed.to_json()
    existed = targets.primary.size(name) is not None
    written: list[str] = []
    try:
        for target in (*targets.mirrors, targets.primary):
            target.put(name, [body])
            written.append(target.location.url)
    except BaseException:
        if not existed:
            for target in targets.all:
                if target.location.url in written:
                    with contextlib.suppress(BackupError, OSError):
                        target.delete(name)
        raise
