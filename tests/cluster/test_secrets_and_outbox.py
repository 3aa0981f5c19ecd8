"""Secrets behind a digest ACL and the ZooKeeper outbox, on the real ensemble."""

from __future__ import annotations

import pytest
from clusterkit import ZK_AUTH, ClusterUnderTest

from cluster import zk
from cluster.link import outbox
from cluster.secrets import SecretsUnavailable, read_secret, write_secret
from contract.messages import ClusterEvent, ClusterEventBody


def test_secrets_are_readable_only_with_the_credential(cluster: ClusterUnderTest) -> None:
    owner = zk.connect(cluster.hosts, auth="ops:s3cret")
    stranger = zk.connect(cluster.hosts)
    wrong = zk.connect(cluster.hosts, auth="ops:guess")
    try:
        zk.ensure_cluster(owner, cluster.paths)
        write_secret(owner, cluster.paths, "ops:s3cret", "mc-credential", b"token-1")
        write_secret(owner, cluster.paths, "ops:s3cret", "mc-credential", b"token-2")
        assert read_secret(owner, cluster.paths, "ops:s3cret", "mc-credential") == b"token-2"
        assert read_secret(owner, cluster.paths, "ops:s3cret", "missing") is None
        with pytest.raises(SecretsUnavailable, match="--zk-auth"):
            read_secret(stranger, cluster.paths, None, "mc-credential")
        with pytest.raises(SecretsUnavailable, match="another credential"):
            read_secret(wrong, cluster.paths, "ops:guess", "mc-credential")
        with pytest.raises(SecretsUnavailable):
            write_secret(wrong, cluster.paths, "ops:guess", "mc-credential", b"evil")
        assert read_secret(owner, cluster.paths, "ops:s3cret", "mc-credential") == b"token-2"
    finally:
        for c in (owner, stranger, wrong):
            zk.close(c)


def test_outbox_keeps_order_and_ids(cluster: ClusterUnderTest) -> None:
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        zk.ensure_cluster(client, cluster.paths)
        box = outbox.Outbox(cluster.paths)
        events = [ClusterEventBody(kind="backup_succeeded", detail=f"n={i}") for i in range(5)]
        ids = [box.enqueue(client, event) for event in events]
        got = box.pending(client)
        assert [m.message_id for m in got] == ids
        assert [m.payload["detail"] for m in got] == [f"n={i}" for i in range(5)]
        assert got[0].stamped(7) == ClusterEvent(
            message_id=ids[0], epoch=7, kind="backup_succeeded", detail="n=0"
        )
        client.commit([box.delivered(got[0])])
        assert [m.message_id for m in box.pending(client, limit=2)] == ids[1:3]
    finally:
        zk.close(client)
