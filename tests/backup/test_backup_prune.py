"""Retention, orphan clean-up and key rotation on real targets (file:// and S3)."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from manifest_kit import small_backup

from backup.destinations import TargetSet, open_targets
from backup.engine import (
    BackupContext,
    ResidencyPolicy,
    RetentionPolicy,
    apply_retention,
    list_backups,
    new_backup_id,
    restore_part_bytes,
    rotate_key,
    verify_backup,
    write_part,
)
from backup.errors import KeyFileError
from backup.keys import generate_private_key, key_id

EU = ResidencyPolicy("EU")


def failed_backup(targets: TargetSet, key: X25519PrivateKey, created: datetime) -> str:
    """Parts written, never committed (the leader died)."""
    ctx = BackupContext(new_backup_id(created), key.public_key())
    write_part(io.BytesIO(b"lost"), ctx=ctx, part="zookeeper", node="n1", targets=targets)
    return ctx.backup_id


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_retention_and_orphans(
    kind: str,
    tmp_path: Path,
    new_bucket: Callable[..., str],
    customer_key: X25519PrivateKey,
    cluster_signing_key: Ed25519PrivateKey,
) -> None:
    if kind == "file":
        targets = open_targets(f"file://{tmp_path}/p", [f"file://{tmp_path}/m"], EU)
    else:
        targets = open_targets(new_bucket("eu-west-1"), [new_bucket("eu-central-1")], EU)
    start = datetime(2025, 1, 1, 2, tzinfo=UTC)
    made = [
        small_backup(targets, customer_key, cluster_signing_key, start + timedelta(days=d))
        for d in range(6)
    ]
    orphan = failed_backup(targets, customer_key, start + timedelta(days=2, hours=5))
    running = failed_backup(targets, customer_key, start + timedelta(days=9))  # still writing

    reports = apply_retention(targets, RetentionPolicy(keep_last=2, keep_weekly=3))
    assert len(reports) == 2
    kept_ids = {m.manifest.id for m in made[-2:]}
    for report, target in zip(reports, targets.all, strict=True):
        assert report.orphans_removed == (orphan,)
        assert set(report.removed) == {m.manifest.id for m in made[:-2]} - {made[0].manifest.id}
        catalogue = list_backups(target, cluster_signing_key.public_key())
        remaining = {b.manifest.id for b in catalogue.backups}
        # Weeks 2 and 1 use two weekly counts; the third keeps the oldest (restic's rule).
        assert remaining == kept_ids | {made[0].manifest.id}
        assert catalogue.present_ids == remaining | {running}
    for backup_id in kept_ids:
        assert verify_backup(backup_id, targets).ok


def test_dry_run_deletes_nothing(
    tmp_path: Path, customer_key: X25519PrivateKey, cluster_signing_key: Ed25519PrivateKey
) -> None:
    targets = open_targets(f"file://{tmp_path}/p", [], EU)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for d in range(3):
        small_backup(targets, customer_key, cluster_signing_key, start + timedelta(days=d))
    before = targets.primary.list()
    (report,) = apply_retention(targets, RetentionPolicy(keep_last=1), dry_run=True)
    assert len(report.removed) == 2 and report.objects_deleted == 0
    assert targets.primary.list() == before


def test_key_rotation_rewraps_only(
    tmp_path: Path, customer_key: X25519PrivateKey, cluster_signing_key: Ed25519PrivateKey
) -> None:
    targets = open_targets(f"file://{tmp_path}/p", [f"file://{tmp_path}/m"], EU)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    made = [
        small_backup(targets, customer_key, cluster_signing_key, start + timedelta(days=d))
        for d in range(2)
    ]
    data_before = {
        name: (tmp_path / "p" / name).read_bytes()
        for name in targets.primary.list()
        if name.startswith("data/")
    }
    new_key = generate_private_key("rsa-oaep-sha256")
    assert isinstance(new_key, rsa.RSAPrivateKey)
    report = rotate_key(
        targets,
        old_private=customer_key,
        new_public=new_key.public_key(),
        signing_key=cluster_signing_key,
    )
    assert sorted(report.rotated) == sorted(m.manifest.id for m in made)
    again = rotate_key(
        targets,
        old_private=customer_key,
        new_public=new_key.public_key(),
        signing_key=cluster_signing_key,
    )
    assert again.rotated == () and len(again.already_current) == 2
    for name, blob in data_before.items():
        assert (tmp_path / "p" / name).read_bytes() == blob  # ciphertext untouched
    for signed in made:
        backup_id = signed.manifest.id
        assert verify_backup(backup_id, targets, private_key=new_key).ok
        restored = restore_part_bytes(
            backup_id, "zookeeper", source=targets.mirrors[0], private_key=new_key
        )
        assert restored == signed.manifest.created.isoformat().encode()
        with pytest.raises(KeyFileError, match="wrong private key"):
            restore_part_bytes(
                backup_id, "zookeeper", source=targets.primary, private_key=customer_key
            )
        catalogue = list_backups(targets.mirrors[0], cluster_signing_key.public_key())
        assert {b.manifest.key_id for b in catalogue.backups} == {key_id(new_key.public_key())}
