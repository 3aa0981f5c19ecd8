"""Small committed backups for the retention, rotation and verify tests."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from backup.destinations import TargetSet
from backup.engine import (
    BackupContext,
    SignedManifest,
    commit_manifest,
    new_backup_id,
    write_part,
)


def small_backup(
    targets: TargetSet,
    key: X25519PrivateKey,
    signer: Ed25519PrivateKey,
    created: datetime | None = None,
    *,
    cluster: str = "c1",
) -> SignedManifest:
    """A committed one-part backup (the ZooKeeper part of node n1), its content its own time."""
    created = created or datetime.now(UTC)
    ctx = BackupContext(new_backup_id(created), key.public_key())
    part = write_part(
        io.BytesIO(created.isoformat().encode()),
        ctx=ctx,
        part="zookeeper",
        node="n1",
        targets=targets,
    )
    return commit_manifest(
        ctx=ctx,
        cluster=cluster,
        epoch=1,
        created=created,
        parts=[part],
        targets=targets,
        signing_key=signer,
    )
