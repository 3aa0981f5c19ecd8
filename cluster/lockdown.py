"""Closing a cluster made by an earlier version: every znode gets the cluster's ACL.

Clusters made before every znode carried the cluster's ACL (`cluster.zk.acl.cluster_acl`) are
open: any client that reaches ZooKeeper can read and change them. `close_cluster` walks the
cluster's subtree (parents before children) and gives each znode the ACL a new one would have
been born with, and the shared parents `/managed` and `/managed/clusters` theirs. It is the
one explicit, idempotent step of the upgrade (`managed cluster secure`); the caller records what
it changed in the audit log.

Guarantees: a znode that already has the right ACL is left alone, so running it again changes
nothing; a znode that vanishes meanwhile is skipped. Does not: close znodes an older node
creates while the walk runs (upgrade every node first), or take back what was read while the
cluster was open (rotate the credentials: `managed mc enroll` again, a new backup key).
"""

from __future__ import annotations

from cluster.paths import SHARED_PARENTS, ClusterPaths
from cluster.zk import ZooKeeper
from cluster.zk.acl import Acl, cluster_acl, identity, permissions, scheme
from cluster.zk.errors import NoAuthError, NoNodeError

READ_TIMEOUT = 10.0


class WrongCredential(Exception):
    """A znode of the cluster is closed to the credential given: it belongs to another one."""


def _same(have: list[Acl], want: list[Acl]) -> bool:
    def key(entries: list[Acl]) -> set[tuple[str, str, int]]:
        return {(scheme(e), identity(e), permissions(e)) for e in entries}

    return key(have) == key(want)


def _subtree(zookeeper: ZooKeeper, root: str) -> list[str]:
    """`root` and every znode below it, parents first."""
    found, level = [], [root]
    while level:
        found += level
        pending = [(p, zookeeper.request_children(p, timeout=READ_TIMEOUT)) for p in level]
        try:
            level = [
                f"{p}/{c}" for p, request in pending for c in sorted(request.get_or_none() or [])
            ]
        except NoAuthError:
            raise WrongCredential(
                f"{root} belongs to another credential than the one given (--zk-auth)"
            ) from None
    return found


def close_cluster(zookeeper: ZooKeeper, paths: ClusterPaths, auth: str) -> list[str]:
    """Give every znode of the cluster, and the shared parents, the ACL it is born with now;
    returns the paths that had another ACL. `WrongCredential` when a znode is closed to
    `auth` (nothing below it is changed then)."""
    changed: list[str] = []
    for path in [*SHARED_PARENTS, *_subtree(zookeeper, paths.base)]:
        want = cluster_acl(path, auth)
        try:
            have, _ = zookeeper.get_acls(path, READ_TIMEOUT)
        except NoNodeError:
            continue
        except NoAuthError:
            if path in SHARED_PARENTS:
                continue  # closed already: an open parent lets anyone read its ACL
            raise WrongCredential(
                f"{path} belongs to another credential than the one given (--zk-auth)"
            ) from None
        if _same(have, want):
            continue
        try:
            zookeeper.set_acls(path, want, READ_TIMEOUT)
        except NoNodeError:
            continue
        except NoAuthError:
            raise WrongCredential(
                f"{path} cannot be changed with the credential given (--zk-auth)"
            ) from None
        changed.append(path)
    return changed
