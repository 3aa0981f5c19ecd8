"""After the fact: verify follows the manifest's recorded targets, rotation never creates a
manifest where the data is not, retention spares other clusters' backups, and a restored data
directory gets its recorded mode back (file:// targets)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from manifest_kit import small_backup

from backup.destinations import open_targets
from backup.engine import (
    ResidencyPolicy,
    RetentionPolicy,
    SignedManifest,
    apply_retention,
    list_backups,
    restore_part_directory,
    rotate_key,
    verify_backup,
)
from backup.keys import generate_private_key
from backup.targets import Target, TargetLocation

EU = ResidencyPolicy("EU")


def test_verify_checks_the_recorded_targets_not_the_configured_ones(
    tmp_path: Path, customer_key: X25519PrivateKey, cluster_signing_key: Ed25519PrivateKey
) -> None:
    old = open_targets(f"file://{tmp_path}/p", [f"file://{tmp_path}/old-mirror"], EU)
    signed = small_backup(old, customer_key, cluster_signing_key)
    # The mirror was replaced since: the new one never held this backup.
    now = open_targets(f"file://{tmp_path}/p", [f"file://{tmp_path}/new-mirror"], EU)
    report = verify_backup(signed.manifest.id, now, trusted=cluster_signing_key.public_key())
    assert report.ok, report.describe()
    assert report.targets == old.urls
    assert report.checked_objects == 2
    # A problem on the old mirror is still found.
    part = tmp_path / "old-mirror" / "data" / signed.manifest.id / "zookeeper.part"
    part.write_bytes(part.read_bytes()[:-1])
    report = verify_backup(signed.manifest.id, now, trusted=cluster_signing_key.public_key())
    first = report.first_problem
    assert first is not None and first.target == old.urls[1]
    assert report.signer == signed.signature.signer


def test_without_a_trusted_signer_verify_opens_no_target_the_manifest_names(
    tmp_path: Path, customer_key: X25519PrivateKey, cluster_signing_key: Ed25519PrivateKey
) -> None:
    """Anyone who can write the bucket can write a manifest: unless its signer was checked,
    the targets it names (endpoints, paths) are never opened."""
    recorded = open_targets(f"file://{tmp_path}/p", [f"file://{tmp_path}/elsewhere"], EU)
    signed = small_backup(recorded, customer_key, cluster_signing_key)
    configured = open_targets(f"file://{tmp_path}/p", [], EU)
    opened: list[str] = []

    def opener(location: TargetLocation) -> Target:
        opened.append(location.url)
        raise AssertionError("a target named by an unchecked manifest was opened")

    report = verify_backup(signed.manifest.id, configured, opener=opener)
    assert opened == [] and report.ok, report.describe()
    assert report.targets == configured.urls


def test_rotation_never_creates_a_manifest_where_the_data_is_not(
    tmp_path: Path, customer_key: X25519PrivateKey, cluster_signing_key: Ed25519PrivateKey
) -> None:
    alone = open_targets(f"file://{tmp_path}/p", [], EU)
    first = small_backup(alone, customer_key, cluster_signing_key)
    stranger = small_backup(alone, X25519PrivateKey.generate(), cluster_signing_key)
    mirrored = open_targets(f"file://{tmp_path}/p", [f"file://{tmp_path}/m"], EU)
    new_key = generate_private_key("x25519")
    report = rotate_key(
        mirrored,
        old_private=customer_key,
        new_public=new_key.public_key(),
        signing_key=cluster_signing_key,
    )
    assert report.rotated == (first.manifest.id,)
    assert report.other_key == (stranger.manifest.id,)
    assert mirrored.mirrors[0].list() == []
    assert verify_backup(first.manifest.id, alone, private_key=new_key).ok


def test_retention_spares_backups_of_another_cluster(
    tmp_path: Path, customer_key: X25519PrivateKey, cluster_signing_key: Ed25519PrivateKey
) -> None:
    targets = open_targets(f"file://{tmp_path}/p", [], EU)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    theirs = small_backup(
        targets, customer_key, cluster_signing_key, cluster="original", created=start
    )
    ours = [
        small_backup(targets, customer_key, cluster_signing_key, created=start + timedelta(days=d))
        for d in range(1, 4)
    ]
    (report,) = apply_retention(targets, RetentionPolicy(keep_last=1), cluster="c1")
    assert set(report.removed) == {m.manifest.id for m in ours[:2]}
    left = {b.manifest.id for b in list_backups(targets.primary).backups}
    assert left == {theirs.manifest.id, ours[-1].manifest.id}


def test_restored_directory_gets_its_recorded_mode(
    tmp_path: Path,
    data_tree: Path,
    run_backup: Callable[..., SignedManifest],
    customer_key: X25519PrivateKey,
) -> None:
    os.chmod(data_tree, 0o750)
    os.chmod(data_tree / "segments", 0o711)
    targets = open_targets(f"file://{tmp_path}/p", [], EU)
    signed = run_backup(targets, data_tree)
    out = tmp_path / "restored"
    restore_part_directory(
        signed.manifest.id, "node-a", out, source=targets.primary, private_key=customer_key
    )
    assert oct(out.stat().st_mode & 0o777) == "0o750"
    assert oct((out / "segments").stat().st_mode & 0o777) == "0o711"
