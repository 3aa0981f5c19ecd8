"""Fixtures for the backup tests: real moto_server endpoints (one per region), keys, data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cluster.dev import s3 as devs3


class S3Endpoints:
    """moto_server processes of this test session, started on first use, one per region."""

    def __init__(self) -> None:
        self._servers: dict[str, devs3.DevS3] = {}

    def __call__(self, region: str) -> devs3.DevS3:
        if region not in self._servers:
            self._servers[region] = devs3.start_s3(region)
        return self._servers[region]

    def stop_all(self) -> None:
        for server in self._servers.values():
            server.stop()


@pytest.fixture(scope="session")
def s3_endpoints() -> Iterator[S3Endpoints]:
    endpoints = S3Endpoints()
    try:
        yield endpoints
    finally:
        endpoints.stop_all()


@pytest.fixture
def new_bucket(s3_endpoints: S3Endpoints) -> Callable[..., str]:
    """Create a uniquely named bucket; returns its s3:// target URL."""

    def make(region: str, *, located_in: str | None = None, prefix: str = "backups") -> str:
        server = s3_endpoints(region)
        name = f"bk-{uuid.uuid4().hex[:20]}"
        devs3.create_bucket(server, name, located_in)
        return server.target_url(name, prefix)

    return make


@pytest.fixture(scope="session")
def customer_key() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


@pytest.fixture(scope="session")
def cluster_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def make_tree(root: Path, *, big: int = 3 * 1024 * 1024) -> Path:
    """A node data directory: one multi-frame file, small files, nesting, an empty dir, a link."""
    root.mkdir(parents=True)
    (root / "segments").mkdir()
    (root / "segments" / "big.bin").write_bytes(os.urandom(big))
    for i in range(20):
        (root / "segments" / f"small-{i:02}.json").write_text(f'{{"n": {i}}}\n')
    (root / "empty").mkdir()
    (root / "deep" / "er" / "est").mkdir(parents=True)
    (root / "deep" / "er" / "est" / "leaf.txt").write_text("leaf\n")
    (root / "zero-length").write_bytes(b"")
    (root / "latest").symlink_to("segments/big.bin")
    return root


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An empty directory to extract into."""
    target = tmp_path / "out"
    target.mkdir()
    return target


@pytest.fixture
def data_tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "node-data")


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of content (files), link target (symlinks) or 'dir'."""
    import hashlib

    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture
def digest_of() -> Callable[[Path], dict[str, str]]:
    return tree_digest


@pytest.fixture
def run_backup(
    customer_key: X25519PrivateKey, cluster_signing_key: Ed25519PrivateKey
) -> Callable[..., object]:
    """Back up `tree` (as part "node-a") plus a small "zookeeper" part and commit."""
    import io
    from datetime import UTC, datetime

    from backup.engine import (
        BackupContext,
        TargetSet,
        commit_manifest,
        new_backup_id,
        write_directory_part,
        write_part,
    )

    def run(targets: TargetSet, tree: Path, *, created: datetime | None = None) -> object:
        created = created or datetime.now(UTC)
        ctx = BackupContext(new_backup_id(created), customer_key.public_key())
        node = write_directory_part(tree, ctx=ctx, part="node-a", node="node-a", targets=targets)
        zk = write_part(
            io.BytesIO(b'{"/managed/clusters/c1/config": "{}"}'),
            ctx=ctx,
            part="zookeeper",
            node="node-a",
            targets=targets,
        )
        return commit_manifest(
            ctx=ctx,
            cluster="c1",
            epoch=7,
            created=created,
            parts=[node, zk],
            targets=targets,
            signing_key=cluster_signing_key,
        )

    return run
