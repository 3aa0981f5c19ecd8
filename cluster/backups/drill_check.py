"""One restore drill on the drill node: restore into scratch, check, time it, clean up.

Guarantees:
- The backup's manifest must be signed by the cluster's key (the record names it) before
  anything is read; the backup's own recorded targets are opened with the usual residency
  checks (`open_plan`), the first that holds the manifest is restored from.
- With the drill key (a private key file on this node, readable by its owner only): every part
  is restored as `managed backup restore` does it (`backup.restore`): every frame authenticated,
  each part's ciphertext digest, frame count and size matched against the signed manifest, the
  archive extracted safely; then every restored file is read back from the scratch disk and
  its size checked against the authenticated archive's listing, and the ZooKeeper part is parsed.
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

from backup.engine import ProgressEvent, restore_part_bytes, restore_part_directory
from backup.errors import BackupError, IntegrityError
from backup.keys import RecipientPrivateKey
from backup.verify import locate_manifest, verify_part
from cluster.backups import zkdump
from cluster.backups.drills import DRILL_PREFIX, DrillOutcome, DrillRecord
from cluster.backups.errors import BackupConfigError
from cluster.backups.keyfiles import load_private
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


def check_files(root: Path, inventory: dict[str, int], part: str) -> tuple[int, int]:
    """Read every restored regular file back; its size must be the archive's. Returns
    (files, bytes); IntegrityError names the first file that differs or is missing."""
    found: set[str] = set()
    total = 0
    for directory, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            relative = os.path.relpath(path, root)
            size = 0
            with open(path, "rb", buffering=0) as handle:
                while chunk := handle.read(READ_BYTES):
                    size += len(chunk)
            if inventory.get(relative) != size:
                raise IntegrityError(
                    f"part {part}: restored file {relative}: {size} bytes, archive differs",
                    part=part,
                )
            found.add(relative)
            total += size
    missing = sorted(set(inventory) - found)
    if missing:
        raise IntegrityError(f"part {part}: restored file {missing[0]} is missing", part=part)
    return len(found), total


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
        files = size = 0
        for part in signed.manifest.parts:
            on_progress(ProgressEvent("restore", part.name, 0, None))
            if key is None:
                verify_part(source, signed, part, None, on_progress)
                files, size = files + 1, size + part.size_cipher
            elif part.name == ZOOKEEPER_PART:
                data = restore_part_bytes(
                    drill.backup_id, part.name, source=source, private_key=key, trusted=trusted
                )
                zkdump.parse(data)
                files, size = files + 1, size + len(data)
            else:
                listing: dict[str, int] = {}
                restore_part_directory(
                    drill.backup_id,
                    part.name,
                    here / part.name,
                    source=source,
                    private_key=key,
                    trusted=trusted,
                    progress=on_progress,
                    inventory=listing,
                )
                count, restored = check_files(here / part.name, listing, part.name)
                files, size = files + count, size + restored
        rto = clock() - started
    finally:
        shutil.rmtree(here, ignore_errors=True)
    return DrillOutcome(
        node=node, rto=round(rto, 3), bytes=size, files=files, decrypted=key is not None
    )
