"""Restoring the ZooKeeper part is all or nothing, against a real ensemble: a failure part-way
takes back every znode the restore created and every value it overwrote."""

from __future__ import annotations

import uuid

from clusterkit import ZK_AUTH
from kazoo.security import make_digest_acl

from cluster import zk
from cluster.backups import zkdump
from cluster.backups.errors import BackupRunError
from cluster.dev.zookeeper import Ensemble
from cluster.paths import ClusterPaths


def test_a_failure_part_way_leaves_nothing_behind(zk_ensemble: Ensemble) -> None:
    source = ClusterPaths(f"s{uuid.uuid4().hex[:10]}")
    target = ClusterPaths(f"d{uuid.uuid4().hex[:10]}")
    client = zk.connect(zk_ensemble.connect_string, auth=ZK_AUTH)
    try:
        zk.ensure_cluster(client, source)
        client.set(source.config, b'{"geography":"EU"}')
        for i in range(30):
            client.create(f"{source.base}/audit/entries/{i:04}", b"x" * 2000, makepath=True)
        user, password = ZK_AUTH.split(":")
        client.create(f"{source.base}/secrets/key", b"s", makepath=True,
                      acl=[make_digest_acl(user, password, all=True)])  # fmt: skip
        dump = zkdump.parse(zkdump.dump(client, source))

        zk.ensure_cluster(client, target)  # an empty cluster already has its containers
        before = zkdump.read_tree(client, target)
        writes = zkdump.restore_ops(client, target, dump, ZK_AUTH)
        # Someone creates one of the last znodes meanwhile: a late batch fails, after several
        # batches (30 audit entries of 2 KB, 8 KiB per transaction) went in.
        late = f"{target.base}/secrets"
        client.create(late, b"theirs")
        try:
            zkdump.apply_restore(client, writes, batch_bytes=8 * 1024)
        except BackupRunError as exc:
            assert "nothing was kept" in str(exc)
        else:
            raise AssertionError("the restore should have failed")
        client.delete(late)
        assert zkdump.read_tree(client, target) == before  # created ones gone, values back

        zkdump.apply_restore(client, zkdump.restore_ops(client, target, dump, ZK_AUTH))
        assert zkdump.read_tree(client, target) == list(dump.znodes)
    finally:
        for paths in (source, target):
            client.delete(paths.base, recursive=True)
        zk.close(client)
