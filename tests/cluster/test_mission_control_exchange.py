"""The leader's exchange with a real Mission Control over HTTPS, on a real ensemble."""

from __future__ import annotations

import asyncio
import json
import math
import signal
import ssl
import time
import uuid

import aiohttp
import pytest
from clusterkit import ClusterUnderTest
from mc_exchange_kit import (
    count,
    credential_of,
    dead_kinds,
    exchange_state,
    kept_ids,
    outbox_ids,
    outbox_messages,
    received,
    received_once,
    rows,
)

from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import wait_until
from cluster.link.settings import HOUR
from contract.messages import Heartbeat


def enroll(cluster: ClusterUnderTest, mc: MissionControlServer) -> None:
    """Consumption checked every second, so that a mark that failed to advance would show as
    the same hour sent again within the test."""
    cluster.enroll(mc, consumption="1")


def license_state(cluster: ClusterUnderTest) -> str:
    return str(json.loads(cluster.cli("mc", "status", "--json").stdout)["license"]["state"])


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
    assert wait_until(lambda: license_state(cluster) == "valid", 30)
    mc_status = json.loads(cluster.cli("mc", "status", "--json").stdout)
    assert mc_status["health"]["advice"]["min_nodes"] >= 1
    assert mc_status["link"]["state"] == "ok" and not mc_status["enforcement"]["active"]

    # Consumption: each (environment, hour) is sent exactly once, and the mark advances, while
    # health and license replies keep rewriting the same state (checked every second). Four
    # more license checks received mean four more rounds of the exchange, consumption included.
    def license_checks() -> int:
        return sum(kind == "license" and status == 200 for kind, status in received(mc))

    rounds = license_checks()
    assert wait_until(lambda: license_checks() >= rounds + 4, 30), cluster.logs()
    messages = count(mc, "SELECT count(*) FROM messages WHERE kind = 'consumption'")
    assert messages >= 1 and messages == count(mc, "SELECT count(*) FROM consumption")

    # The mark is this hour's (polled: the hour may turn meanwhile, and the mark follows it).
    def this_hour() -> bool:
        return exchange_state(cluster)["consumption_until"] == math.floor(time.time() / HOUR) * HOUR

    assert wait_until(this_hour, 10)

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
    queued = outbox_messages(cluster)
    assert [kind for _, kind in queued].count("license") <= 1  # a question: only the newest
    mc.start()
    assert wait_until(lambda: not outbox_ids(cluster), 90), cluster.logs()
    for mid in kept_ids(queued):
        assert count(mc, "SELECT count(*) FROM messages WHERE message_id = ?", mid) == 1
    # Exactly once as Mission Control saw it: every delivery it received (its access log,
    # duplicates included) against what it stored and applied. One resend is allowed: the old
    # leader may have been stopped with a delivery on the wire, its reply never read.
    received_once(mc, resends=1)
    # None of the exchange's own messages was set aside as undeliverable.
    assert not set(dead_kinds(cluster)) & {"health", "license", "consumption"}


def test_a_leader_killed_during_an_outage_loses_nothing_and_keeps_the_order(
    cluster: ClusterUnderTest, mc: MissionControlServer
) -> None:
    enroll(cluster, mc)
    cluster.start_nodes(3)
    assert wait_until(lambda: count(mc, "SELECT count(*) FROM messages") >= 3, 60), cluster.logs()
    mc.stop()
    assert wait_until(lambda: len(outbox_ids(cluster)) >= 6, 45), cluster.logs()
    old = cluster.snapshot().leader
    assert old is not None
    cluster.processes[old.node].signal(signal.SIGKILL)
    queued = kept_ids(outbox_messages(cluster))  # the killed leader queues nothing more
    assert len(queued) >= 5
    assert cluster.wait(lambda s: s.leader is not None and s.leader.node != old.node, 30)
    mc.start()
    assert wait_until(lambda: not set(queued) & set(outbox_ids(cluster)), 90), cluster.logs()
    arrived = [r[0] for r in rows(mc, "SELECT message_id FROM messages ORDER BY received_at")]
    # Every message queued before the kill was stored once (message ids are the key of
    # Mission Control's table), in the order they were queued; and was received once: Mission
    # Control was down when the leader died, so nothing was on the wire to be sent again.
    assert [m for m in arrived if m in set(queued)] == queued
    received_once(mc, resends=0)
    assert not set(dead_kinds(cluster)) & {"health", "license", "consumption"}


def test_a_forged_older_epoch_and_other_clusters_are_refused(
    cluster: ClusterUnderTest, mc: MissionControlServer
) -> None:
    from cluster.link.client import MissionControlClient
    from cluster.link.errors import MessageRejected

    enroll(cluster, mc)
    cluster.start_nodes(3)
    assert wait_until(lambda: count(mc, "SELECT count(*) FROM messages") >= 2, 60)
    credential = credential_of(cluster)
    epoch = cluster.snapshot().epoch.value
    assert epoch >= 1
    mc.create_cluster(f"other-{uuid.uuid4().hex[:8]}")
    (other,) = rows(mc, "SELECT id FROM clusters WHERE name LIKE 'other-%'")[0]
    stored = count(mc, "SELECT count(*) FROM messages")

    async def forge() -> None:
        async with MissionControlClient(
            mc.url, credential=credential, ca_file=str(mc.ca_file)
        ) as c:
            with pytest.raises(MessageRejected) as e:
                await c.heartbeat(Heartbeat(message_id=uuid.uuid4(), epoch=epoch - 1))
            assert e.value.status == 409 and e.value.code == "stale_epoch"

    async def trespass() -> tuple[int, dict[str, object]]:
        """This cluster's credential on another cluster's records."""
        tls = ssl.create_default_context(cafile=str(mc.ca_file))
        body = {"message_id": str(uuid.uuid4()), "epoch": epoch}
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{mc.url}/api/v1/clusters/{other}/heartbeat",
                json=body,
                headers={"Authorization": f"Bearer {credential}"},
                ssl=tls,
            ) as response,
        ):
            return response.status, await response.json()

    asyncio.run(forge())
    status, reply = asyncio.run(trespass())
    assert status == 403 and reply["error"]["code"] == "forbidden"
    assert count(mc, "SELECT count(*) FROM messages WHERE cluster_id = ?", other) == 0
    assert count(mc, "SELECT count(*) FROM messages") >= stored
