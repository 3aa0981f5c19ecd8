"""Node parts are restored in parallel: all of them arrive intact, and a tampered one stops the
others and is the error reported (file:// target, no servers)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from backup.destinations import open_targets
from backup.engine import BackupContext, commit_manifest, new_backup_id, write_directory_part
from backup.errors import IntegrityError
from backup.layout import part_object
from backup.manifest import signer_id
from backup.progress import ignore_progress
from backup.residency import ResidencyPolicy
from backup.targets import Target
from cluster.backups.restore import restore_parts


def stored(tmp_path: Path, nodes: list[str]) -> tuple[str, Target, X25519PrivateKey, str]:
    targets = open_targets(f"file://{tmp_path}/primary", [], ResidencyPolicy("EU"))
    key, signer = X25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    created = datetime.now(UTC)
    ctx = BackupContext(new_backup_id(created), key.public_key())
    parts = []
    for node in nodes:
        source = tmp_path / "data" / node
        (source / "segments").mkdir(parents=True)
        (source / "segments" / "big.bin").write_bytes(os.urandom(3 << 20))
        (source / "node.txt").write_text(node)
        parts.append(write_directory_part(source, ctx=ctx, part=node, node=node, targets=targets))
    commit_manifest(
        ctx=ctx, cluster="c", epoch=1, created=created, parts=parts, targets=targets,
        signing_key=signer,
    )  # fmt: skip
    return ctx.backup_id, targets.primary, key, signer_id(signer.public_key())


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
