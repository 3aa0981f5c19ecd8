"""The leader's exchange with Mission Control: health, license, consumption, heartbeat.

Runs only on the leader with quorum (a `LeaderService`). Periodic messages are first written to
the ZooKeeper outbox (`cluster.link.outbox`) and then delivered oldest first; a delivered message is
removed, and the reply's effect (license state, sizing advice) recorded, in one fenced
transaction. So nothing is lost while Mission Control is unreachable or the leader changes, a
resend keeps its `message_id` (Mission Control deduplicates), and a stale leader cannot remove
or record anything. Consumption is reported per full hour from a high-water mark kept in
ZooKeeper and advanced in the transaction that queues those hours, so hours missed during an
outage or a leader change are reported later, once each. All writes of the exchange's state go
through one compare-and-set writer (`cluster.link.state`).

Refusals: a 409 `stale_epoch` naming a newest epoch above ours means a newer leader exists: the
exchange stops for this term; naming one not above ours (ZooKeeper restored from an older
backup), the leader moves the epoch past it in a fenced write and delivers again.
A refusal of one message's content (400, 413, 422, or a 409 such as `message_id_reused`) moves
that message to `outbox-dead` for an operator, so the queue keeps moving. Any other refusal
(401 credential refused, 403, 404 cluster unknown, ...) is a problem of the link, not of the
message: every message stays queued, the state's `link` says what is wrong (`managed mc
status`), one error is logged, and delivery is retried with back-off. A 401
`credential_revoked` (the credential was reported leaked) is first answered by renewing it
(`cluster.link.credentials.renew_after_leak`), after which delivery goes on with the new one.

The outbox is bounded during long outages (`cluster.link.outbox.Outbox.trim`,
`cluster.link.settings.OutboxBound`).
After the outage limit without contact the license is `unverified` and the leader records the
quota the cluster then enforces itself (`enforcement` key; `cluster.link.licensing`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from cluster import zk
from cluster.aio import cancel_and_wait, within
from cluster.errors import ClusterError, FencedOut
from cluster.guarded import SettingsGuard
from cluster.leadership import LeaderContext
from cluster.link.credentials import CREDENTIAL_SECRET, renew_after_leak
from cluster.link.errors import MessageRejected, MissionControlUnavailable
from cluster.link.licensing import (
    Enforcement,
    cluster_host_units,
    decide_enforcement,
    license_view,
)
from cluster.link.messages import (
    consumption_bodies,
    due_hours,
    health_body,
    link_problem,
    refusal_action,
)
from cluster.link.outbox import Bound, Outbox, OutboxMessage
from cluster.link.settings import HOUR, Link
from cluster.link.state import StateMoved, StateWriter
from cluster.model import ClusterSnapshot
from cluster.paths import ClusterPaths
from cluster.secrets import read_secret
from cluster.zk import ZooKeeper
from contract.limits import MAX_EPOCH
from contract.messages import (
    HealthReply,
    Heartbeat,
    HeartbeatReply,
    LicenseCheckBody,
    LicenseReply,
)
from contract.routes import ROUTES, QueuedBody, route_of

if TYPE_CHECKING:  # aiohttp is loaded only on the leader, when it first talks (start-up time)
    from cluster.link.client import MissionControlClient

log = logging.getLogger(__name__)

SWITCH_REPORT_TIMEOUT = 10.0  # seconds to report a link change through the old link
LINK_RETRY_MAX = 60.0  # seconds between attempts while Mission Control refuses the link
MISCONFIGURED_RETRY = 30.0

HeartbeatHandler = Callable[[LeaderContext, HeartbeatReply, datetime], Awaitable[None]]
#: Asks ZooKeeper servers (HOST:PORT) whether they serve (`cluster.zk.probe.serving`).
ZooKeeperProbe = Callable[[Iterable[str]], Mapping[str, bool]]
PROBE_TIMEOUT = 3.0  # seconds the health report waits for the ZooKeeper servers' answers


class LinkRefused(ClusterError):
    """Mission Control refused the link itself (credential, cluster record, route)."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state


class Unreachable(Exception):
    """Mission Control could not be reached or failed (5xx): every message stays queued."""


class MissionControlExchange:
    """A `LeaderService`: produces periodic messages into the outbox and delivers them."""

    name = "mission-control"

    def __init__(
        self,
        auth: str | None,
        heartbeat_handler: HeartbeatHandler | None = None,
        clock: Callable[[], float] = time.time,
        zk_probe: ZooKeeperProbe | None = None,
    ) -> None:
        self._auth = auth
        self._zk_probe = zk_probe
        self._clock = clock
        self._heartbeat_handler = heartbeat_handler
        self._task: asyncio.Task[None] | None = None
        self._next: dict[str, float] = {}
        self._state = StateWriter()
        self._logged_link: str | None = None

    async def start(self, ctx: LeaderContext) -> None:
        self._next = {}
        self._state.forget()
        self._task = asyncio.create_task(self._run(ctx), name="mission-control")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def client_for(self, link: Link, credential: str) -> MissionControlClient:
        """The client of `link`; ValueError (one clear line) if the URL or CA cannot be used."""
        from cluster.link.client import MissionControlClient  # aiohttp: leader only (start-up)

        return MissionControlClient(
            link.url,
            credential=credential,
            ca_pem=link.ca_pem or None,
        )

    async def _run(self, ctx: LeaderContext) -> None:
        backoff = 0.5
        while True:
            link = Link.from_config(ctx.snapshot.config if ctx.snapshot else {})
            credential = None
            if link is not None:
                try:
                    credential = await ctx.blocking(
                        read_secret_quiet, ctx.zookeeper, ctx.paths, self._auth
                    )
                except ClusterError as e:  # e.g. ZooKeeper did not answer in time
                    log.warning("cannot read the Mission Control credential: %s", e)
            if link is None or credential is None:
                await asyncio.sleep(1.0)
                continue
            try:
                client = self.client_for(link, credential)
            except (ValueError, OSError) as e:
                await self._link_trouble(ctx, "misconfigured", f"cannot use the link: {e}")
                await asyncio.sleep(MISCONFIGURED_RETRY)
                continue
            async with client:
                while (
                    ctx.leading
                    and Link.from_config(ctx.snapshot.config if ctx.snapshot else {}) == link
                ):
                    try:
                        await self.step(ctx, link, client)
                        backoff = 0.5
                        await asyncio.sleep(0.2)
                    except FencedOut:
                        return
                    except StateMoved:
                        continue  # read the state again and redo the step
                    except LinkRefused:
                        # The credential may have been replaced: read it again, then retry.
                        await asyncio.sleep(backoff)
                        backoff = min(max(backoff, 1.0) * 2, LINK_RETRY_MAX)
                        break
                    except Unreachable as e:
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
                now = Link.from_config(ctx.snapshot.config if ctx.snapshot else {})
                if ctx.leading and (
                    now is None or (now.url, now.ca_pem) != (link.url, link.ca_pem)
                ):
                    await self._report_switch(ctx, client)
            if not ctx.leading:
                await asyncio.sleep(0.5)

    def _is_due(self, kind: str, now: float) -> bool:
        return now >= self._next.get(kind, 0.0)

    async def step(self, ctx: LeaderContext, link: Link, client: MissionControlClient) -> None:
        """One round: queue what is due, record enforcement, deliver the queue, heartbeat.

        Raises `FencedOut` (stop), `StateMoved` (redo), `LinkRefused` (retry later),
        `Unreachable` (Mission Control unreachable: retry later).
        """
        now = self._clock()
        snap = ctx.snapshot
        if snap is None or ctx.fence is None:
            return
        await self._produce(ctx, link, snap, now)
        await self._enforce(ctx, link, snap, now)
        try:
            await self._deliver(ctx, client)
            if self._is_due("heartbeat", now):
                self._next["heartbeat"] = now + link.intervals.heartbeat
                await self._heartbeat(ctx, client)
        except MissionControlUnavailable as e:
            await self._link_trouble(ctx, "unreachable", str(e), level=logging.INFO)
            raise Unreachable(str(e)) from e
        except MessageRejected as e:
            action = refusal_action(e.status, e.code)
            if action == "fenced":
                if await self._heal_epoch(ctx, e):
                    return  # the next step delivers with the new epoch
                await self._link_trouble(ctx, "epoch refused", str(e))
                log.warning("Mission Control refused our epoch (%s): a newer leader exists", e)
                raise FencedOut(str(e)) from e
            if e.code == "credential_revoked" and await renew_after_leak(ctx, link, self._auth):
                raise LinkRefused("renewed", "credential renewed after a leak report") from e
            state, line = link_problem(e.status, str(e))
            await self._link_trouble(ctx, state, line)
            raise LinkRefused(state, line) from e

    async def _report_switch(self, ctx: LeaderContext, old: MissionControlClient) -> None:
        """The link changed (URL, CA or credential): before the new one is used, report the
        change (`cluster.guarded`) and deliver what is queued through the Mission Control that
        was trusted until now, so a redirection cannot hide its own alert. Best effort: an
        unreachable old Mission Control does not block the switch."""
        try:
            await SettingsGuard().step(ctx)
            await within(SWITCH_REPORT_TIMEOUT, self._deliver(ctx, old))
        except FencedOut:
            raise
        except Exception as e:  # the queue stays; the new link delivers it
            log.info("could not report the link change through the previous link: %r", e)

    async def _heal_epoch(self, ctx: LeaderContext, refusal: MessageRejected) -> bool:
        """Move the cluster's epoch past the newest one Mission Control has seen, when that is
        not older than ours: ZooKeeper was restored from an older backup (or its epoch was set
        back), no other leader exists. True when the epoch moved."""
        fence, newest = ctx.fence, refusal.newest_epoch
        if fence is None or newest is None or newest < fence.epoch:
            return False  # a newer leader spoke: this one is deposed
        if newest >= MAX_EPOCH:
            await self._link_trouble(
                ctx, "epoch refused", f"Mission Control has seen epoch {newest}: no epoch is left"
            )
            return False
        await self._link_trouble(
            ctx,
            "epoch behind",
            f"Mission Control has seen epoch {newest}, this cluster is at {fence.epoch}: "
            "moving past it",
            level=logging.WARNING,
        )
        await ctx.advance_epoch(newest)
        return True

    async def _probe(self, snap: ClusterSnapshot) -> Mapping[str, bool] | None:
        """Which declared ZooKeeper servers serve, as this leader sees them (None: no data
        centers declared, no probe, or it did not answer in time)."""
        topology = snap.topology
        if topology is None or self._zk_probe is None:
            return None
        servers = [z for s in topology.sites for z in s.zookeeper]
        try:
            return await within(PROBE_TIMEOUT, asyncio.to_thread(self._zk_probe, servers))
        except (TimeoutError, OSError, ValueError) as e:
            log.info("could not ask the ZooKeeper servers how they are: %r", e)
            return None

    async def _produce(
        self, ctx: LeaderContext, link: Link, snap: ClusterSnapshot, now: float
    ) -> None:
        state = (await self._state.current(ctx)).data
        intervals = link.intervals
        due = {
            "health": self._is_due("health", now),
            "license": self._is_due("license", now),
            "consumption": self._is_due("consumption", now),
        }
        messages: list[QueuedBody] = []
        if due["health"]:
            messages.append(health_body(snap, intervals.health, await self._probe(snap)))
        if due["license"]:
            messages.append(LicenseCheckBody(host_units_in_use=cluster_host_units(snap)))
        hours: list[float] = []
        if due["consumption"]:
            mark = state.get("consumption_until")
            hours = due_hours(float(mark) if isinstance(mark, int | float) else None, now)
            messages += consumption_bodies(snap, hours)
        if messages:
            box = Outbox(ctx.paths)
            ops: list[zk.Op] = []
            if due["health"] or due["license"]:
                bound = Bound(
                    link.outbox.health_recent(intervals.health), link.outbox.history_hours
                )
                kinds = [route_of(body).kind for body in messages]
                dropped = await ctx.blocking(box.trim, ctx.zookeeper, bound, kinds, now)
                if dropped:
                    log.info("outbox bound: dropping %d older health/license checks", len(dropped))
                ops += dropped
            ops += [box.message(body, now, may_thin=True) for body in messages]
            changes = {"consumption_until": hours[-1] + HOUR} if hours else {}
            await self._state.commit(ctx, changes, ops)
        # Only once queued (a failed write is redone at the next step).
        for kind, is_due in due.items():
            if is_due:
                every = getattr(intervals, kind)
                self._next[kind] = now + (min(every, 60.0) if kind == "consumption" else every)

    async def _enforce(
        self, ctx: LeaderContext, link: Link, snap: ClusterSnapshot, now: float
    ) -> None:
        state = (await self._state.current(ctx)).data
        previous = Enforcement.from_json(state.get("enforcement"))
        view = license_view(state, link, now)
        decided = decide_enforcement(view, link, cluster_host_units(snap), previous, now)
        if decided == previous:
            return
        if decided.active != previous.active:
            if decided.active:
                log.warning("enforcing the license locally: %s", decided.reason)
            else:
                log.info("license verified again: local enforcement ends")
        await self._state.commit(ctx, {"enforcement": decided.to_json()})

    async def _deliver(self, ctx: LeaderContext, client: MissionControlClient) -> None:
        fence = ctx.fence
        assert fence is not None
        box = Outbox(ctx.paths)
        pending = await ctx.blocking(box.pending, ctx.zookeeper)
        for message in pending:
            try:
                stamped = message.stamped(fence.epoch)
            except (KeyError, ValidationError) as e:  # no route carries it, or not as stored
                await self._set_aside(ctx, message, f"cannot be sent: {e!r}"[:2000])
                continue
            try:
                reply = await client.deliver(ROUTES[message.kind], stamped)
            except MessageRejected as e:
                if refusal_action(e.status, e.code) != "set_aside":
                    raise
                await self._set_aside(ctx, message, f"Mission Control refused it: {e}")
                continue
            changes: dict[str, Any] = {"last_contact": self._clock(), "link": {"state": "ok"}}
            if isinstance(reply, LicenseReply):
                changes["license"] = reply.model_dump(
                    mode="json", include={"state", "expires", "days_left", "quotas"}
                )
            elif isinstance(reply, HealthReply):
                changes["health"] = reply.model_dump(
                    mode="json", include={"status", "reasons", "advice"}
                )
            await self._state.commit(ctx, changes, [box.delivered(message)])
            if self._logged_link not in (None, "ok"):
                log.info("Mission Control link ok again")
            self._logged_link = "ok"

    async def _set_aside(self, ctx: LeaderContext, message: OutboxMessage, reason: str) -> None:
        """Move a message whose content was refused to `outbox-dead` (kept for an operator),
        unblocking the queue behind it."""
        log.error("outbox message %s (%s) set aside: %s", message.message_id, message.kind, reason)
        await ctx.fenced(Outbox(ctx.paths).set_aside(message, reason))

    async def _heartbeat(self, ctx: LeaderContext, client: MissionControlClient) -> None:
        fence = ctx.fence
        assert fence is not None
        reply = await client.heartbeat(Heartbeat(message_id=uuid.uuid4(), epoch=fence.epoch))
        if self._heartbeat_handler is not None:
            await self._heartbeat_handler(ctx, reply, datetime.fromtimestamp(self._clock(), UTC))

    async def _link_trouble(
        self, ctx: LeaderContext, state: str, line: str, level: int = logging.ERROR
    ) -> None:
        """Log a link problem once (not at every retry) and record it for `managed mc status`."""
        if self._logged_link != state:
            log.log(level, "Mission Control link %s: %s", state, line)
            self._logged_link = state
        try:
            known = (await self._state.current(ctx)).data.get("link")
            if isinstance(known, dict) and known.get("state") == state:
                return
            record = {"state": state, "detail": line[:500], "since": self._clock()}
            await self._state.commit(ctx, {"link": record})
        except Exception as e:  # recorded next time; the retry goes on regardless
            log.debug("could not record the link state: %r", e)


def read_secret_quiet(client: ZooKeeper, paths: ClusterPaths, auth: str | None) -> str | None:
    """The stored credential, or None (logged) when it cannot be read."""
    try:
        data = read_secret(client, paths, auth, CREDENTIAL_SECRET)
    except ClusterError as e:
        log.warning("cannot read the Mission Control credential: %s", e)
        return None
    return data.decode() if data else None
