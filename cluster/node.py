"""`managed node run`: one daemon per cluster node (asyncio; kazoo keeps its own threads).

Each loop (every `loop_interval`, or at once when a watched znode changes) the node reads a
snapshot, refreshes its live znode with its health, and acts on `cluster.decide.decide`.
The ZooKeeper session's listener only hands connection states to the event loop; ZooKeeper calls
run in a small executor (`blocking`), each bounded by `retry_timeout`.

Guarantees:
- SUSPENDED stops leader-only work at once; LOST drops the fence and re-registers on reconnect.
  Services start only after a re-check that the node still leads (connected, fence held).
- Every leader write is fenced (`cluster.zk.fenced_commit`); a write refused by the epoch check
  makes the node step down (in a task of its own, so a service that made the write is stopped
  cleanly rather than cancelled from inside).
- A leader removed from the roster releases the lock (a fenced delete), so another node takes
  over at once instead of following it until its session ends.
- A failing health probe is logged and reported in `/status`, never fatal.
- SIGTERM hands leadership over (the lock and the live znode are deleted in one fenced
  transaction, so followers see it at once) and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, ParamSpec, TypeVar

from cluster import history, switchover, zk
from cluster.aio import wait_event, within
from cluster.config import NodeSettings
from cluster.datadir import DataDir, claim
from cluster.decide import Action, Decision, decide
from cluster.errors import (
    ClusterError,
    FencedOut,
    ListenError,
    MembershipError,
    ZooKeeperUnavailable,
)
from cluster.leadership import LeaderService, LeaderServices
from cluster.live import LiveRegistration
from cluster.metrics import NodeMetrics, StartupMetrics
from cluster.model import ClusterSnapshot, dump, resources_json
from cluster.names import check_address
from cluster.paths import ClusterPaths
from cluster.version import VERSION
from cluster.zk.errors import CONNECTION_LOST, NoNodeError, ZooKeeperError

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


class NodeDaemon:
    """One cluster node. Create, then `await run()`; `request_stop()` ends it cleanly.

    `data_dir`: the node's data directory already claimed by the caller (who may have written
    into it, e.g. its log); claimed in `run()` otherwise. Released when `run()` ends.
    """

    def __init__(
        self,
        settings: NodeSettings,
        services: Sequence[LeaderService] = (),
        clock: Callable[[], float] = time.time,
        node_services: Sequence[LeaderService] = (),
        data_dir: DataDir | None = None,
    ) -> None:
        self.settings = settings
        self.node = settings.node
        self.paths = ClusterPaths(settings.cluster)  # with `node`, `zookeeper`: LeaderContext's
        self._clock = clock
        self._client = zk.make_client(
            settings.zk, settings.session_timeout, settings.zk_auth, ca_file=settings.zk_ca
        )
        self.zookeeper = self._client
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="zk")
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._connected = False
        self._fence: zk.Fence | None = None
        self._snapshot: ClusterSnapshot | None = None
        self._decision = Decision(Action.FOLLOW, "starting")
        self._live = LiveRegistration(
            self.paths, settings.node, settings.resolved_data_dir, clock()
        )
        self.services = LeaderServices(services)
        # Services of every node (e.g. writing its own backup part): started once this node is
        # serving, stopped on exit; they ride out disconnections themselves.
        self.node_services = LeaderServices(node_services)
        self.metrics: NodeMetrics | StartupMetrics = StartupMetrics()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._data_dir = data_dir
        self._tasks: set[asyncio.Future[Any]] = set()  # fire-and-forget work, kept referenced
        self._term: history.Leadership | None = None  # this leadership's history entry
        # When ZooKeeper last answered a call of this node's, and whether leader work is
        # stopped because it has been silent too long since (see `_check_silence`).
        self._answered = time.monotonic()
        self._silent = False
        self._dropped_for: float | None = None  # the `_answered` of the last dropped silence

    # --- the LeaderContext protocol -------------------------------------------------------

    @property
    def fence(self) -> zk.Fence | None:
        return self._fence

    @property
    def snapshot(self) -> ClusterSnapshot | None:
        return self._snapshot

    @property
    def leading(self) -> bool:
        return (
            self._fence is not None
            and self._connected
            and not self._silent
            and self._decision.action is Action.LEAD
        )

    async def blocking(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking ZooKeeper calls in the executor, bounded by `retry_timeout`."""
        loop = asyncio.get_running_loop()
        try:
            return await within(
                self.settings.retry_timeout,
                loop.run_in_executor(self._executor, partial(self._call, fn, *args, **kwargs)),
            )
        except TimeoutError as e:
            raise ZooKeeperUnavailable("ZooKeeper call timed out") from e

    def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn` on an executor thread, noting when ZooKeeper answered there: a busy event loop
        may run the caller later, and ZooKeeper's silence must not count that delay."""
        try:
            result = fn(*args, **kwargs)
        except ZooKeeperError as e:
            if not isinstance(e, CONNECTION_LOST):
                self._answered = time.monotonic()  # an error is an answer too (no such node)
            raise
        self._answered = time.monotonic()  # the session was alive at the server just now
        return result

    async def fenced(self, ops: Sequence[zk.Op]) -> list[zk.Applied]:
        fence = self._fence
        if fence is None or not self._connected:
            raise FencedOut("not the leader")
        try:
            return await self.blocking(zk.fenced_commit, self._client, self.paths, fence, ops)
        except FencedOut:
            self.metrics.fenced_writes_refused.inc()
            log.warning("write refused by the epoch check (epoch %d): stepping down", fence.epoch)
            # The caller may be a service's own task: stopping the services from here would
            # cancel it mid-stop. Drop the fence now (no more writes), stop them in a task.
            self._drop_fence("fenced out")
            self._spawn(self.services.stop())
            raise

    async def advance_epoch(self, past: int) -> None:
        fence = self._fence
        if fence is None or not self._connected:
            raise FencedOut("not the leader")
        if past < fence.epoch:
            return
        moved = await self.blocking(
            zk.advance_epoch, self._client, self.paths, fence, past + 1, self.node, self._clock()
        )
        if self._fence is fence:  # still ours: a step-down meanwhile keeps its own outcome
            self._fence = moved
        log.warning(
            "epoch moved from %d to %d, past the one Mission Control has seen",
            fence.epoch,
            moved.epoch,
        )

    # --- status for the node API ---------------------------------------------------------

    @property
    def role(self) -> str:
        """`leader`, `leader-suspended` (holds the lock, but may not act while disconnected) or
        `follower`."""
        if self._fence is None:
            return "follower"
        return "leader" if self._connected and not self._silent else "leader-suspended"

    def status(self) -> dict[str, Any]:
        snap = self._snapshot
        return {
            "node": self.node,
            "cluster": self.settings.cluster,
            "version": VERSION,
            "role": self.role,
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
            # As last published: probing again would reset the CPU window the loop measures.
            "health": resources_json(self._live.probe.last),
            "health_error": self._live.probe.error,
            "data_dir": str(self.settings.resolved_data_dir),
            "maintenance": bool(snap and snap.maintenance),
            "drained": bool(snap and self.node in snap.drained),
        }

    @property
    def healthy(self) -> bool:
        """Connected, with this session's live znode registered (not the last snapshot's view,
        which may be a loop old)."""
        return self._connected and self._live.session == self._session_id() != 0

    # --- lifecycle ------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self.request_stop)
        if self._data_dir is None:
            self._data_dir = claim(
                self.settings.resolved_data_dir, self.settings.cluster, self.settings.node
            )
        runner: Any = None
        try:
            await self._connect()
            snap = await self._register()
            if snap is None:  # asked to stop before ZooKeeper answered
                return
            member = snap.member(self.node)
            assert member is not None  # checked by _register
            self.metrics = NodeMetrics()
            self.metrics.zk_connected.set(1 if self._connected else 0)
            from cluster import api

            host, port = check_address(self.settings.listen or member.api_address)
            try:
                runner = await api.start(self, host, port)
            except OSError as e:
                raise ListenError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
            log.info("node %s serving its API on %s:%d", self.node, host, port)
            await self.node_services.start(self)
            await self._loop_forever()
        finally:
            await self._shutdown()
            if runner is not None:
                await runner.cleanup()
            self._data_dir.release()

    async def _register(self) -> ClusterSnapshot | None:
        """Read the cluster and register live, riding out ZooKeeper trouble (a server that has
        just rejoined, a session lost at once): a node that is starting keeps trying until it is
        registered or asked to stop. Only a node missing from the roster is fatal.

        Register live first: the HTTP stack and metrics are loaded only after that."""
        delay = 0.25
        while not self._stop.is_set():
            try:
                await self.blocking(zk.ensure_cluster, self._client, self.paths)
                snap = await self._read()
                if snap.member(self.node) is None:
                    raise MembershipError(
                        f"node {self.node} is not in the roster of cluster "
                        f"{self.settings.cluster}: run `managed node join {self.node} ...` first"
                    )
                await self._publish_live(snap, self._session_id())
                return snap
            except (ZooKeeperUnavailable, ZooKeeperError) as e:
                why = str(e) or type(e).__name__
                log.warning("starting: ZooKeeper unavailable (%s): retrying", why)
            await wait_event(self._stop, delay)
            delay = min(delay * 2, self.settings.loop_interval)
        return None

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

    def _on_state(self, state: zk.ConnectionState) -> None:
        """Connection state changes, on the event loop (the listener only forwards them)."""
        log.info("ZooKeeper connection %s", state)
        if state == zk.CONNECTED:
            self._connected = True
            self.metrics.zk_connected.set(1)
        else:
            self._connected = False
            self.metrics.zk_connected.set(0)
            # Curator's rule: on SUSPENDED we may no longer be leader; stop leader work now.
            self._spawn(self.services.stop())
            self.metrics.leader_work_active.set(0)
            if state == zk.LOST:
                self._fence = None
                self._live.session = 0
                self.metrics.is_leader.set(0)
        self._wake.set()

    async def _loop_forever(self) -> None:
        watchdog = asyncio.ensure_future(self._watch_silence())
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                self._wake.clear()  # a change seen during this tick wakes the next one at once
                try:
                    await self._tick()
                except (ZooKeeperUnavailable, ZooKeeperError) as e:
                    log.warning("loop: ZooKeeper unavailable (%s)", type(e).__name__)
                    if self._fence is not None and not self._connected:
                        await self.services.stop()
                except FencedOut:
                    pass
                self.metrics.loop_seconds.observe(time.monotonic() - started)
                await wait_event(self._wake, self.settings.loop_interval)
        finally:
            watchdog.cancel()

    @property
    def _silence_bound(self) -> float:
        """How long a leader may go without an answer from ZooKeeper: two thirds of the
        session, kazoo's own bound for a missed ping. The server expires the session only after
        the whole of it, so the leader stops before anyone else can take over."""
        return self.settings.session_timeout * 2 / 3

    async def _check_silence(self) -> None:
        """Act on ZooKeeper having answered none of this node's calls for `_silence_bound`, as
        kazoo would on a missed ping. kazoo counts every request it sends as a ping, so a node
        that keeps asking (the loop, the backup part writer) may never notice a server cut off
        behind a partition: no reset ever arrives. So this node drops the connection itself
        (kazoo reconnects to another server, keeping the session if the quorum still holds
        it), and a leader stops leader-only work at once, as on SUSPENDED. One slow read does
        not stop a healthy leader for good; the next answer lets it lead again."""
        silent = time.monotonic() - self._answered
        if silent < self._silence_bound:
            return
        if self._dropped_for != self._answered and self._client.drop_connection():
            self._dropped_for = self._answered  # once per silence: then kazoo's own retries
            log.warning("ZooKeeper silent for %.1fs: connection dropped, reconnecting", silent)
        if self._fence is None or self._silent:
            return
        self._silent = True
        log.warning("ZooKeeper silent for %.1fs: leader work stopped until it answers", silent)
        self._decision = Decision(Action.FOLLOW, "ZooKeeper silent: leader work stopped")
        await self.services.stop()
        self.metrics.leader_work_active.set(0)

    async def _watch_silence(self) -> None:
        """Look at ZooKeeper's silence when it reaches the bound, whatever the loop is doing:
        a tick's read may block for the call's bound, past the silence's."""
        while not self._stop.is_set():
            left = self._silence_bound - (time.monotonic() - self._answered)
            if left > 0:
                await wait_event(self._stop, left)
                continue
            await asyncio.sleep(0)  # what the loop has waiting may be an answer: let it in
            await self._check_silence()
            await wait_event(self._stop, self.settings.loop_interval)

    def _watch(self, _event: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def _read(self) -> ClusterSnapshot:
        snap: ClusterSnapshot = await self.blocking(
            zk.read_snapshot, self._client, self.paths, self.settings.retry_timeout, self._watch
        )
        self._snapshot = snap
        self._silent = False  # ZooKeeper answers again: this tick decides whether to lead
        return snap

    async def _tick(self) -> None:
        if not self._connected:
            self._decision = Decision(Action.FOLLOW, "ZooKeeper connection suspended")
            await self.services.stop()
            self.metrics.leader_work_active.set(0)
            return
        snap = await self._read()
        session_id = self._session_id()
        await self._publish_live(snap, session_id)
        decision = decide(snap, self.node, session_id, self._connected, self._clock())
        if decision.reason != self._decision.reason:
            log.info("decision: %s", decision.reason)
        self._decision = decision
        self.metrics.observe(snap)
        if decision.action is Action.ACQUIRE:
            fence = await self.blocking(
                zk.acquire_leadership,
                self._client,
                self.paths,
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
            self._decision = decide(snap, self.node, session_id, self._connected, self._clock())
        action = self._decision.action
        if action is Action.LEAD:
            if self._fence is None:
                # Same session, same lock (e.g. after a restart of this object): re-derive it.
                self._fence = zk.Fence(snap.epoch.value, snap.epoch.version)
            await self._record_leadership(snap)
            await self._write_health_summary(snap)
            # SUSPENDED or a step-down may have come during that write: start only if we still
            # lead (connected, fence held); otherwise the next tick decides again.
            if self.leading:
                await self.services.start(self)
                self.metrics.leader_work_active.set(1)
        elif action is Action.PAUSE:
            await self.services.stop()
            self.metrics.leader_work_active.set(0)
        elif action is Action.RELEASE:
            await self._release(snap, self._decision.reason)
        elif self._fence is not None:
            await self._step_down(self._decision.reason)

    async def _release(self, snap: ClusterSnapshot, reason: str) -> None:
        """Give up a lock this node may not use: drop the fence (no more leader writes), delete
        the leader znode in a fenced transaction (the fence re-derived if needed: the lock is
        ours, so is the epoch), then stop the services. Handing over first is safe because every
        leader write is fenced and Mission Control refuses older epochs; it keeps the next leader
        from waiting while a service finishes (a backup commit may take seconds)."""
        fence = self._fence or zk.Fence(snap.epoch.value, snap.epoch.version)
        ops = self._closing_ops(reason)
        record = switchover.handing_over(snap, self.node, self._clock())
        if record is not None:
            ops.append(zk.SetData(self.paths.switchover, dump(record.to_json())))
        self._drop_fence(reason)
        try:
            await self.blocking(
                zk.fenced_commit,
                self._client,
                self.paths,
                fence,
                [zk.Delete(self.paths.leader), *ops],
            )
            log.info("released the leader lock (epoch %d)", fence.epoch)
        except (FencedOut, NoNodeError):
            log.info("the leader lock had already moved on")
        finally:
            await self.services.stop()

    def _session_id(self) -> int:
        return self._client.session_id

    async def _publish_live(self, snap: ClusterSnapshot, session_id: int) -> None:
        timeout = self.settings.retry_timeout
        if await self.blocking(self._live.publish, self._client, snap, session_id, timeout):
            self._wake.set()

    async def _write_health_summary(self, snap: ClusterSnapshot) -> None:
        fence = self._fence
        assert fence is not None
        summary = snap.health_summary(self.node, fence.epoch, self._clock())
        await self.fenced([zk.SetData(self.paths.health, dump(summary))])

    async def _record_leadership(self, snap: ClusterSnapshot) -> None:
        """Open this leadership's history entry (once per term), and settle a switchover
        record that this leadership ends or that can no longer happen."""
        fence = self._fence
        assert fence is not None
        if self._term is None:
            since = snap.leader.since if snap.leader else self._clock()
            term = history.Leadership(self.node, fence.epoch, since)
            timeout = self.settings.retry_timeout
            ops = await self.blocking(history.opening_ops, self._client, self.paths, term, timeout)
            if ops:
                await self.fenced(ops)
            self._term = term
        settled = switchover.settled(snap, self.node, self._clock())
        if settled is not None:
            await self.fenced([zk.SetData(self.paths.switchover, dump(settled.to_json()))])
            log.info("switchover to %s %s: %s", settled.to, settled.state, settled.outcome)

    def _closing_ops(self, why: str) -> list[zk.Op]:
        """The close of this leadership's history entry, for the write that gives the lock up."""
        if self._term is None or self._fence is None:
            return []
        return [history.closing_op(self.paths, self._term, self._clock(), why)]

    def _drop_fence(self, reason: str) -> None:
        if self._fence is not None:
            log.info("stepping down: %s", reason)
        self._fence = None
        self._term = None
        self.metrics.is_leader.set(0)
        self.metrics.leader_work_active.set(0)

    async def _step_down(self, reason: str) -> None:
        self._drop_fence(reason)
        await self.services.stop()

    def _spawn(self, work: Any) -> None:
        """Run `work` in a task of its own, referenced until done (asyncio keeps weak refs)."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _shutdown(self) -> None:
        # Hand over first, as `_release` does: with the fence dropped no leader write can
        # follow, and the next leader need not wait while the services finish.
        fence = self._fence
        ops: list[zk.Op] = [*self._closing_ops("handed over on shutdown (SIGTERM)")]
        self._drop_fence("shutting down")
        try:
            if self._connected:
                ops.append(zk.Delete(self._live.path))
                if fence is not None:
                    # Hand over: lock and live znode go in one fenced transaction.
                    await self.blocking(
                        zk.fenced_commit,
                        self._client,
                        self.paths,
                        fence,
                        [zk.Delete(self.paths.leader), *ops],
                    )
                    log.info("handed leadership over")
                else:
                    await self.blocking(
                        self._live.remove, self._client, self.settings.retry_timeout
                    )
        except (ClusterError, ZooKeeperError) as e:
            log.info("clean-up on exit incomplete (%s); the session's end removes the rest", e)
        finally:
            await self.services.stop()  # before the client closes: a stop may still use it
            await self.node_services.stop()
            await asyncio.get_running_loop().run_in_executor(None, self._client.close)
            self._executor.shutdown(wait=False, cancel_futures=True)
