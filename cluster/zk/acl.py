"""ZooKeeper access control lists, built and read only here.

An `Acl` is ZooKeeper's own (scheme, credential, permissions) entry. The rule (`cluster_acl`),
applied at the one place every create passes through (`cluster.zk.client.ZooKeeper.acl_for`):

- every znode of a cluster's subtree, `/managed/clusters/<cluster>` and everything below it,
  carries one digest entry for the cluster's credential (USER:PASSWORD) with every permission,
  and nothing for anyone else: a client without the credential can neither read, list, change
  nor delete anything of the cluster, and another cluster's credential reaches nothing of it;
- `/managed` and `/managed/clusters`, which every cluster on the ensemble shares, give the
  world only CREATE and DELETE of children (so each cluster can create its own subtree below
  them, and remove it once it has emptied it): nobody can read or list them or change them, and
  a cluster's root can only be deleted once its credential has deleted everything below it.

A znode is never created without a credential below `/managed` (`NoCredential`).
Does not: check credentials (ZooKeeper does), or protect against the holder of the credential
or of ZooKeeper's data files.
"""

from __future__ import annotations

from typing import Any

from kazoo.security import READ_ACL_UNSAFE, Permissions, make_acl, make_digest_acl

from cluster.errors import ClusterError
from cluster.paths import SHARED_PARENTS

#: One ACL entry: `.perms` (bits of `Permissions`), `.id.scheme` (`world`, `digest`, ...),
#: `.id.id` (the credential's identity).
Acl = Any

#: Everyone may read (and nothing else).
WORLD_READ: tuple[Acl, ...] = tuple(READ_ACL_UNSAFE)
#: The read permission bit.
READ: int = Permissions.READ
#: Everyone may create and delete children (nothing else): for the parents clusters share.
WORLD_CREATE: tuple[Acl, ...] = (make_acl("world", "anyone", create=True, delete=True),)
#: Every permission.
ALL: int = Permissions.ALL


class NoCredential(ClusterError):
    """A znode of a cluster would be created without the cluster's credential."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"{path} would be created without the cluster's credential: pass "
            "--zk-auth USER:PASSWORD (env MANAGED_ZK_AUTH)"
        )


def cluster_acl(path: str, auth: str | None) -> list[Acl]:
    """The ACL every znode at `path` is created with (see the module docstring)."""
    if path in SHARED_PARENTS:
        return list(WORLD_CREATE)
    if not auth or ":" not in auth:
        raise NoCredential(path)
    user, password = auth.split(":", 1)
    return [digest_acl(user, password)]


def digest_acl(user: str, password: str) -> Acl:
    """Every permission, for the holder of USER:PASSWORD only."""
    return make_digest_acl(user, password, all=True)


def scheme(acl: Acl) -> str:
    return str(acl.id.scheme)


def identity(acl: Acl) -> str:
    return str(acl.id.id)


def permissions(acl: Acl) -> int:
    return int(acl.perms)
