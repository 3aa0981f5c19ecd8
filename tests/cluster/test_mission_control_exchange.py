"""The leader's exchange with a real Mission Control over HTTPS, on a real ensemble."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import uuid

import pytest
from clusterkit import ZK_AUTH, ClusterUnderTest
from kazoo.exceptions import NoNodeError

from cluster import zk
from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import wait_until
from cluster.secrets import read_secret


def count(mc: MissionControlServer, sql: str, *args: object) -> int:
    with sqlite3.connect(mc.base / "mc.db") as db:
        return int(db.execute(sql, args).fetchone()[0])


def enroll(cluster: ClusterUnderTest, mc: MissionControlServer) -> None:
    cluster.enroll(mc)


def outbox_ids(cluster: ClusterUnderTest) -> list[str]:
    client = zk.connect(cluster.hosts)
    try:
        ids = []
        for name in sorted(client.get_children(cluster.paths.outbox)):
            try:
                data, _ = client.get(f"{cluster.paths.outbox}/{name}")
            except NoNodeError:
                continue  # delivered between the listing and the read
            ids.append(json.loads(data)["message_id"])
        return ids
    finally:
        zk.close(client)


def test_enroll_report_fail_over_and_survive_an_outage(
    cluster: ClusterUnderTest, mc: MissionControlServer
) -> None:
    # A wrong token is refused with one line and stores nothing.
    bad = cluster.cli("mc", "enroll", mc.url, "not-a-token", "--ca-file", str(mc.ca_file))
    assert bad.returncode == 1 and "refused" in bad.stderr and bad.stderr.count("\n") == 1
    enroll(cluster, mc)
    cluster.start_nodes(3)
    health = "SELECT count(*) FROM messages WHERE kind = 'health'"
    assert wait_until(lambda: count(mc, health) >= 3, 60), cluster.logs()
    assert wait_until(lambda: count(mc, "SELECT count(*) FROM consumption") >= 1, 30)
    status = json.loads(cluster.cli("cluster", "status", "--json").stdout)
    assert wait_until(
        lambda: (
            json.loads(cluster.cli("cluster", "status", "--json").stdout)["license"]["state"]
            == "valid"
        ),
        30,
    ), status
    mc_status = json.loads(cluster.cli("mc", "status", "--json").stdout)
    assert mc_status["health"]["advice"]["min_nodes"] >= 1

    # Leader change: reporting continues under the new epoch.
    old = cluster.snapshot().leader
    assert old is not None
    cluster.processes[old.node].signal(signal.SIGTERM)
    assert cluster.wait(lambda s: s.leader is not None and s.leader.node != old.node, 30)
    before = count(mc, health)
    assert wait_until(lambda: count(mc, health) >= before + 2, 45), cluster.logs()
    new_epoch = cluster.snapshot().epoch.value
    assert count(mc, "SELECT max(epoch) FROM messages") == new_epoch

    # Mission Control down: messages wait in the outbox; back up: each arrives exactly once.
    mc.stop()
    assert wait_until(lambda: len(outbox_ids(cluster)) >= 4, 45), cluster.logs()
    queued = outbox_ids(cluster)
    mc.start()
    assert wait_until(lambda: not outbox_ids(cluster), 90), cluster.logs()
    for mid in queued:
        assert count(mc, "SELECT count(*) FROM messages WHERE message_id = ?", mid) == 1
    client = zk.connect(cluster.hosts)
    try:
        # None of the exchange's own messages was set aside as undeliverable.
        for name in client.get_children(cluster.paths.outbox_dead):
            data, _ = client.get(f"{cluster.paths.outbox_dead}/{name}")
            assert json.loads(data)["kind"] not in {"health", "license", "consumption"}, data
    finally:
        zk.close(client)


def test_a_forged_older_epoch_is_rejected(
    cluster: ClusterUnderTest, mc: MissionControlServer
) -> None:
    from mission_control.client import MissionControlClient
    from mission_control.errors import MessageRejected

    enroll(cluster, mc)
    cluster.start_nodes(3)
    assert wait_until(lambda: count(mc, "SELECT count(*) FROM messages") >= 2, 60)
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        credential = read_secret(client, cluster.paths, ZK_AUTH, "mc-credential")
    finally:
        zk.close(client)
    assert credential is not None
    epoch = cluster.snapshot().epoch.value
    assert epoch >= 1

    async def forge() -> None:
        async with MissionControlClient(
            mc.url, credential=credential.decode(), ca_file=str(mc.ca_file)
        ) as c:
            with pytest.raises(MessageRejected) as e:
                await c.send("heartbeat", {"message_id": str(uuid.uuid4()), "epoch": epoch - 1})
            assert e.value.status == 409

    asyncio.run(forge())
