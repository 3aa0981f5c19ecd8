"""Cluster secrets in ZooKeeper, readable only with the cluster's ZooKeeper credential.

Secrets (the Mission Control credential, the cluster's Ed25519 signing key) live under
`<cluster>/secrets/<name>`, each znode created with a digest ACL for one user, so a client
without `--zk-auth USER:PASSWORD` (env `MANAGED_ZK_AUTH`) can neither read nor change them.

Guarantees: a secret is written whole (one create or set) and never with an open ACL.
Does not guarantee: protection from someone who holds the credential or ZooKeeper's data files.
"""

from __future__ import annotations

from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, NodeExistsError, NoNodeError
from kazoo.security import READ_ACL_UNSAFE, Permissions, make_digest_acl

from cluster.errors import ClusterError
from cluster.paths import ClusterPaths


class SecretsUnavailable(ClusterError):
    """No credential was given, or it is not the one that protects the secrets."""


def parse_auth(auth: str | None) -> tuple[str, str]:
    if not auth or ":" not in auth or auth.startswith(":") or auth.endswith(":"):
        raise SecretsUnavailable(
            "cluster secrets need a ZooKeeper credential: pass --zk-auth USER:PASSWORD "
            "or set MANAGED_ZK_AUTH"
        )
    user, password = auth.split(":", 1)
    return user, password


def auth_data(auth: str | None) -> list[tuple[str, str]]:
    """kazoo `auth_data` for a credential (empty when none is given)."""
    return [("digest", auth)] if auth else []


def protected_acl(auth: str | None) -> list[Any]:
    """World-readable, changeable only with `auth`: for znodes that widen access (the support
    policy, the public key that verifies approvals and checkpoints). `SecretsUnavailable`
    without a credential."""
    user, password = parse_auth(auth)
    return [make_digest_acl(user, password, all=True), *READ_ACL_UNSAFE]


def is_protected(acls: list[Any], auth: str | None) -> bool:
    """True when the world may only read the znode and only a digest credential may change
    it: the cluster's own (`auth`), so a znode someone else planted with their credential does
    not pass. Without `auth` the credential's identity cannot be checked: any digest counts."""
    ours = protected_acl(auth)[0].id.id if auth else None
    for acl in acls:
        if acl.id.scheme == "digest":
            if ours is not None and acl.id.id != ours:
                return False
            continue
        if acl.id.scheme != "world" or acl.perms & ~Permissions.READ:
            return False
    return any(acl.id.scheme == "digest" for acl in acls)


def _path(paths: ClusterPaths, name: str) -> str:
    return f"{paths.base}/secrets/{name}"


def write_secret(
    client: KazooClient, paths: ClusterPaths, auth: str | None, name: str, value: bytes
) -> None:
    """Create or replace secret `name`, readable only with `auth`."""
    user, password = parse_auth(auth)
    acl = [make_digest_acl(user, password, all=True)]
    client.ensure_path(f"{paths.base}/secrets")
    try:
        try:
            client.create(_path(paths, name), value, acl=acl)
        except NodeExistsError:
            client.set(_path(paths, name), value)
    except NoAuthError as e:
        raise SecretsUnavailable(
            f"secret {name} is protected by another credential than the one given"
        ) from e


def read_secret(
    client: KazooClient, paths: ClusterPaths, auth: str | None, name: str
) -> bytes | None:
    """The secret's bytes, or None if it was never written."""
    parse_auth(auth)
    try:
        data, _ = client.get(_path(paths, name))
    except NoNodeError:
        return None
    except NoAuthError as e:
        raise SecretsUnavailable(
            f"secret {name} is protected by another credential than the one given"
        ) from e
    return bytes(data)
