"""The leader's exchange driven step by step with a hand-moved clock, on the real ensemble and a
real Mission Control over HTTPS: a long outage (bounded outbox, local license enforcement,
every consumption hour exactly once), link refusals that keep the queue, per-message refusals,
and a link that cannot be used."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterkit import ZK_AUTH, ClusterUnderTest
from mc_exchange_kit import (
    FakeClock,
    InProcessLeader,
    RecordingClient,
    count,
    credential_of,
    dead_kinds,
    exchange_state,
    in_process_leader,
    outbox_ids,
    received_once,
    rows,
)

from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import free_port
from cluster.link import outbox
from cluster.link.exchange import LinkRefused, MissionControlExchange, Unreachable
from cluster.link.settings import DAY, HOUR, Intervals, Link, OutboxBound
from contract.messages import ClusterEventBody, LicenseCheckBody

STEP = 600.0  # every message kind is due at every step of the clock
RECENT_HOURS = 1.0  # health checks all kept: 6
HISTORY_DAYS = 0.5  # then one per hour: 12


@pytest.fixture
def leader(cluster: ClusterUnderTest) -> Iterator[InProcessLeader]:
    yield from in_process_leader(cluster)


def link_of(cluster: ClusterUnderTest, mc: MissionControlServer, t0: float) -> Link:
    enrolled = Link.from_config(cluster.snapshot().config)
    assert enrolled is not None
    return Link(
        url=mc.url,
        cluster_id=enrolled.cluster_id,
        ca_pem=mc.ca_file.read_text(),
        intervals=Intervals(health=STEP, license=STEP, consumption=HOUR, heartbeat=STEP),
        outage_limit=DAY,
        enrolled_at=t0,
        outbox=OutboxBound(recent_hours=RECENT_HOURS, history_days=HISTORY_DAYS),
    )


def client(url: str, credential: str, mc: MissionControlServer) -> RecordingClient:
    return RecordingClient(url, credential=credential, ca_file=str(mc.ca_file))


def hour_of(t: float) -> float:
    return math.floor(t / HOUR) * HOUR


def queued_kinds(leader: InProcessLeader) -> list[str]:
    return [name[0] for name in outbox.Outbox(leader.paths).names(leader.client)]


async def test_a_long_outage_is_bounded_enforced_and_loses_no_consumption(
    cluster: ClusterUnderTest, mc: MissionControlServer, leader: InProcessLeader, tmp_path: Path
) -> None:
    cluster.enroll(mc)
    licensed = mc.cli(
        "licenses", "set", cluster.name, "--host-units", "3", "--expires", "2031-01-01"
    )
    assert licensed.returncode == 0, licensed.stderr
    for node in ("n1", "n2", "n3"):
        leader.go_live(node, memory_gib=16)  # one host unit each: the quota exactly
    leader.refresh()
    t0 = hour_of(time.time()) + 60
    clock = FakeClock(t0)
    link = link_of(cluster, mc, t0)
    exchange = MissionControlExchange(ZK_AUTH, clock=clock)
    credential = credential_of(cluster)
    up = client(mc.url, credential, mc)
    down = client(f"https://127.0.0.1:{free_port()}", credential, mc)
    async with up, down:
        await exchange.step(leader, link, up)
        assert not outbox_ids(cluster)
        assert exchange_state(cluster)["consumption_until"] == hour_of(t0)

        # 36 hours without Mission Control: more than the bound holds (1 h + 12 hourly).
        outage_steps = int(36 * HOUR / STEP)
        for i in range(outage_steps):
            clock.now += STEP
            with pytest.raises(Unreachable):
                await exchange.step(leader, link, down)
            kinds = queued_kinds(leader)
            assert kinds.count("h") <= 6 + 12 and kinds.count("l") <= 1
            if i == int(DAY / STEP) + 1:  # just past the outage limit
                state = exchange_state(cluster)
                assert state["link"]["state"] == "unreachable"
                enforcement = state["enforcement"]
                assert enforcement["active"] and enforcement["host_unit_quota"] == 3
                assert enforcement["host_units_in_use"] == 3
                refused = cluster.cli(
                    "node", "join", "n4", "--datacenter", "dc1", "--api-address", "127.0.0.1:1"
                )
                assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused
                assert "cannot add n4" in refused.stderr and "quota of 3" in refused.stderr
                status = json.loads(cluster.cli("mc", "status", "--json").stdout)
                assert status["license"]["state"] == "unverified"
                assert status["enforcement"]["active"] and status["link"]["state"] == "unreachable"
                text = cluster.cli("cluster", "status").stdout
                assert "unverified" in text and "enforcing 3 host units" in text
        kinds = queued_kinds(leader)
        assert kinds.count("m") == 36  # every hour of consumption, none dropped
        waiting = outbox_ids(cluster)

        # Mission Control is back (at the same moment, so the bound drops nothing more):
        # everything queued arrives once, in order.
        for _ in range(10):
            await exchange.step(leader, link, up)
            if not outbox_ids(cluster) and not exchange_state(cluster)["enforcement"]["active"]:
                break
        assert not outbox_ids(cluster)

    hours = int((hour_of(clock.now) - (hour_of(t0) - HOUR)) / HOUR)
    assert count(mc, "SELECT count(*) FROM consumption") == hours
    assert count(mc, "SELECT count(*) FROM messages WHERE kind = 'consumption'") == hours
    assert exchange_state(cluster)["consumption_until"] == hour_of(clock.now)
    arrived = [r[0] for r in rows(mc, "SELECT message_id FROM messages ORDER BY received_at")]
    assert [m for m in arrived if m in set(waiting)] == waiting  # each stored once, in order
    # Each sent once and applied once: the cluster's every answered delivery, and Mission
    # Control's every received one (duplicates included), against what it stored.
    sent = [mid for _, mid, _ in up.answered]
    assert [m for m in sent if m in set(waiting)] == waiting
    assert not [d for d in up.answered if d[2]], "answered as duplicates"
    received_once(mc, resends=0)
    assert dead_kinds(cluster) == []
    state = exchange_state(cluster)
    assert state["link"]["state"] == "ok" and not state["enforcement"]["active"]
    joined = cluster.cli(
        "node", "join", "n4", "--datacenter", "dc1", "--api-address", "127.0.0.1:1"
    )
    assert joined.returncode == 0, joined.stderr


async def test_a_refused_credential_keeps_the_queue_and_reused_ids_set_one_message_aside(
    cluster: ClusterUnderTest, mc: MissionControlServer, leader: InProcessLeader, tmp_path: Path
) -> None:
    cluster.enroll(mc)
    leader.go_live("n1", memory_gib=16)
    leader.refresh()
    clock = FakeClock(time.time())
    link = link_of(cluster, mc, clock.now)
    exchange = MissionControlExchange(ZK_AUTH, clock=clock)

    # A credential Mission Control does not know (revoked, or another server's): 401.
    async with client(mc.url, f"mcc.{link.cluster_id}.revoked", mc) as refused:
        with pytest.raises(LinkRefused) as raised:
            await exchange.step(leader, link, refused)
    assert raised.value.state == "credential refused"
    queued = outbox_ids(cluster)
    assert len(queued) == 3 and dead_kinds(cluster) == []  # health, license, consumption kept
    status = json.loads(cluster.cli("mc", "status", "--json").stdout)
    assert status["link"]["state"] == "credential refused"
    assert "enroll again" in status["link"]["detail"]
    assert "credential refused" in cluster.cli("mc", "status").stdout

    async with client(mc.url, credential_of(cluster), mc) as up:
        await exchange.step(leader, link, up)
        assert not outbox_ids(cluster)
        for mid in queued:
            assert count(mc, "SELECT count(*) FROM messages WHERE message_id = ?", mid) == 1
        assert exchange_state(cluster)["link"]["state"] == "ok"

        # A message_id reused for another kind is that message's problem alone (409, but not
        # a stale epoch): it is set aside and the exchange goes on with the next one.
        (health_id,) = rows(mc, "SELECT message_id FROM messages WHERE kind = 'health'")[0]
        outbox.Outbox(leader.paths).enqueue(
            leader.client, LicenseCheckBody(host_units_in_use=1.0), health_id
        )
        event = ClusterEventBody(kind="backup_succeeded", detail="")
        after = outbox.Outbox(leader.paths).enqueue(leader.client, event)
        await exchange.step(leader, link, up)
    assert dead_kinds(cluster) == ["license"]
    assert count(mc, "SELECT count(*) FROM messages WHERE message_id = ?", after) == 1


async def test_an_unusable_link_is_reported_and_retried(
    cluster: ClusterUnderTest,
    mc: MissionControlServer,
    leader: InProcessLeader,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster.enroll(mc)
    data, _ = leader.client.get(leader.paths.config)
    config = json.loads(data)
    config["mission_control"]["ca_pem"] = "not a certificate"
    leader.client.set(leader.paths.config, json.dumps(config).encode())
    leader.refresh()
    exchange = MissionControlExchange(ZK_AUTH)
    caplog.set_level(logging.ERROR, logger="cluster.link.exchange")
    await exchange.start(leader)
    try:
        for _ in range(100):
            if exchange_state(cluster).get("link", {}).get("state") == "misconfigured":
                break
            await asyncio.sleep(0.1)
        link = exchange_state(cluster)["link"]
        assert link["state"] == "misconfigured" and "CA certificate" in link["detail"]
    finally:
        await exchange.stop()
    assert "Mission Control link misconfigured" in caplog.text
    assert "Traceback" not in caplog.text


def test_enroll_checks_and_stores_the_outage_limit(
    cluster: ClusterUnderTest, mc: MissionControlServer, tmp_path: Path
) -> None:
    token = mc.create_cluster(cluster.name)
    ca = ["--ca-file", str(mc.ca_file)]
    for bad in ("0", "-1", "400"):
        r = cluster.cli("mc", "enroll", mc.url, token, *ca, "--outage-limit-days", bad)
        assert r.returncode == 2 and "--outage-limit-days" in r.stderr, r.stderr
    r = cluster.cli("mc", "enroll", mc.url, token, *ca, "--outage-limit-days", "nan")
    assert r.returncode == 1 and "outage limit" in r.stderr and r.stderr.count("\n") == 1
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    r = cluster.cli("mc", "enroll", mc.url, token, "--ca-file", str(junk))
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "no valid PEM certificate" in r.stderr and "Traceback" not in r.stderr
    # Nothing above spent the token.
    before = time.time()
    r = cluster.cli("mc", "enroll", mc.url, token, *ca, "--outage-limit-days", "2.5")
    assert r.returncode == 0, r.stderr
    stored = cluster.snapshot().config["mission_control"]
    assert stored["outage_limit_days"] == 2.5
    assert before <= stored["enrolled_at"] <= time.time()
    assert stored["outbox"] == {"recent_hours": 24.0, "history_days": 30.0}
    link = Link.from_config(cluster.snapshot().config)
    assert link is not None and link.outage_limit == 2.5 * DAY
