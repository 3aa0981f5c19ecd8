"""Node parts are restored in parallel (all three in flight at once): all of them arrive
intact, and a tampered one stops the others and is the error reported (file:// target, no
servers)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from backupkit import stored

from backup.errors import IntegrityError
from backup.layout import part_object
from backup.progress import ignore_progress
from backup.untar import Inventory
from cluster.backups.restore import restore_parts


def test_parts_restore_in_parallel(tmp_path: Path) -> None:
    nodes = ["n1", "n2", "n3"]
    backup_id, source, key, signer = stored(tmp_path, nodes)
    out = {n: tmp_path / "out" / n for n in nodes}
    restored: list[Path] = []
    # Each part's check (on its worker, once the part is restored) waits for the other two:
    # restored one after another, the barrier would break.
    together = threading.Barrier(len(nodes), timeout=10)

    def check(_part: str, _directory: Path, _inventory: Inventory) -> None:
        together.wait()

    trusted = frozenset({signer})
    restore_parts(backup_id, out, source, key, trusted, ignore_progress, restored, check=check)
    assert sorted(restored) == sorted(out.values())
    for node, directory in out.items():
        original = tmp_path / "data" / node / "segments" / "big.bin"
        assert (directory / "segments" / "big.bin").read_bytes() == original.read_bytes()


def test_a_tampered_part_stops_the_others_and_is_the_error(tmp_path: Path) -> None:
    nodes = ["n1", "n2", "n3"]
    backup_id, source, key, signer = stored(tmp_path, nodes)
    stored_at = tmp_path / "primary" / part_object(backup_id, "n2")
    data = bytearray(stored_at.read_bytes())
    data[len(data) // 2] ^= 1
    stored_at.write_bytes(bytes(data))
    out = {n: tmp_path / "out" / n for n in nodes}
    restored: list[Path] = []
    with pytest.raises(IntegrityError, match="part n2"):
        restore_parts(backup_id, out, source, key, frozenset({signer}), ignore_progress, restored)
    assert not out["n2"].exists()
    assert all(out[n].exists() == (out[n] in restored) for n in nodes)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no staging
