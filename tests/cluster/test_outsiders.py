"""Outsiders against a live cluster: a client without the credential, one with a wrong
credential and another cluster's credential on the same ensemble try every read and write an
outside probe found open (config, secrets, outbox, roster, leader, epoch, audit, backups). Each
is refused by ZooKeeper itself, nothing changes, and the cluster keeps its leader throughout.

The outsiders use plain kazoo over TLS, asking for open ACLs, as an attacker would: the
project's own client would refuse to create anything without the credential before sending.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator

import pytest
from clusterkit import ZK_AUTH, ClusterUnderTest, managed
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, NoNodeError
from kazoo.security import OPEN_ACL_UNSAFE

from cluster import zk
from cluster.dev.processes import wait_until
from cluster.paths import ClusterPaths
from cluster.secrets import write_secret
from cluster.zk.client import CA_ENV

OUTSIDERS = {
    "anonymous": None,
    "wrong credential": "operators:guess",
    "another cluster's credential": "neighbours:their-own-secret",
}


def outsider(hosts: str, auth: str | None) -> KazooClient:
    client = KazooClient(
        hosts,
        use_ssl=True,
        ca=os.environ[CA_ENV],
        verify_certs=True,
        check_hostname=True,
        auth_data=[("digest", auth)] if auth else None,
        timeout=5,
    )
    client.start(10)
    return client


@pytest.fixture
def live(cluster: ClusterUnderTest) -> Iterator[ClusterUnderTest]:
    cluster.start_nodes(3)
    owner = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        config = {"geography": "EU", "backup": {"target": "file:///srv/backups"}}
        owner.set(cluster.paths.config, json.dumps(config).encode())
        write_secret(owner, cluster.paths, ZK_AUTH, "mc-credential", b"mcc.real.secret")
        owner.ensure_path(cluster.paths.backup_requests)
        owner.ensure_path(cluster.paths.audit_entries)
        # The leader reports that change of a guarded setting once (an audit entry): wait for
        # it, so that what the outsiders do is all that could change afterwards.
        guarded = f"{cluster.paths.base}/guarded"
        assert wait_until(lambda: b"/srv/backups" in (owner.find(guarded) or (b"", None))[0], 20), (
            cluster.logs()
        )
    finally:
        zk.close(owner)
    # A neighbour on the same ensemble, with a cluster of its own.
    neighbour = zk.connect(cluster.hosts, auth=OUTSIDERS["another cluster's credential"])
    try:
        zk.ensure_cluster(neighbour, ClusterPaths(f"{cluster.name}-n"))
    finally:
        zk.close(neighbour)
    yield cluster


def attempts(c: ClusterUnderTest) -> dict[str, Callable[[KazooClient], object]]:
    p = c.paths
    evil_config = {"backup": {"public_key": "EVIL", "target": "file:///tmp/evil"}}
    evil_link = {"mission_control": {"url": "https://evil.example", "insecure_http": True}}
    return {
        # Finding 1: take over backups, read every secret.
        "read config": lambda k: k.get(p.config),
        "set backup key": lambda k: k.set(p.config, json.dumps(evil_config).encode()),
        "read secret": lambda k: k.get(f"{p.base}/secrets/mc-credential"),
        "list secrets": lambda k: k.get_children(f"{p.base}/secrets"),
        # Finding 2: redirect the credential.
        "set Mission Control URL": lambda k: k.set(p.config, json.dumps(evil_link).encode()),
        # Finding 3: replace a secret.
        "delete secret": lambda k: k.delete(f"{p.base}/secrets/mc-credential"),
        "plant secret": lambda k: k.create(
            f"{p.base}/secrets/planted", b"evil", acl=OPEN_ACL_UNSAFE
        ),
        # Finding 4: inject messages.
        "list outbox": lambda k: k.get_children(p.outbox),
        "inject outbox": lambda k: k.create(
            f"{p.outbox}/m-", b'{"kind":"event"}', acl=OPEN_ACL_UNSAFE, sequence=True
        ),
        # Finding 5: break coordination.
        "read roster": lambda k: k.get_children(p.roster),
        "fake roster": lambda k: k.create(p.roster_member("ghost"), b"{}", acl=OPEN_ACL_UNSAFE),
        "read leader": lambda k: k.get(p.leader),
        "delete leader": lambda k: k.delete(p.leader),
        "set epoch": lambda k: k.set(p.epoch, b"-1"),
        "read epoch": lambda k: k.get(p.epoch),
        "fake live": lambda k: k.create(
            p.live_member("ghost"), b"{}", acl=OPEN_ACL_UNSAFE, ephemeral=True
        ),
        # Finding 6: forge the audit log.
        "forge audit": lambda k: k.create(
            f"{p.audit_entries}/9999999999", b"{}", acl=OPEN_ACL_UNSAFE
        ),
        "read audit": lambda k: k.get_children(p.audit_entries),
        # Finding 7 (through ZooKeeper): request or pause backups.
        "request backup": lambda k: k.create(f"{p.backup_requests}/r", b"{}", acl=OPEN_ACL_UNSAFE),
        "list cluster": lambda k: k.get_children(p.base),
        "list clusters": lambda k: k.get_children("/managed/clusters"),
        "open ACL": lambda k: k.set_acls(p.base, OPEN_ACL_UNSAFE),
    }


def state(c: ClusterUnderTest) -> dict[str, object]:
    owner = zk.connect(c.hosts, auth=ZK_AUTH)
    try:
        snap = zk.read_snapshot(owner, c.paths)
        secret = owner.get(f"{c.paths.base}/secrets/mc-credential")[0]
        return {
            "roster": sorted(e.node for e in snap.roster),
            "config": snap.config,
            "epoch": snap.epoch.value,
            "leader": snap.leader.node if snap.leader else None,
            "secret": secret,
            "outbox": owner.children(c.paths.outbox),
            "audit": owner.children(c.paths.audit_entries),
            "requests": owner.children(c.paths.backup_requests),
        }
    finally:
        zk.close(owner)


@pytest.mark.parametrize("who", sorted(OUTSIDERS))
def test_an_outsider_gets_nothing_and_changes_nothing(live: ClusterUnderTest, who: str) -> None:
    before = state(live)
    assert before["leader"] is not None
    client = outsider(live.hosts, OUTSIDERS[who])
    try:
        refused = []
        for name, attempt in attempts(live).items():
            with pytest.raises((NoAuthError, NoNodeError)) as caught:
                attempt(client)
            refused.append((name, type(caught.value).__name__))
        # NoNode only where the znode does not exist for anyone (an ephemeral never created).
        assert [n for n, e in refused if e == "NoNodeError"] == [], refused
    finally:
        client.stop()
        client.close()
    after = state(live)
    assert after == before
    assert live.snapshot().leader is not None  # the cluster kept its leader


def test_commands_without_the_credential_are_refused(live: ClusterUnderTest) -> None:
    before = state(live)
    for args in (("backup", "pause"), ("backup", "resume"), ("cluster", "status")):
        for auth in ("", "operators:guess"):
            r = managed(
                "--zk", live.hosts, "--cluster", live.name, *args, env={"MANAGED_ZK_AUTH": auth}
            )
            assert r.returncode == 1, (args, auth, r.stdout)
            assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert state(live) == before
