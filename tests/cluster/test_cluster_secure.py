"""Closing a cluster an earlier version left open: `managed cluster secure`, on a real ensemble."""

from __future__ import annotations

import os
import re

from clusterkit import ZK_AUTH, ClusterUnderTest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import OPEN_ACL_UNSAFE

from cluster import zk
from cluster.audit.store import AuditLog
from cluster.secrets import is_protected
from cluster.zk.client import CA_ENV


def raw_client(hosts: str, auth: str | None = None) -> KazooClient:
    client = KazooClient(
        hosts,
        use_ssl=True,
        ca=os.environ[CA_ENV],
        check_hostname=True,
        auth_data=[("digest", auth)] if auth else None,
    )
    client.start(10)
    return client


def test_secure_closes_every_znode_once_and_records_it(cluster: ClusterUnderTest) -> None:
    # As an earlier version left it: every znode open to the world.
    old = raw_client(cluster.hosts)
    base = cluster.paths.base
    opened = [base, cluster.paths.roster, cluster.paths.roster_member("n1"), cluster.paths.config]
    try:
        for path in opened:
            old.create(path, b"{}", acl=OPEN_ACL_UNSAFE, makepath=True)
    finally:
        old.stop()
        old.close()

    r = cluster.cli("cluster", "secure")
    assert r.returncode == 0, r.stderr
    # The cluster's four, and the shared parents when this test made them open.
    assert re.search(r"gave [4-6] znode\(s\) the cluster's ACL", r.stdout), r.stdout
    again = cluster.cli("cluster", "secure")
    assert again.returncode == 0 and "already has the cluster's ACL" in again.stdout

    owner = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        for path in opened:
            assert is_protected(owner.get_acls(path)[0], ZK_AUTH), path
        (entry,) = AuditLog(owner, cluster.paths).entries()
        assert entry.action == "cluster.secured" and entry.detail["closed"] >= len(opened)
    finally:
        zk.close(owner)
    outsider = raw_client(cluster.hosts)
    try:
        for path in opened:
            try:
                outsider.get(path)
            except NoAuthError:
                continue
            raise AssertionError(f"{path} is still readable without the credential")
    finally:
        outsider.stop()
        outsider.close()


def test_secure_with_another_credential_changes_nothing(cluster: ClusterUnderTest) -> None:
    owner = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        zk.ensure_cluster(owner, cluster.paths)
    finally:
        zk.close(owner)
    r = cluster.cli("--zk-auth", "someone:else", "cluster", "secure")
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "another credential" in r.stderr
