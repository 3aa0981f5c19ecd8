"""Test kit for the Mission Control exchange: an in-process leader on the real ensemble (its
exchange driven step by step with a hand-moved clock), and readers of Mission Control's database
and of the cluster's outbox and exchange state."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from clusterkit import ZK_AUTH, ClusterUnderTest
from kazoo.exceptions import NoNodeError

from cluster import roster, zk
from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import free_port, wait_until
from cluster.link import outbox
from cluster.link.client import MissionControlClient
from cluster.link.state import read_state
from cluster.model import ClusterSnapshot
from cluster.paths import ClusterPaths
from cluster.secrets import read_secret
from cluster.zk import ZooKeeper
from contract.resources import UNMEASURED
from contract.routes import ROUTES, M, R, Route

GIB = 1 << 30


def count(mc: MissionControlServer, sql: str, *args: object) -> int:
    with sqlite3.connect(mc.base / "mc.db") as db:
        return int(db.execute(sql, args).fetchone()[0])


def rows(mc: MissionControlServer, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(mc.base / "mc.db") as db:
        return list(db.execute(sql, args).fetchall())


_RECEIVED = re.compile(r'"POST /api/v1/clusters/[^/ "]+/([a-z/-]+) HTTP/[0-9.]+" (\d{3}) ')
_KIND_OF_PATH = {route.path: kind for kind, route in ROUTES.items()}


def received(mc: MissionControlServer) -> list[tuple[str, int]]:
    """(kind, status) of every cluster message Mission Control received, duplicates included,
    in arrival order: from its access log (the `mc` fixture turns it on), across restarts."""
    text = mc.log_path.read_text(errors="replace")
    return [
        (_KIND_OF_PATH[path], int(status))
        for path, status in _RECEIVED.findall(text)
        if path in _KIND_OF_PATH
    ]


def resent(mc: MissionControlServer) -> Counter[str]:
    """Per kind, the deliveries Mission Control accepted beyond the messages it stored (and
    applied) once each: resends it answered as duplicates. Heartbeats are never stored."""
    accepted = Counter(kind for kind, status in received(mc) if status == 200)
    stored = Counter(dict(rows(mc, "SELECT kind, count(*) FROM messages GROUP BY kind")))
    accepted.pop("heartbeat", None)
    return Counter({kind: accepted[kind] - stored[kind] for kind in accepted | stored})


def received_once(mc: MissionControlServer, resends: int = 0) -> Counter[str]:
    """Wait (bounded) until every stored message shows in the access log (a line is written
    just after its reply); then `resent(mc)`, asserted to total at most `resends`."""
    seen: list[Counter[str]] = []

    def logged() -> bool:
        seen.append(resent(mc))
        return all(n >= 0 for n in seen[-1].values())

    assert wait_until(logged, 10, 0.1), f"stored but never received: {seen[-1]}"
    assert seen[-1].total() <= resends, f"resent beyond {resends}: {seen[-1]}"
    return seen[-1]


class RecordingClient(MissionControlClient):
    """A cluster's client that records every delivery answered: (kind, message id,
    answered as a duplicate)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answered: list[tuple[str, str, bool]] = []

    async def deliver(self, route: Route[M, R], message: M) -> R:
        reply = await super().deliver(route, message)
        duplicate = bool(getattr(reply, "duplicate", False))
        self.answered.append((route.kind, str(message.message_id), duplicate))
        return reply


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
