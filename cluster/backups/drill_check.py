"""One restore drill on the drill node: restore into scratch, check, time it, clean up.

Guarantees:
- The backup's manifest must be signed by the cluster's key (the record names it) before
  anything is read; the backup's own recorded targets are opened with the usual residency
  checks (`open_plan`), the first that holds the manifest is restored from.
- With the drill key (a private key file on this node, readable by its owner only): the node
  parts are restored as `managed backup restore` restores them (`restore.restore_parts`, up to
  PARALLEL_PARTS at once, so the RTO is a restore's): every frame authenticated, each part's
  ciphertext digest, frame count and size matched against the signed manifest, the archive
  extracted safely. The extraction also takes each regular file's size and BLAKE3 digest from
  the authenticated bytes as it writes them (the manifest holds one digest per part, not per
  file); once a part is restored, every file under it is read back from the scratch disk and
  must match both, and no file may be missing or extra. The ZooKeeper part is parsed.
- Without a key: every stored object is read in full and checked against the manifest's
  digests and sizes (`verify_part`); nothing can be decrypted, which the outcome says.
- The RTO is measured from before the manifest is read to the end of the checks. The scratch
  copy (`<scratch>/<drill id>`) is removed whatever happens, and copies an interrupted drill
  left (`<scratch>/drill-*`) are removed before a new one starts.
- `stop()` returning True at any progress step abandons the drill (`DrillAbandoned`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path

import blake3

from backup.engine import ProgressEvent, restore_part_bytes
from backup.errors import BackupError, IntegrityError
from backup.keys import RecipientPrivateKey
from backup.manifest import SignedManifest, Trusted
from backup.targets import Target
from backup.untar import ExtractedFile, Inventory
from backup.verify import locate_manifest, verify_part
from cluster.backups import zkdump
from cluster.backups.drills import DRILL_PREFIX, DrillOutcome, DrillRecord
from cluster.backups.errors import BackupConfigError
from cluster.backups.keyfiles import load_private
from cluster.backups.restore import restore_parts
from cluster.backups.runs import ZOOKEEPER_PART
from cluster.backups.signing import decode_public
from cluster.backups.work import open_plan

READ_BYTES = 1024 * 1024


class DrillAbandoned(BackupError):
    """The drill is no longer running (another leader failed it, or the node stops)."""


def load_drill_key(path: Path) -> RecipientPrivateKey:
    """The drill key; refused if others than its owner may read it (it opens every backup)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise BackupConfigError(f"drill key {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BackupConfigError(f"drill key {path} is readable by others: chmod 600 it")
    return load_private(path)


def remove_leftovers(scratch: Path, keep: str | None = None) -> None:
    """Scratch copies of earlier drills (a node that died mid-drill leaves one)."""
    with contextlib.suppress(FileNotFoundError):
        for entry in scratch.iterdir():
            if entry.name.startswith(DRILL_PREFIX) and entry.name != keep:
                shutil.rmtree(entry, ignore_errors=True)


def read_back(path: str) -> ExtractedFile:
    """The size and BLAKE3 digest of the file now at `path`, read in bounded pieces."""
    hasher = blake3.blake3()
    buffer = bytearray(READ_BYTES)
    size = 0
    with open(path, "rb", buffering=0) as handle, memoryview(buffer) as view:
        while count := handle.readinto(view):
            hasher.update(view[:count])
            size += count
    return ExtractedFile(size, hasher.hexdigest())


def check_files(root: Path, inventory: Inventory, part: str) -> tuple[int, int]:
    """Read every regular file under `root` back; its size and BLAKE3 digest must be those the
    extraction wrote (`inventory`), and every inventoried file must be there. Returns (files,
    bytes); IntegrityError names the first file that differs, is extra or is missing."""
    found: set[str] = set()
    total = 0
    for directory, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            relative = os.path.relpath(path, root)
            expected = inventory.get(relative)
            if expected is None:
                raise IntegrityError(
                    f"part {part}: restored file {relative} is not in the archive", part=part
                )
            now = read_back(path)
            if now != expected:
                raise IntegrityError(
                    f"part {part}: restored file {relative} differs from the authenticated "
                    f"bytes extracted ({now.size} bytes read back, {expected.size} written; "
                    f"digest {'matches' if now.blake3 == expected.blake3 else 'differs'})",
                    part=part,
                )
            found.add(relative)
            total += now.size
    missing = sorted(set(inventory) - found)
    if missing:
        raise IntegrityError(f"part {part}: restored file {missing[0]} is missing", part=part)
    return len(found), total


def verify_parts(
    source: Target, signed: SignedManifest, on_progress: Callable[[ProgressEvent], None]
) -> tuple[int, int]:
    """Without a key: read every part in full against the manifest (`verify_part`). Returns
    (parts, ciphertext bytes)."""
    files = size = 0
    for part in signed.manifest.parts:
        on_progress(ProgressEvent("restore", part.name, 0, None))
        verify_part(source, signed, part, None, on_progress)
        files, size = files + 1, size + part.size_cipher
    return files, size


def restore_and_check(
    backup_id: str,
    here: Path,
    source: Target,
    signed: SignedManifest,
    key: RecipientPrivateKey,
    trusted: Trusted,
    on_progress: Callable[[ProgressEvent], None],
) -> tuple[int, int]:
    """With the key: parse the ZooKeeper part, restore the node parts into `here` in parallel
    as a restore does, each checked file by file (`check_files`) on its worker as soon as it is
    restored, so only the parts in flight hold an inventory. Returns (files, plaintext bytes)."""
    counted: list[tuple[int, int]] = []
    directories: dict[str, Path] = {}
    for part in signed.manifest.parts:
        if part.name != ZOOKEEPER_PART:
            directories[part.name] = here / part.name
            continue
        on_progress(ProgressEvent("restore", part.name, 0, None))
        data = restore_part_bytes(
            backup_id, part.name, source=source, private_key=key, trusted=trusted
        )
        zkdump.parse(data)
        counted.append((1, len(data)))

    def check(part: str, directory: Path, inventory: Inventory) -> None:
        counted.append(check_files(directory, inventory, part))

    restore_parts(backup_id, directories, source, key, trusted, on_progress, [], check=check)
    return sum(c[0] for c in counted), sum(c[1] for c in counted)


def run_drill(
    drill: DrillRecord,
    data_dir: Path,
    stop: Callable[[], bool],
    clock: Callable[[], float] = time.monotonic,
) -> DrillOutcome:
    """Restore (or, without a key, read) the drill's backup and check it; see the module."""
    node = drill.node or ""
    assert drill.plan is not None and drill.backup_id is not None and drill.scratch is not None
    scratch = Path(drill.scratch)
    if scratch.resolve().is_relative_to(data_dir.resolve()):
        raise BackupConfigError(f"drill scratch {scratch} lies inside the node's data directory")
    trusted = decode_public(drill.signing_public_key)
    if trusted is None:
        raise BackupConfigError("the cluster has no signing key: a drill cannot trust a manifest")
    key = load_drill_key(Path(drill.key_file)) if drill.key_file else None

    def on_progress(_event: ProgressEvent) -> None:
        if stop():
            raise DrillAbandoned(f"drill {drill.id} is no longer running; abandoned")

    remove_leftovers(scratch)
    here = scratch / drill.id
    started = clock()
    try:
        here.mkdir(parents=True, mode=0o700)
        source, signed = locate_manifest(open_plan(drill.plan).all, drill.backup_id, trusted)
        if key is None:
            files, size = verify_parts(source, signed, on_progress)
        else:
            files, size = restore_and_check(
                drill.backup_id, here, source, signed, key, trusted, on_progress
            )
        rto = clock() - started
    finally:
        shutil.rmtree(here, ignore_errors=True)
    return DrillOutcome(
        node=node, rto=round(rto, 3), bytes=size, files=files, decrypted=key is not None
    )
