"""Which ZooKeeper ACLs count as protected: world may only read, and only the cluster's own
digest credential may change the znode."""

from __future__ import annotations

from kazoo.security import OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, make_digest_acl

from cluster.secrets import is_protected, protected_acl

OURS = "operators:test-secret"


def test_the_clusters_own_credential_protects() -> None:
    assert is_protected(protected_acl(OURS), OURS)


def test_another_credential_does_not_count_as_ours() -> None:
    planted = [make_digest_acl("eve", "guess", all=True), *READ_ACL_UNSAFE]
    assert not is_protected(planted, OURS)
    assert is_protected(planted, None)  # without our credential, whose it is cannot be told


def test_world_writable_or_no_digest_is_open() -> None:
    assert not is_protected(list(OPEN_ACL_UNSAFE), OURS)
    assert not is_protected(list(READ_ACL_UNSAFE), OURS)
    both = [*protected_acl(OURS), *OPEN_ACL_UNSAFE]
    assert not is_protected(both, OURS)
