"""The leader's exchange with Mission Control: health, license, consumption, heartbeat.

Runs only on the leader with quorum (a `LeaderService`). Periodic messages are first written to
the ZooKeeper outbox (`cluster.outbox`) and then delivered oldest first; a delivered message is
removed, and the reply's effect (license state, sizing advice) recorded, in one fenced
transaction. So nothing is lost while Mission Control is unreachable or the leader changes, a
resend keeps its `message_id` (Mission Control deduplicates), and a stale leader cannot remove
or record anything. Consumption is reported per full hour from a high-water mark kept in
ZooKeeper, so hours missed during an outage or a leader change are reported later, once each.

After `outage_limit` without contact the cluster marks its license `unverified` and enforces its
last known quota itself (`enforcement` in the state znode).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cluster import outbox, zk
from cluster.errors import ClusterError, FencedOut
from cluster.leadership import LeaderContext
from cluster.model import ClusterSnapshot, dump
from cluster.paths import ClusterPaths
from cluster.secrets import read_secret

log = logging.getLogger(__name__)

CREDENTIAL_SECRET = "mc-credential"
HOUR = 3600.0
GIB = 1 << 30
HOST_UNIT_BYTES = 16 * GIB  # one host unit per 16 GiB of memory, at least a quarter
DAY = 86400.0

HeartbeatHandler = Callable[[LeaderContext, dict[str, Any], datetime], Awaitable[None]]


@dataclass(frozen=True)
class Intervals:
    health: float = 120.0
    license: float = 300.0
    consumption: float = HOUR
    heartbeat: float = 30.0

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Intervals:
        base = cls()
        return cls(
            **{
                k: float(d.get(k, getattr(base, k)))
                for k in ("health", "license", "consumption", "heartbeat")
            }
        )


@dataclass(frozen=True)
class Link:
    """How this cluster reaches Mission Control (the `mission_control` key of its config)."""

    url: str
    cluster_id: str
    ca_pem: str | None = None
    insecure_http: bool = False
    intervals: Intervals = field(default_factory=Intervals)
    outage_limit: float = 14 * DAY

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Link | None:
        d = config.get("mission_control")
        if not isinstance(d, dict) or not d.get("url") or not d.get("cluster_id"):
            return None
        return cls(
            url=str(d["url"]),
            cluster_id=str(d["cluster_id"]),
            ca_pem=d.get("ca_pem"),
            insecure_http=bool(d.get("insecure_http", False)),
            intervals=Intervals.from_json(d.get("intervals") or {}),
            outage_limit=float(d.get("outage_limit_days", 14)) * DAY,
        )


def state_path(paths: ClusterPaths) -> str:
    return paths.mission_control


def host_units(memory_total: int) -> float:
    """Host units of one node: its memory in units of 16 GiB, in quarters, at least 0.25."""
    return max(0.25, math.ceil(4 * memory_total / HOST_UNIT_BYTES) / 4)


def health_payload(snap: ClusterSnapshot) -> dict[str, Any]:
    nodes = []
    for e in snap.roster:
        m = snap.live_member(e.node)
        h = m.health if m else None
        nodes.append(
            {
                "node": e.node,
                "datacenter": e.datacenter or None,
                "leader": bool(snap.leader and snap.leader.node == e.node),
                "version": (m.version if m else "") or "unknown",
                "state": "healthy" if m else "down",
                "cpu_cores": max(1, h.cpu_count) if h else 1,
                "cpu_percent": min(100.0, max(0.0, h.cpu_percent)) if h else 0.0,
                "memory_total_bytes": h.memory_total if h else 0,
                "memory_used_bytes": min(h.memory_used, h.memory_total) if h else 0,
                "disk_total_bytes": h.disk_total if h else 0,
                "disk_used_bytes": min(h.disk_used, h.disk_total) if h else 0,
            }
        )
    return {"nodes": nodes}


def cluster_host_units(snap: ClusterSnapshot) -> float:
    return sum(host_units(m.health.memory_total) for m in snap.live)


def environments(snap: ClusterSnapshot) -> dict[str, float]:
    """Host units per environment: the config's `environments`, else one for the whole cluster."""
    configured = snap.config.get("environments")
    if isinstance(configured, dict) and configured:
        return {str(k): float(v) for k, v in configured.items() if isinstance(v, int | float)}
    return {"default": cluster_host_units(snap)}


def due_hours(reported_until: float | None, now: float, cap: int = 24 * 30) -> list[float]:
    """Starts of the full hours not yet reported, oldest first (at most `cap`)."""
    current = math.floor(now / HOUR) * HOUR
    start = current - HOUR if reported_until is None else reported_until
    hours = []
    t = max(start, current - cap * HOUR)
    while t < current:
        hours.append(t)
        t += HOUR
    return hours


def license_view(state: dict[str, Any], link: Link | None, now: float) -> dict[str, Any]:
    """What `cluster status` shows: the last license reply, or `unverified` after a long outage."""
    lic = dict(state.get("license") or {})
    if link is None:
        return {"state": "not enrolled"}
    last = state.get("last_contact")
    if last is None or now - float(last) > link.outage_limit:
        quota = (lic.get("quotas") or {}).get("host_units")
        return {**lic, "state": "unverified", "enforcing_host_units": quota, "last_contact": last}
    return {**lic, "last_contact": last} if lic else {"state": "unknown", "last_contact": last}


class MissionControlExchange:
    """A `LeaderService`: produces periodic messages into the outbox and delivers them."""

    name = "mission-control"

    def __init__(
        self,
        auth: str | None,
        data_dir: Path,
        heartbeat_handler: HeartbeatHandler | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._auth = auth
        self._data_dir = data_dir
        self._clock = clock
        self._heartbeat_handler = heartbeat_handler
        self._task: asyncio.Task[None] | None = None
        self._next: dict[str, float] = {}

    async def start(self, ctx: LeaderContext) -> None:
        self._next = {}
        self._task = asyncio.create_task(self._run(ctx), name="mission-control")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self, ctx: LeaderContext) -> None:
        from mission_control.client import MissionControlClient  # aiohttp: leader only

        backoff = 0.5
        while True:
            link = Link.from_config(ctx.snapshot.config if ctx.snapshot else {})
            credential = None
            if link is not None:
                credential = await ctx.call_zk(
                    read_secret_quiet, ctx.zk_client, ctx.paths, self._auth
                )
            if link is None or credential is None:
                await asyncio.sleep(1.0)
                continue
            ca_file = self._ca_file(link)
            async with MissionControlClient(
                link.url, credential=credential, ca_file=ca_file, insecure_http=link.insecure_http
            ) as client:
                while (
                    ctx.leading
                    and Link.from_config(ctx.snapshot.config if ctx.snapshot else {}) == link
                ):
                    try:
                        await self._once(ctx, link, client)
                        backoff = 0.5
                        await asyncio.sleep(0.2)
                    except FencedOut:
                        return
                    except _Unavailable as e:
                        log.info("Mission Control unavailable (%s): retrying in %.1fs", e, backoff)
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 15.0)
                    except ClusterError as e:
                        log.warning("exchange paused: %s", e)
                        await asyncio.sleep(1.0)
                    except Exception:
                        # Never die silently: log, back off and keep the queue moving.
                        log.exception("exchange step failed; retrying in %.1fs", backoff)
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 15.0)
            if not ctx.leading:
                await asyncio.sleep(0.5)

    def _ca_file(self, link: Link) -> str | None:
        if not link.ca_pem:
            return None
        path = self._data_dir / "mission-control-ca.pem"
        if not path.exists() or path.read_text() != link.ca_pem:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(link.ca_pem)
            tmp.replace(path)
        return str(path)

    def _due(self, kind: str, every: float, now: float) -> bool:
        if now >= self._next.get(kind, 0.0):
            self._next[kind] = now + every
            return True
        return False

    async def _once(self, ctx: LeaderContext, link: Link, client: Any) -> None:
        from mission_control.errors import MessageRejected, MissionControlUnavailable

        now = self._clock()
        snap = ctx.snapshot
        if snap is None or ctx.fence is None:
            return
        state = await ctx.call_zk(read_state, ctx.zk_client, ctx.paths)
        await self._produce(ctx, link, snap, state, now)
        try:
            await self._deliver(ctx, client, state)
            if self._due("heartbeat", link.intervals.heartbeat, now):
                await self._heartbeat(ctx, client)
        except MissionControlUnavailable as e:
            await self._check_outage(ctx, link, state, now)
            raise _Unavailable(str(e)) from e
        except MessageRejected as e:
            if e.status == 409:
                log.warning("Mission Control refused our epoch (%s): a newer leader exists", e)
                raise FencedOut(str(e)) from e
            raise

    async def _produce(
        self,
        ctx: LeaderContext,
        link: Link,
        snap: ClusterSnapshot,
        state: dict[str, Any],
        now: float,
    ) -> None:
        messages: list[tuple[str, dict[str, Any]]] = []
        if self._due("health", link.intervals.health, now):
            messages.append(("health", health_payload(snap)))
        if self._due("license", link.intervals.license, now):
            messages.append(("license", {"host_units_in_use": cluster_host_units(snap)}))
        hours: list[float] = []
        if self._due("consumption", min(link.intervals.consumption, 60.0), now):
            hours = due_hours(state.get("consumption_until"), now)
            for start in hours:
                for env, units in environments(snap).items():
                    messages.append(
                        (
                            "consumption",
                            {
                                "environment": env,
                                "period_start": datetime.fromtimestamp(start, UTC).isoformat(),
                                "host_units": units,
                                "host_unit_hours": units,
                            },
                        )
                    )
        if not messages:
            return
        ops: list[zk.Op] = [
            zk.Create(
                f"{outbox.outbox_path(ctx.paths)}/{outbox.PREFIX}",
                outbox.record(kind, payload, now),
                sequence=True,
            )
            for kind, payload in messages
        ]
        if hours:
            ops.append(
                zk.SetData(
                    state_path(ctx.paths), dump({**state, "consumption_until": hours[-1] + HOUR})
                )
            )
        await ctx.fenced(ops)

    async def _deliver(self, ctx: LeaderContext, client: Any, state: dict[str, Any]) -> None:
        from mission_control.errors import MessageRejected

        fence = ctx.fence
        assert fence is not None
        pending = await ctx.call_zk(outbox.pending, ctx.zk_client, ctx.paths)
        for message in pending:
            try:
                reply = await client.send(message.kind, message.body(fence.epoch))
            except MessageRejected as e:
                if e.status == 409:
                    raise
                await self._set_aside(ctx, message, f"Mission Control refused it: {e}")
                continue
            except ValueError as e:  # a kind this client cannot send
                await self._set_aside(ctx, message, str(e))
                continue
            state = {**state, "last_contact": self._clock()}
            if message.kind == "license":
                state["license"] = {
                    k: reply.get(k) for k in ("state", "expires", "days_left", "quotas")
                }
            elif message.kind == "health":
                state["health"] = {k: reply.get(k) for k in ("status", "reasons", "advice")}
            await ctx.fenced(
                [
                    zk.Delete(outbox.path_of(ctx.paths, message)),
                    zk.SetData(state_path(ctx.paths), dump(state)),
                ]
            )

    async def _set_aside(
        self, ctx: LeaderContext, message: outbox.OutboxMessage, reason: str
    ) -> None:
        """Move an undeliverable message to `outbox-dead` (kept for an operator), unblocking
        the queue behind it."""
        log.error("outbox message %s (%s) set aside: %s", message.message_id, message.kind, reason)
        record = {
            "kind": message.kind,
            "payload": message.payload,
            "message_id": message.message_id,
            "error": reason,
        }
        await ctx.fenced(
            [
                zk.Delete(outbox.path_of(ctx.paths, message)),
                zk.Create(f"{outbox.dead_path(ctx.paths)}/{message.znode}", dump(record)),
            ]
        )

    async def _heartbeat(self, ctx: LeaderContext, client: Any) -> None:
        import uuid

        fence = ctx.fence
        assert fence is not None
        reply = await client.send(
            "heartbeat", {"message_id": str(uuid.uuid4()), "epoch": fence.epoch}
        )
        if self._heartbeat_handler is not None:
            await self._heartbeat_handler(ctx, reply, datetime.fromtimestamp(self._clock(), UTC))

    async def _check_outage(
        self, ctx: LeaderContext, link: Link, state: dict[str, Any], now: float
    ) -> None:
        if "last_contact" not in state:
            await ctx.fenced(
                [zk.SetData(state_path(ctx.paths), dump({**state, "last_contact": now}))]
            )


class _Unavailable(Exception):
    pass


def read_secret_quiet(client: Any, paths: ClusterPaths, auth: str | None) -> str | None:
    """The stored credential, or None (logged) when it cannot be read."""
    try:
        data = read_secret(client, paths, auth, CREDENTIAL_SECRET)
    except ClusterError as e:
        log.warning("cannot read the Mission Control credential: %s", e)
        return None
    return data.decode() if data else None


def read_state(client: Any, paths: ClusterPaths) -> dict[str, Any]:
    try:
        data, _ = client.get(state_path(paths))
    except Exception:
        return {}
    try:
        loaded = json.loads(data or b"{}")
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}
