"""Cluster secrets in ZooKeeper, readable only with the cluster's ZooKeeper credential.

Secrets (the Mission Control credential, the cluster's Ed25519 signing key) live under
`<cluster>/secrets/<name>`, each znode created with a digest ACL for one user, so a client
without `--zk-auth USER:PASSWORD` (env `MANAGED_ZK_AUTH`) can neither read nor change them.
Every other znode of the cluster carries the same ACL (`cluster.zk.acl.cluster_acl`); secrets
are written whole and checked for it explicitly because they are what a foreign ACL would leak.

Guarantees: a secret is written whole (one create or set) and never with an open ACL.
Does not guarantee: protection from someone who holds the credential or ZooKeeper's data files.
"""

from __future__ import annotations

from cluster.errors import ClusterError
from cluster.paths import ClusterPaths
from cluster.zk import ZooKeeper, acl
from cluster.zk.acl import Acl
from cluster.zk.errors import NoAuthError, NodeExistsError, NoNodeError


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
    """ZooKeeper `auth_data` for a credential (empty when none is given)."""
    return [("digest", auth)] if auth else []


def secret_acl(auth: str | None) -> list[Acl]:
    """Readable and changeable only with `auth`: for secrets. `SecretsUnavailable` without a
    credential."""
    user, password = parse_auth(auth)
    return [acl.digest_acl(user, password)]


def protected_acl(auth: str | None) -> list[Acl]:
    """The ACL of every znode of the cluster: readable and changeable only with `auth`
    (`cluster.zk.acl.cluster_acl`). `SecretsUnavailable` without a credential."""
    return secret_acl(auth)


def is_protected(acls: list[Acl], auth: str | None) -> bool:
    """True when only a digest credential may do anything with the znode: the cluster's own
    (`auth`), so a znode someone else planted with their credential does not pass. Without
    `auth` the credential's identity cannot be checked: any digest counts."""
    ours = acl.identity(secret_acl(auth)[0]) if auth else None
    return bool(acls) and all(
        acl.scheme(entry) == "digest" and (ours is None or acl.identity(entry) == ours)
        for entry in acls
    )


def _path(paths: ClusterPaths, name: str) -> str:
    return f"{paths.base}/secrets/{name}"


def write_secret(
    client: ZooKeeper, paths: ClusterPaths, auth: str | None, name: str, value: bytes
) -> None:
    """Create or replace secret `name`, readable only with `auth`."""
    protection = secret_acl(auth)
    client.ensure_path(f"{paths.base}/secrets")
    try:
        try:
            client.create(_path(paths, name), value, acl=protection)
        except NodeExistsError:
            client.set(_path(paths, name), value)
    except NoAuthError as e:
        raise SecretsUnavailable(
            f"secret {name} is protected by another credential than the one given"
        ) from e


def read_secret(
    client: ZooKeeper, paths: ClusterPaths, auth: str | None, name: str
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
