"""`managed node run`: one daemon per cluster node (asyncio; kazoo keeps its own threads).

Each loop (every `loop_interval`, or at once when a watched znode changes) the node reads a
snapshot, refreshes its live znode with its health, and acts on `cluster.decide.decide`.
kazoo's listener only hands connection states to the event loop; ZooKeeper calls run in a small
executor, each bounded by `retry_timeout`.

Guarantees:
- SUSPENDED stops leader-only work at once; LOST drops the fence and re-registers on reconnect.
- Every leader write is fenced (`cluster.zk.fenced_commit`); a write refused by the epoch check
  makes the node step down.
- SIGTERM hands leadership over (the lock and the live znode are deleted in one fenced
  transaction, so followers see it at once) and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from kazoo.client import KazooState
from kazoo.exceptions import KazooException, NodeExistsError, NoNodeError

from cluster import health, zk
from cluster.config import NodeSettings
from cluster.datadir import DataDir, claim
from cluster.decide import Action, Decision, decide
from cluster.errors import ClusterError, FencedOut, MembershipError, ZooKeeperUnavailable
from cluster.leadership import LeaderService, LeaderServices
from cluster.metrics import NodeMetrics, StartupMetrics
from cluster.model import ClusterSnapshot, dump
from cluster.names import check_address
from cluster.paths import ClusterPaths
from cluster.version import VERSION

log = logging.getLogger(__name__)


class NodeDaemon:
    """One cluster node. Create, then `await run()`; `request_stop()` ends it cleanly."""

    def __init__(
        self,
        settings: NodeSettings,
        services: Sequence[LeaderService] = (),
        clock: Callable[[], float] = time.time,
        node_services: Sequence[LeaderService] = (),
    ) -> None:
        self.settings = settings
        self._paths = ClusterPaths(settings.cluster)
        self._clock = clock
        self._client = zk.make_client(settings.zk, settings.session_timeout, settings.zk_auth)
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="zk")
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._connected = False
        self._fence: zk.Fence | None = None
        self._snapshot: ClusterSnapshot | None = None
        self._decision = Decision(Action.FOLLOW, "starting")
        self._registered_session = 0
        self._started_at = clock()
        self.services = LeaderServices(services)
        # Services of every node (e.g. writing its own backup part): started once this node is
        # serving, stopped on exit; they ride out disconnections themselves.
        self.node_services = LeaderServices(node_services)
        self.metrics: NodeMetrics | StartupMetrics = StartupMetrics()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._data_dir: DataDir | None = None

    # --- the LeaderContext protocol -------------------------------------------------------

    @property
    def paths(self) -> ClusterPaths:
        return self._paths

    @property
    def node(self) -> str:
        return self.settings.node

    @property
    def fence(self) -> zk.Fence | None:
        return self._fence

    @property
    def snapshot(self) -> ClusterSnapshot | None:
        return self._snapshot

    @property
    def zk_client(self) -> Any:
        return self._client

    @property
    def leading(self) -> bool:
        return self._fence is not None and self._connected and self._decision.action is Action.LEAD

    async def call_zk(self, fn: Any, *args: Any) -> Any:
        """Run a blocking kazoo call in the executor, bounded by `retry_timeout`."""
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._executor, partial(fn, *args)),
                self.settings.retry_timeout,
            )
        except TimeoutError as e:
            raise ZooKeeperUnavailable("ZooKeeper call timed out") from e

    async def fenced(self, ops: Sequence[zk.Op]) -> list[Any]:
        fence = self._fence
        if fence is None or not self._connected:
            raise FencedOut("not the leader")
        try:
            return list(await self.call_zk(zk.fenced_commit, self._client, self._paths, fence, ops))
        except FencedOut:
            self.metrics.fenced_writes_refused.inc()
            log.warning("write refused by the epoch check (epoch %d): stepping down", fence.epoch)
            await self._step_down("fenced out")
            raise

    # --- status for the node API ---------------------------------------------------------

    def status(self) -> dict[str, Any]:
        snap = self._snapshot
        return {
            "node": self.node,
            "cluster": self.settings.cluster,
            "version": VERSION,
            "role": "leader" if self._fence is not None else "follower",
            "leader_work_active": self.leading,
            "zookeeper": "connected" if self._connected else "disconnected",
            "decision": self._decision.reason,
            "leader": snap.leader.node if snap and snap.leader else None,
            "epoch": snap.epoch.value if snap else None,
            # Without ZooKeeper the last snapshot proves nothing: report no quorum.
            "quorum": (
                snap.quorum.to_json()
                if snap and self._connected
                else {"have": 0, "need": snap.quorum.need if snap else 0, "ok": False}
            ),
            "health": health.probe(self.settings.resolved_data_dir).to_json(),
            "data_dir": str(self.settings.resolved_data_dir),
        }

    @property
    def healthy(self) -> bool:
        """Connected, with this session's live znode registered (not the last snapshot's view,
        which may be a loop old)."""
        return self._connected and self._registered_session == self._session_id() != 0

    # --- lifecycle ------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self.request_stop)
        self._data_dir = claim(
            self.settings.resolved_data_dir, self.settings.cluster, self.settings.node
        )
        runner: Any = None
        try:
            await self._connect()
            if self._stop.is_set():
                return
            await self.call_zk(zk.ensure_cluster, self._client, self._paths)
            snap = await self._read()
            member = snap.member(self.node)
            if member is None:
                raise MembershipError(
                    f"node {self.node} is not in the roster of cluster {self.settings.cluster}: "
                    f"run `managed node join {self.node} ...` first"
                )
            # Register live first: the HTTP stack and metrics are loaded only after that.
            await self._publish_live(snap, self._session_id())
            self.metrics = NodeMetrics()
            self.metrics.zk_connected.set(1 if self._connected else 0)
            from cluster import api

            host, port = check_address(self.settings.listen or member.api_address)
            runner = await api.start(self, host, port)
            log.info("node %s serving its API on %s:%d", self.node, host, port)
            await self.node_services.start(self)
            await self._loop_forever()
        finally:
            await self._shutdown()
            if runner is not None:
                await runner.cleanup()
            self._data_dir.release()

    async def _connect(self) -> None:
        assert self._loop is not None
        loop = self._loop
        self._client.add_listener(lambda state: loop.call_soon_threadsafe(self._on_state, state))
        event = self._client.start_async()
        waited = 0.0
        while not self._stop.is_set():
            ready = await loop.run_in_executor(self._executor, event.wait, 0.5)
            if ready and self._client.connected:
                self._connected = True
                return
            waited += 0.5
            if waited in (5.0, 30.0):
                log.warning("still waiting for ZooKeeper at %s", self.settings.zk)

    def _on_state(self, state: str) -> None:
        """Connection state changes, on the event loop (kazoo's listener only forwards them)."""
        log.info("ZooKeeper connection %s", state)
        if state == KazooState.CONNECTED:
            self._connected = True
            self.metrics.zk_connected.set(1)
        else:
            self._connected = False
            self.metrics.zk_connected.set(0)
            # Curator's rule: on SUSPENDED we may no longer be leader; stop leader work now.
            asyncio.ensure_future(self.services.stop())
            self.metrics.leader_work_active.set(0)
            if state == KazooState.LOST:
                self._fence = None
                self._registered_session = 0
                self.metrics.is_leader.set(0)
        self._wake.set()

    async def _loop_forever(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self._wake.clear()  # a change seen during this tick wakes the next one at once
            try:
                await self._tick()
            except (ZooKeeperUnavailable, KazooException) as e:
                log.warning("loop: ZooKeeper unavailable (%s)", type(e).__name__)
                if self._fence is not None and not self._connected:
                    await self.services.stop()
            except FencedOut:
                pass
            self.metrics.loop_seconds.observe(time.monotonic() - started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.loop_interval)

    def _watch(self, _event: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def _read(self) -> ClusterSnapshot:
        snap: ClusterSnapshot = await self.call_zk(
            zk.read_snapshot, self._client, self._paths, self.settings.retry_timeout, self._watch
        )
        self._snapshot = snap
        return snap

    async def _tick(self) -> None:
        if not self._connected:
            self._decision = Decision(Action.FOLLOW, "ZooKeeper connection suspended")
            return
        snap = await self._read()
        session_id = self._session_id()
        await self._publish_live(snap, session_id)
        decision = decide(snap, self.node, session_id, self._connected)
        if decision.reason != self._decision.reason:
            log.info("decision: %s", decision.reason)
        self._decision = decision
        self.metrics.observe(snap)
        if decision.action is Action.ACQUIRE:
            fence = await self.call_zk(
                zk.acquire_leadership,
                self._client,
                self._paths,
                self.node,
                snap.epoch,
                self._clock(),
            )
            if fence is None:
                return
            self._fence = fence
            self.metrics.elections.inc()
            self.metrics.is_leader.set(1)
            log.info("took leadership with epoch %d", fence.epoch)
            snap = await self._read()
            self._decision = decide(snap, self.node, session_id, self._connected)
        if self._decision.action is Action.LEAD:
            if self._fence is None:
                # Same session, same lock (e.g. after a restart of this object): re-derive it.
                self._fence = zk.Fence(snap.epoch.value, snap.epoch.version)
            await self._write_health_summary(snap)
            await self.services.start(self)
            self.metrics.leader_work_active.set(1)
        elif self._decision.action is Action.PAUSE:
            await self.services.stop()
            self.metrics.leader_work_active.set(0)
        elif self._fence is not None:
            await self._step_down(self._decision.reason)

    def _session_id(self) -> int:
        client_id = self._client.client_id
        return int(client_id[0]) if client_id else 0

    async def _publish_live(self, snap: ClusterSnapshot, session_id: int) -> None:
        data = dump(
            {
                "version": VERSION,
                "started_at": self._started_at,
                "health": health.probe(self.settings.resolved_data_dir).to_json(),
            }
        )
        path = self._paths.live_member(self.node)
        mine = snap.live_member(self.node)
        if mine is not None and mine.session_id == session_id:
            await self.call_zk(self._client.set, path, data)
            self._registered_session = session_id
            return
        if mine is not None:
            log.info("live znode held by an earlier session of this node: waiting for it to expire")
            return
        try:
            await self.call_zk(partial(self._client.create, path, data, ephemeral=True))
            self._registered_session = session_id
            log.info("registered live as %s", self.node)
        except NodeExistsError:
            pass
        self._wake.set()

    async def _write_health_summary(self, snap: ClusterSnapshot) -> None:
        fence = self._fence
        assert fence is not None
        summary = {
            "cluster": snap.cluster,
            "leader": self.node,
            "epoch": fence.epoch,
            "at": self._clock(),
            "quorum": snap.quorum.to_json(),
            "nodes": {
                e.node: {
                    "datacenter": e.datacenter,
                    "live": snap.live_member(e.node) is not None,
                    **(
                        {"version": m.version, "health": m.health.to_json()}
                        if (m := snap.live_member(e.node))
                        else {}
                    ),
                }
                for e in snap.roster
            },
        }
        await self.fenced([zk.SetData(self._paths.health, dump(summary))])

    async def _step_down(self, reason: str) -> None:
        if self._fence is not None:
            log.info("stepping down: %s", reason)
        self._fence = None
        self.metrics.is_leader.set(0)
        self.metrics.leader_work_active.set(0)
        await self.services.stop()

    async def _shutdown(self) -> None:
        await self.services.stop()
        await self.node_services.stop()
        try:
            if self._connected:
                ops: list[zk.Op] = [zk.Delete(self._paths.live_member(self.node))]
                if self._fence is not None:
                    # Hand over: lock and live znode go in one fenced transaction.
                    await self.call_zk(
                        zk.fenced_commit,
                        self._client,
                        self._paths,
                        self._fence,
                        [zk.Delete(self._paths.leader), *ops],
                    )
                    log.info("handed leadership over")
                elif self._registered_session:
                    await self.call_zk(self._client.delete, self._paths.live_member(self.node))
        except (ClusterError, KazooException, NoNodeError) as e:
            log.info("clean-up on exit incomplete (%s); the session's end removes the rest", e)
        finally:
            self._fence = None
            await asyncio.get_running_loop().run_in_executor(None, zk.close, self._client)
            self._executor.shutdown(wait=False, cancel_futures=True)
