"""Backup, verify and restore, bit-exact, on file:// and on real S3 endpoints with a mirror."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import blake3
import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from backup import writer
from backup.destinations import TargetSet, open_targets
from backup.engine import (
    BackupContext,
    ProgressEvent,
    ResidencyPolicy,
    SignedManifest,
    list_backups,
    restore_part_bytes,
    restore_part_directory,
    verify_backup,
    write_part,
)
from backup.errors import TargetError
from backup.layout import part_object
from backup.manifest import sign_manifest
from backup.targets import S3Location, S3Target
from backup.throttle import TokenBucket
from backup.writer import publish_manifest

EU = ResidencyPolicy("EU")


RoundTrip = Callable[[TargetSet, SignedManifest, Path], None]


@pytest.fixture
def check_round_trip(
    tmp_path: Path,
    customer_key: X25519PrivateKey,
    cluster_signing_key: Ed25519PrivateKey,
    digest_of: Callable[[Path], dict[str, str]],
) -> RoundTrip:
    """List, verify (with and without the key) and restore from every target, bit-exact."""

    def check(targets: TargetSet, signed: SignedManifest, tree: Path) -> None:
        backup_id = signed.manifest.id
        catalogue = list_backups(targets.primary, cluster_signing_key.public_key())
        assert [b.manifest.id for b in catalogue.backups] == [backup_id]
        shallow = verify_backup(backup_id, targets, trusted=cluster_signing_key.public_key())
        assert shallow.ok, shallow.describe()
        assert shallow.checked_objects == 2 * len(targets.all)
        deep = verify_backup(backup_id, targets, private_key=customer_key)
        assert deep.ok and deep.deep, deep.describe()
        for i, source in enumerate(targets.all):
            events: list[ProgressEvent] = []
            out = tmp_path / f"restored-{i}"
            restore_part_directory(
                backup_id,
                "node-a",
                out,
                source=source,
                private_key=customer_key,
                trusted=cluster_signing_key.public_key(),
                progress=events.append,
            )
            assert digest_of(out) == digest_of(tree)
            assert events and events[-1].done_bytes == signed.manifest.part("node-a").size_plain
            zk = restore_part_bytes(backup_id, "zookeeper", source=source, private_key=customer_key)
            assert json.loads(zk) == {"/managed/clusters/c1/config": "{}"}

    return check


def test_file_target_with_mirror(
    tmp_path: Path,
    data_tree: Path,
    run_backup: Callable[..., SignedManifest],
    check_round_trip: RoundTrip,
) -> None:
    targets = open_targets(f"file://{tmp_path}/primary", [f"file://{tmp_path}/mirror"], EU)
    signed = run_backup(targets, data_tree)
    assert signed.manifest.targets == targets.urls
    assert (tmp_path / "primary" / "manifests" / f"{signed.manifest.id}.json").exists()
    check_round_trip(targets, signed, data_tree)


def test_parts_carry_the_blake3_of_the_stored_object(
    tmp_path: Path, data_tree: Path, run_backup: Callable[..., SignedManifest]
) -> None:
    targets = open_targets(f"file://{tmp_path}/primary", [], EU)
    signed = run_backup(targets, data_tree)
    assert signed.manifest.format == 2 and b'"sha256"' not in signed.to_json()
    for record in signed.manifest.parts:
        stored = tmp_path / "primary" / part_object(signed.manifest.id, record.name)
        assert record.blake3 == blake3.blake3(stored.read_bytes()).hexdigest()


def test_a_format_1_backup_with_sha256_digests_still_verifies_and_restores(
    tmp_path: Path,
    data_tree: Path,
    run_backup: Callable[..., SignedManifest],
    check_round_trip: RoundTrip,
    cluster_signing_key: Ed25519PrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the writer stored before manifest format 2: SHA-256 part digests, format 1."""
    monkeypatch.setattr(writer, "WRITTEN_DIGEST", "sha256")
    targets = open_targets(f"file://{tmp_path}/primary", [f"file://{tmp_path}/mirror"], EU)
    written = run_backup(targets, data_tree)
    old = sign_manifest(written.manifest.model_copy(update={"format": 1}), cluster_signing_key)
    publish_manifest(old, targets)
    data = old.to_json()
    assert b'"format":1' in data and b'"sha256"' in data and b'"blake3"' not in data
    check_round_trip(targets, old, data_tree)

    part = tmp_path / "primary" / part_object(old.manifest.id, "node-a")
    blob = bytearray(part.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    part.write_bytes(bytes(blob))
    report = verify_backup(old.manifest.id, targets, trusted=cluster_signing_key.public_key())
    assert report.first_problem is not None
    assert "digest mismatch" in report.first_problem.message


def test_s3_target_with_mirror_in_another_region(
    data_tree: Path,
    new_bucket: Callable[..., str],
    run_backup: Callable[..., SignedManifest],
    check_round_trip: RoundTrip,
) -> None:
    # Ireland -> Frankfurt, each on its own endpoint; the big file makes a multipart upload.
    (data_tree / "segments" / "huge.bin").write_bytes(bytes(range(256)) * 80_000)
    targets = open_targets(new_bucket("eu-west-1"), [new_bucket("eu-central-1")], EU)
    signed = run_backup(targets, data_tree)
    assert signed.manifest.part("node-a").size_cipher > 8 * 1024 * 1024
    check_round_trip(targets, signed, data_tree)


def test_failed_mirror_leaves_nothing_anywhere(
    new_bucket: Callable[..., str], customer_key: X25519PrivateKey, s3_endpoints: object
) -> None:
    primary_url = new_bucket("eu-west-1")
    mirror_url = new_bucket("eu-central-1").replace("s3://bk-", "s3://gone-")  # no such bucket
    targets = open_targets(primary_url, [mirror_url], EU, check_location=False)
    ctx = BackupContext("20250101T020000Z-0a1b2c3d", customer_key.public_key())
    with pytest.raises(TargetError, match="cannot write data/20250101T020000Z-0a1b2c3d/big.part"):
        write_part(
            io.BytesIO(bytes(20 * 1024 * 1024)), ctx=ctx, part="big", node="n", targets=targets
        )
    assert targets.primary.list() == []
    location = targets.primary.location
    assert isinstance(location, S3Location) and isinstance(targets.primary, S3Target)
    client = boto3.client("s3", region_name=location.region, endpoint_url=location.endpoint)
    assert client.list_multipart_uploads(Bucket=location.bucket).get("Uploads", []) == []


def test_missing_bucket_is_a_clear_error(new_bucket: Callable[..., str]) -> None:
    url = new_bucket("eu-west-1").replace("s3://bk-", "s3://nobucket-")
    with pytest.raises(TargetError, match="does not exist"):
        open_targets(url, [], EU)


def test_bandwidth_limit_slows_writes(tmp_path: Path, customer_key: X25519PrivateKey) -> None:
    targets = open_targets(f"file://{tmp_path}/t", [], EU)
    ctx = BackupContext("20250101T020000Z-0a1b2c3d", customer_key.public_key())
    limiter = TokenBucket(16 * 1024 * 1024, burst=1024 * 1024)
    started = time.monotonic()
    write_part(
        io.BytesIO(bytes(8 * 1024 * 1024)),
        ctx=ctx,
        part="p",
        node="n",
        targets=targets,
        limiter=limiter,
    )
    # 8 MiB at 16 MiB/s with a 1 MiB head start takes at least 7/16 s.
    assert time.monotonic() - started >= 7 / 16 - 0.02
