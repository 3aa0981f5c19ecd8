"""A drill checks every restored file against the size and BLAKE3 digest the extraction took
from the authenticated stream: a file altered, added or removed on the scratch disk between
extraction and check fails the drill, naming the file (file:// target, no servers). A drill key
file others may read is refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from backupkit import stored

from backup.catalogue import load_manifest
from backup.errors import IntegrityError
from backup.progress import ignore_progress
from backup.untar import Inventory
from cluster.backups import drill_check
from cluster.backups.drill_check import check_files, load_drill_key, restore_and_check
from cluster.backups.errors import BackupConfigError
from cluster.backups.keyfiles import generate


def flip_a_byte(path: Path) -> None:
    """Change the file's content, not its size."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def test_a_drill_restores_every_part_and_checks_every_file(tmp_path: Path) -> None:
    nodes = ["n1", "n2", "n3"]
    backup_id, source, key, signer = stored(tmp_path, nodes)
    trusted = frozenset({signer})
    signed = load_manifest(source, backup_id, trusted)
    here = tmp_path / "scratch"
    files, size = restore_and_check(backup_id, here, source, signed, key, trusted, ignore_progress)
    assert (files, size) == (2 * len(nodes), len(nodes) * ((3 << 20) + 2))
    for node in nodes:
        original = tmp_path / "data" / node / "segments" / "big.bin"
        assert (here / node / "segments" / "big.bin").read_bytes() == original.read_bytes()


def test_a_file_altered_between_extraction_and_check_fails_the_drill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backup_id, source, key, signer = stored(tmp_path, ["n1", "n2"])
    trusted = frozenset({signer})
    signed = load_manifest(source, backup_id, trusted)
    here = tmp_path / "scratch"

    def altered_first(root: Path, inventory: Inventory, part: str) -> tuple[int, int]:
        if part == "n2":  # the bytes on disk are no longer those authenticated and written
            flip_a_byte(root / "segments" / "big.bin")
        return check_files(root, inventory, part)

    monkeypatch.setattr(drill_check, "check_files", altered_first)
    with pytest.raises(IntegrityError, match=r"part n2: restored file segments/big\.bin differs"):
        restore_and_check(backup_id, here, source, signed, key, trusted, ignore_progress)


def restored(tmp_path: Path) -> tuple[Path, Inventory]:
    """One part restored with its inventory (the drill's extraction)."""
    backup_id, source, key, signer = stored(tmp_path, ["n1"])
    out = tmp_path / "out"
    inventory: Inventory = {}
    drill_check.restore_parts(
        backup_id, {"n1": out}, source, key, frozenset({signer}), ignore_progress, [],
        check=lambda _part, _root, found: inventory.update(found),
    )  # fmt: skip
    return out, inventory


def test_check_files_names_a_file_that_differs_is_extra_or_is_missing(tmp_path: Path) -> None:
    out, inventory = restored(tmp_path)
    assert check_files(out, inventory, "n1") == (2, (3 << 20) + 2)
    (out / "node.txt").write_text("n9")  # same size, other bytes
    with pytest.raises(IntegrityError, match=r"part n1: restored file node\.txt differs"):
        check_files(out, inventory, "n1")
    (out / "node.txt").write_text("n1")
    (out / "planted").write_text("x")
    with pytest.raises(IntegrityError, match="restored file planted is not in the archive"):
        check_files(out, inventory, "n1")
    (out / "planted").unlink()
    (out / "segments" / "big.bin").unlink()
    with pytest.raises(IntegrityError, match=r"restored file segments/big\.bin is missing"):
        check_files(out, inventory, "n1")


def test_a_drill_key_others_may_read_is_refused_and_left_alone(tmp_path: Path) -> None:
    key = tmp_path / "drill.key"
    generate(key, "x25519", protect=False)
    os.chmod(key, 0o640)
    before = key.read_bytes()
    with pytest.raises(BackupConfigError, match=r"drill key .*drill\.key is readable by others"):
        load_drill_key(key)
    assert key.read_bytes() == before and stat.S_IMODE(key.stat().st_mode) == 0o640
    os.chmod(key, 0o600)
    assert load_drill_key(key) is not None
