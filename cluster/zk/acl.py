"""ZooKeeper access control lists, built and read only here.

An `Acl` is ZooKeeper's own (scheme, credential, permissions) entry. The cluster uses two kinds:
a digest entry for one USER:PASSWORD (`digest_acl`), and the world's read-only entry
(`WORLD_READ`). Which ACL a znode gets is decided by its caller (`cluster.secrets`,
`cluster.support.protection`) and applied at the one place every create passes through
(`cluster.zk.client.ZooKeeper.acl_for`).

Does not: decide what is protected, or check credentials (ZooKeeper does).
"""

from __future__ import annotations

from typing import Any

from kazoo.security import READ_ACL_UNSAFE, Permissions, make_digest_acl

#: One ACL entry: `.perms` (bits of `Permissions`), `.id.scheme` (`world`, `digest`, ...),
#: `.id.id` (the credential's identity).
Acl = Any

#: Everyone may read (and nothing else).
WORLD_READ: tuple[Acl, ...] = tuple(READ_ACL_UNSAFE)
#: The read permission bit.
READ: int = Permissions.READ


def digest_acl(user: str, password: str) -> Acl:
    """Every permission, for the holder of USER:PASSWORD only."""
    return make_digest_acl(user, password, all=True)


def scheme(acl: Acl) -> str:
    return str(acl.id.scheme)


def identity(acl: Acl) -> str:
    return str(acl.id.id)


def permissions(acl: Acl) -> int:
    return int(acl.perms)
