"""Which ZooKeeper ACLs count as protected (only the cluster's own digest credential, nothing for
the world, not even read), and the ACL every znode is created with."""

from __future__ import annotations

import pytest
from kazoo.security import OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, Permissions, make_digest_acl

from cluster.paths import ClusterPaths
from cluster.secrets import is_protected, protected_acl
from cluster.zk.acl import NoCredential, cluster_acl

OURS = "operators:test-secret"


def test_the_clusters_own_credential_protects() -> None:
    assert is_protected(protected_acl(OURS), OURS)


def test_another_credential_does_not_count_as_ours() -> None:
    planted = [make_digest_acl("eve", "guess", all=True)]
    assert not is_protected(planted, OURS)
    assert is_protected(planted, None)  # without our credential, whose it is cannot be told


def test_world_readable_writable_or_no_digest_is_open() -> None:
    assert not is_protected(list(OPEN_ACL_UNSAFE), OURS)
    assert not is_protected(list(READ_ACL_UNSAFE), OURS)
    assert not is_protected([*protected_acl(OURS), *OPEN_ACL_UNSAFE], OURS)
    # World-readable was an earlier version's "protected": it is open now.
    assert not is_protected([*protected_acl(OURS), *READ_ACL_UNSAFE], OURS)
    assert not is_protected([], OURS)


def test_every_znode_of_a_cluster_is_born_with_its_credential_only() -> None:
    paths = ClusterPaths("c1")
    for path in (paths.base, paths.config, paths.live_member("n1"), f"{paths.base}/secrets/x"):
        assert cluster_acl(path, OURS) == protected_acl(OURS)
    with pytest.raises(NoCredential, match="--zk-auth"):
        cluster_acl(paths.config, None)


def test_the_shared_parents_let_anyone_only_create_and_delete_children() -> None:
    for path in ("/managed", "/managed/clusters"):
        (entry,) = cluster_acl(path, None)
        assert (entry.id.scheme, entry.id.id) == ("world", "anyone")
        assert entry.perms == Permissions.CREATE | Permissions.DELETE
