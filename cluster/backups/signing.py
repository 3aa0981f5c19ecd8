"""The cluster's manifest-signing key: Ed25519, private half in `cluster.secrets`.

Guarantees: the private key is stored only as the secret `backup-signing-key` (digest ACL, read
with the cluster's ZooKeeper credential); the public half goes into the backup settings so that
`verify`, `list` and `restore` prove a manifest was signed by this cluster without any secret.
`ensure_signing_key` creates the key once and afterwards always returns the same one.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cluster.backups.errors import BackupConfigError, BackupRunError
from cluster.paths import ClusterPaths
from cluster.secrets import read_secret, write_secret
from cluster.zk import ZooKeeper

SIGNING_SECRET = "backup-signing-key"


def _private(raw: bytes) -> Ed25519PrivateKey:
    try:
        return Ed25519PrivateKey.from_private_bytes(raw)
    except ValueError as exc:
        raise BackupRunError(f"secret {SIGNING_SECRET} is not an Ed25519 key") from exc


def ensure_signing_key(
    client: ZooKeeper, paths: ClusterPaths, auth: str | None
) -> Ed25519PublicKey:
    """The cluster's signing public key, creating the key pair on first use."""
    raw = read_secret(client, paths, auth, SIGNING_SECRET)
    if raw is not None:
        return _private(raw).public_key()
    key = Ed25519PrivateKey.generate()
    write_secret(client, paths, auth, SIGNING_SECRET, key.private_bytes_raw())
    return key.public_key()


def load_signing_key(client: ZooKeeper, paths: ClusterPaths, auth: str | None) -> Ed25519PrivateKey:
    raw = read_secret(client, paths, auth, SIGNING_SECRET)
    if raw is None:
        raise BackupRunError(
            f"the cluster has no {SIGNING_SECRET}: run `managed backup configure` with --zk-auth"
        )
    return _private(raw)


def encode_public(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes_raw()).decode("ascii")


def decode_public(text: str | None) -> Ed25519PublicKey | None:
    if text is None:
        return None
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise BackupConfigError("backup signing_public_key is not an Ed25519 public key") from exc
