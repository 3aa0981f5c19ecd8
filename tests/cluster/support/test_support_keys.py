"""The cluster signing key: one key even when several processes need it first at once."""

from __future__ import annotations

import threading

import pytest
from clusterkit import ClusterUnderTest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from supportkit import AUTH

from cluster import zk
from cluster.link import outbox
from cluster.secrets import SecretsUnavailable
from cluster.support.keys import load_public_key, public_pem, signing_key


def test_racing_creators_share_one_key_published_once(cluster: ClusterUnderTest) -> None:
    clients = [zk.connect(cluster.hosts, auth=AUTH) for _ in range(3)]
    try:
        zk.ensure_cluster(clients[0], cluster.paths)
        keys: list[Ed25519PrivateKey] = []
        threads = [
            threading.Thread(target=lambda c=c: keys.append(signing_key(c, cluster.paths, AUTH)))
            for c in clients
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        pems = {public_pem(k.public_key()) for k in keys}
        assert len(keys) == 3 and len(pems) == 1
        published = load_public_key(clients[0], cluster.paths)
        assert published is not None and public_pem(published) in pems
        messages = [
            m
            for m in outbox.Outbox(cluster.paths).pending(clients[0])
            if m.kind == "support/public-key"
        ]
        assert [m.payload["public_key_pem"] for m in messages] == list(pems)
        with pytest.raises(SecretsUnavailable, match="--zk-auth"):
            signing_key(clients[0], cluster.paths, None)
    finally:
        for c in clients:
            zk.close(c)
