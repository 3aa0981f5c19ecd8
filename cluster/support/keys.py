"""The cluster's Ed25519 signing key: signs support approvals and audit checkpoints.

The private key is a cluster secret (`cluster.secrets`, name `support-signing-key`, readable only
with the `--zk-auth` credential); the public key sits in the world-readable znode
`support/public-key` so anyone can verify, changeable only with the credential (a replaced key
would let whoever replaced it forge checkpoints), and is sent to Mission Control once
(`support/public-key` outbox message) in the same transaction that publishes it. Mission Control
pins the first key it receives, and `managed audit verify` checks with the pinned key.

Guarantees: a cluster has one signing key. It is created on first need, under a ZooKeeper lock,
so a leader and an operator's CLI that both need it at once end up with the same key; a process
that died half-way (secret written, public key not yet published) is completed by the next caller.
The key is never written anywhere but the secret znode.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cluster.errors import ClusterError
from cluster.link.outbox import Outbox
from cluster.paths import ClusterPaths
from cluster.secrets import is_protected, protected_acl, read_secret, write_secret
from cluster.support import protection
from cluster.zk import Create, ZooKeeper
from cluster.zk.errors import LockTimeout, NodeExistsError, NoNodeError
from contract.messages import SupportPublicKeyBody

SECRET_NAME = "support-signing-key"


class SigningKeyError(ClusterError):
    """The signing key cannot be loaded or does not match the published public key."""


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_key(client: ZooKeeper, paths: ClusterPaths) -> Ed25519PublicKey | None:
    """The published public key, or None when the cluster has none yet."""
    try:
        data, _ = client.get(paths.support_public_key)
    except NoNodeError:
        return None
    try:
        key = serialization.load_pem_public_key(bytes(data))
    except ValueError:
        raise SigningKeyError("support/public-key does not hold a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError("support/public-key is not an Ed25519 key")
    return key


def public_key_protected(client: ZooKeeper, paths: ClusterPaths, auth: str | None) -> bool:
    """True when support/public-key is absent or changeable only with the cluster's credential
    (`auth`; without it, with some credential)."""
    try:
        acls, _ = client.get_acls(paths.support_public_key)
    except NoNodeError:
        return True
    return is_protected(acls, auth)


def _load_private(data: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(f"secret {SECRET_NAME} does not hold a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"secret {SECRET_NAME} is not an Ed25519 key")
    return key


def _publish(
    client: ZooKeeper, paths: ClusterPaths, key: Ed25519PrivateKey, auth: str | None
) -> None:
    """Make sure support/public-key holds `key`'s public half under the protected ACL (and
    was sent to Mission Control)."""
    pem = public_pem(key.public_key())
    acl = protected_acl(auth)
    for _ in range(3):
        try:
            data, _ = client.get(paths.support_public_key)
        except NoNodeError:
            outbox = Outbox(paths)
            outbox.ensure(client)
            fingerprint = hashlib.sha256(pem.encode()).hexdigest()
            message = outbox.message(
                SupportPublicKeyBody(public_key_pem=pem),
                datetime.now(UTC).timestamp(),
                message_id=outbox.stable_id("public-key", fingerprint),
            )
            outcome = client.commit(
                [Create(paths.support_public_key, pem.encode(), acl=tuple(acl)), message]
            )
            results = outcome.results
            if not any(isinstance(r, NodeExistsError) for r in results):
                if not outcome.applied:
                    raise SigningKeyError(f"cannot publish the public key: {results!r}") from None
                return
            continue
        if bytes(data).decode("ascii", "replace") != pem:
            raise SigningKeyError(
                "support/public-key does not match the cluster's signing key; restore the "
                "original key or publish the matching public key"
            )
        acls, _ = client.get_acls(paths.support_public_key)
        if not is_protected(acls, auth):
            client.set_acls(paths.support_public_key, acl)  # made by an older version: migrate
        return
    raise SigningKeyError("cannot publish the public key (it keeps changing)")


def signing_key(
    client: ZooKeeper,
    paths: ClusterPaths,
    auth: str | None,
    *,
    lock_timeout: float = 5.0,
) -> Ed25519PrivateKey:
    """The cluster's signing key, created (and published) on first need.

    Raises `SecretsUnavailable` without the right credential, `SigningKeyError` when the stored
    key is damaged or another process holds the creation lock for longer than `lock_timeout`.
    """
    raw = read_secret(client, paths, auth, SECRET_NAME)
    if raw is None:
        protection.ensure_parents(client, paths, auth)
        lock = client.lock(paths.support_key_lock, "signing-key")
        try:
            if not lock.acquire(timeout=lock_timeout):
                raise SigningKeyError("another process is creating the signing key; try again")
        except LockTimeout:
            raise SigningKeyError(
                "another process is creating the signing key; try again"
            ) from None
        try:
            raw = read_secret(client, paths, auth, SECRET_NAME)
            if raw is None:
                created = Ed25519PrivateKey.generate()
                raw = created.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                write_secret(client, paths, auth, SECRET_NAME, raw)
            key = _load_private(raw)
            _publish(client, paths, key, auth)
            return key
        finally:
            lock.release()
    key = _load_private(raw)
    _publish(client, paths, key, auth)
    return key
