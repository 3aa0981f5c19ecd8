"""Test kit for the Mission Control exchange: an in-process leader on the real ensemble (its
exchange driven step by step with a hand-moved clock), and readers of Mission Control's database
and of the cluster's outbox and exchange state."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from clusterkit import ZK_AUTH, ClusterUnderTest
from kazoo.exceptions import NoNodeError

from cluster import roster, zk
from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import free_port
from cluster.link import outbox
from cluster.link.state import read_state
from cluster.model import ClusterSnapshot
from cluster.paths import ClusterPaths
from cluster.secrets import read_secret
from cluster.zk import ZooKeeper
from contract.resources import UNMEASURED

GIB = 1 << 30


def count(mc: MissionControlServer, sql: str, *args: object) -> int:
    with sqlite3.connect(mc.base / "mc.db") as db:
        return int(db.execute(sql, args).fetchone()[0])


def rows(mc: MissionControlServer, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(mc.base / "mc.db") as db:
        return list(db.execute(sql, args).fetchall())


def outbox_messages(cluster: ClusterUnderTest) -> list[tuple[str, str]]:
    """(message id, kind) of every queued message, in delivery order."""
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        found = []
        for name in outbox.Outbox(cluster.paths).names(client):
            try:
                data, _ = client.get(f"{cluster.paths.outbox}/{name}")
            except NoNodeError:
                continue  # delivered between the listing and the read
            record = json.loads(data)
            found.append((record["message_id"], record["kind"]))
        return found
    finally:
        zk.close(client)


def outbox_ids(cluster: ClusterUnderTest) -> list[str]:
    """Message ids in the outbox, in delivery order."""
    return [mid for mid, _ in outbox_messages(cluster)]


def kept_ids(queued: list[tuple[str, str]]) -> list[str]:
    """The ids of `queued` that must all arrive: a pending license check is replaced by the
    next one (the outbox keeps only the newest), every other message is kept."""
    return [mid for mid, kind in queued if kind != "license"]


def exchange_state(cluster: ClusterUnderTest) -> dict[str, Any]:
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        return read_state(client, cluster.paths)
    finally:
        zk.close(client)


def dead_kinds(cluster: ClusterUnderTest) -> list[str]:
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        kinds = []
        for name in client.children(cluster.paths.outbox_dead):
            data, _ = client.get(f"{cluster.paths.outbox_dead}/{name}")
            kinds.append(json.loads(data)["kind"])
        return kinds
    finally:
        zk.close(client)


def credential_of(cluster: ClusterUnderTest) -> str:
    return secret_of(cluster, "mc-credential")


def secret_of(cluster: ClusterUnderTest, name: str) -> str:
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        secret = read_secret(client, cluster.paths, ZK_AUTH, name)
    finally:
        zk.close(client)
    assert secret is not None
    return secret.decode()


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class InProcessLeader:
    """A `LeaderContext` holding a real fence (the epoch bumped in ZooKeeper)."""

    client: ZooKeeper
    paths: ClusterPaths
    fence: zk.Fence | None
    snapshot: ClusterSnapshot | None = None
    node: str = "n1"
    leading: bool = True

    @property
    def zookeeper(self) -> ZooKeeper:
        return self.client

    async def fenced(self, ops: Sequence[zk.Op]) -> list[Any]:
        assert self.fence is not None
        return await asyncio.to_thread(zk.fenced_commit, self.client, self.paths, self.fence, ops)

    async def blocking(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.wait_for(asyncio.to_thread(fn, *args), 20)

    async def advance_epoch(self, past: int) -> None:
        assert self.fence is not None
        self.fence = await asyncio.to_thread(
            zk.advance_epoch, self.client, self.paths, self.fence, past + 1, self.node, time.time()
        )

    def refresh(self) -> ClusterSnapshot:
        self.snapshot = zk.read_snapshot(self.client, self.paths)
        return self.snapshot

    def go_live(self, node: str, memory_gib: int, datacenter: str = "dc1") -> None:
        """Put `node` in the roster and make it live (an ephemeral znode of this session)."""
        roster.join(self.client, self.paths, node, datacenter, f"127.0.0.1:{free_port()}")
        health = UNMEASURED.replaced(
            memory_total_bytes=memory_gib * GIB, memory_used_bytes=GIB, cpu_cores=4
        ).to_json()
        body = {"version": "1.0", "started_at": time.time(), "health": health}
        self.client.create(self.paths.live_member(node), json.dumps(body).encode(), ephemeral=True)


def in_process_leader(cluster: ClusterUnderTest) -> Iterator[InProcessLeader]:
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        zk.ensure_cluster(client, cluster.paths)
        snap = zk.read_snapshot(client, cluster.paths)
        fence = zk.acquire_leadership(client, cluster.paths, "n1", snap.epoch, time.time())
        assert fence is not None
        yield InProcessLeader(client, cluster.paths, fence)
    finally:
        zk.close(client)
