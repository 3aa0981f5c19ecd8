"""Node parts are restored in parallel: all of them arrive intact, and a tampered one stops the
others and is the error reported (file:// target, no servers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from backupkit import stored

from backup.errors import IntegrityError
from backup.layout import part_object
from backup.progress import ignore_progress
from cluster.backups.restore import restore_parts


def test_parts_restore_in_parallel(tmp_path: Path) -> None:
    nodes = ["n1", "n2", "n3"]
    backup_id, source, key, signer = stored(tmp_path, nodes)
    out = {n: tmp_path / "out" / n for n in nodes}
    restored: list[Path] = []
    restore_parts(backup_id, out, source, key, frozenset({signer}), ignore_progress, restored)
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
