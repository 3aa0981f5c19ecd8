"""Tampering with stored backups is detected by verify and stops restore (file:// target)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from backup.destinations import TargetSet, open_targets
from backup.engine import (
    ResidencyPolicy,
    SignedManifest,
    restore_part_directory,
    verify_backup,
)
from backup.errors import IntegrityError, KeyFileError, ManifestError
from backup.frames import split_frames


@pytest.fixture
def stored(
    tmp_path: Path, data_tree: Path, run_backup: Callable[..., SignedManifest]
) -> tuple[TargetSet, SignedManifest, Path]:
    targets = open_targets(
        f"file://{tmp_path}/primary", [f"file://{tmp_path}/mirror"], ResidencyPolicy("EU")
    )
    signed = run_backup(targets, data_tree)
    part = tmp_path / "primary" / "data" / signed.manifest.id / "node-a.part"
    assert len(split_frames(part.read_bytes())[1]) >= 4
    return targets, signed, part


def assert_restore_refused(
    targets: TargetSet,
    signed: SignedManifest,
    key: X25519PrivateKey,
    tmp_path: Path,
    error: type[Exception] = IntegrityError,
    match: str | None = None,
) -> None:
    destination = tmp_path / "restore-here"
    with pytest.raises(error, match=match):
        restore_part_directory(
            signed.manifest.id, "node-a", destination, source=targets.primary, private_key=key
        )
    assert not destination.exists()
    assert [p.name for p in tmp_path.iterdir() if "restore" in p.name] == []


def test_flipped_bit(
    stored: tuple[TargetSet, SignedManifest, Path],
    customer_key: X25519PrivateKey,
    tmp_path: Path,
) -> None:
    targets, signed, part = stored
    blob = bytearray(part.read_bytes())
    blob[len(blob) // 2] ^= 0x04
    part.write_bytes(bytes(blob))

    shallow = verify_backup(signed.manifest.id, targets)
    assert not shallow.ok
    first = shallow.first_problem
    assert first is not None and first.part == "node-a" and first.target == targets.urls[0]
    assert "digest mismatch" in first.message
    assert len(shallow.problems) == 1  # the mirror is intact

    deep = verify_backup(signed.manifest.id, targets, private_key=customer_key)
    first = deep.first_problem
    assert first is not None and first.part == "node-a" and first.frame is not None
    assert f"frame {first.frame} failed authentication" in first.message
    assert_restore_refused(targets, signed, customer_key, tmp_path, match="failed authentication")


def test_reordered_frames(
    stored: tuple[TargetSet, SignedManifest, Path],
    customer_key: X25519PrivateKey,
    tmp_path: Path,
) -> None:
    targets, signed, part = stored
    header, frames = split_frames(part.read_bytes())
    frames[1], frames[2] = frames[2], frames[1]
    part.write_bytes(header + b"".join(frames))
    deep = verify_backup(signed.manifest.id, targets, private_key=customer_key)
    first = deep.first_problem
    assert first is not None and (first.part, first.frame) == ("node-a", 1)
    assert_restore_refused(targets, signed, customer_key, tmp_path, match="frame 1")


def test_truncated_part(
    stored: tuple[TargetSet, SignedManifest, Path],
    customer_key: X25519PrivateKey,
    tmp_path: Path,
) -> None:
    targets, signed, part = stored
    header, frames = split_frames(part.read_bytes())
    part.write_bytes(header + b"".join(frames[:-1]))
    shallow = verify_backup(signed.manifest.id, targets)
    assert shallow.first_problem is not None
    assert "bytes stored, manifest says" in shallow.first_problem.message
    deep = verify_backup(signed.manifest.id, targets, private_key=customer_key)
    assert deep.first_problem is not None and "truncated" in deep.first_problem.message
    assert_restore_refused(targets, signed, customer_key, tmp_path, match="truncated")


def test_frame_spliced_from_another_backup(
    stored: tuple[TargetSet, SignedManifest, Path],
    run_backup: Callable[..., SignedManifest],
    data_tree: Path,
    customer_key: X25519PrivateKey,
    tmp_path: Path,
) -> None:
    targets, signed, part = stored
    other = run_backup(targets, data_tree)
    other_part = part.parent.parent / other.manifest.id / "node-a.part"
    header, frames = split_frames(part.read_bytes())
    frames[2] = split_frames(other_part.read_bytes())[1][2]
    part.write_bytes(header + b"".join(frames))
    deep = verify_backup(signed.manifest.id, targets, private_key=customer_key)
    assert deep.first_problem is not None and deep.first_problem.frame == 2
    assert verify_backup(other.manifest.id, targets, private_key=customer_key).ok
    assert_restore_refused(targets, signed, customer_key, tmp_path, match="frame 2")


def test_whole_part_swapped_with_another_backup(
    stored: tuple[TargetSet, SignedManifest, Path],
    run_backup: Callable[..., SignedManifest],
    data_tree: Path,
    customer_key: X25519PrivateKey,
    tmp_path: Path,
) -> None:
    targets, signed, part = stored
    other = run_backup(targets, data_tree)
    part.write_bytes((part.parent.parent / other.manifest.id / "node-a.part").read_bytes())
    assert not verify_backup(signed.manifest.id, targets).ok
    assert_restore_refused(targets, signed, customer_key, tmp_path)


def test_wrong_key(
    stored: tuple[TargetSet, SignedManifest, Path],
    tmp_path: Path,
) -> None:
    targets, signed, _ = stored
    stranger = X25519PrivateKey.generate()
    with pytest.raises(KeyFileError, match="wrong private key"):
        verify_backup(signed.manifest.id, targets, private_key=stranger)
    assert_restore_refused(targets, signed, stranger, tmp_path, KeyFileError, "wrong private key")


def test_altered_manifest(
    stored: tuple[TargetSet, SignedManifest, Path],
    customer_key: X25519PrivateKey,
    cluster_signing_key: Ed25519PrivateKey,
    tmp_path: Path,
) -> None:
    targets, signed, _ = stored
    manifest = tmp_path / "primary" / "manifests" / f"{signed.manifest.id}.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"epoch":7', b'"epoch":8'))
    with pytest.raises(ManifestError, match="signature does not verify"):
        verify_backup(signed.manifest.id, targets)
    assert_restore_refused(targets, signed, customer_key, tmp_path, ManifestError)


def test_tampered_mirror_only(
    stored: tuple[TargetSet, SignedManifest, Path],
    customer_key: X25519PrivateKey,
    tmp_path: Path,
) -> None:
    targets, signed, _ = stored
    mirror_part = tmp_path / "mirror" / "data" / signed.manifest.id / "zookeeper.part"
    blob = bytearray(mirror_part.read_bytes())
    blob[-1] ^= 0x80
    mirror_part.write_bytes(bytes(blob))
    report = verify_backup(signed.manifest.id, targets, private_key=customer_key)
    assert [(p.target, p.part, p.frame) for p in report.problems] == [
        (targets.urls[1], "zookeeper", 0)
    ]
