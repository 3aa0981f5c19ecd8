"""Offered releases, installed by the leader inside the maintenance window (a leader service).

Mission Control offers a cluster a release (`mission-control releases offer`, or a fleet
rollout's wave); the operator sets when it may be installed (`managed upgrade window`, stored
in `upgrade/window`). Every `offer_interval` seconds `OfferedReleases` decides (`why_not_look`,
`why_not_install`: pure, each answer a readable reason) and, only inside the window, asks
Mission Control for the offer, fetches the release over the API, verifies it against the
trusted metadata in ZooKeeper exactly as `managed upgrade apply V` does (same refusals, audit
entries and alert) and starts the same rolling upgrade plan, in fenced writes.

Guarantees: outside the window, with no window, during maintenance or while a plan runs,
nothing is fetched (Mission Control is not even asked); an offer is installed at most once per
plan (a failed version is not retried: its plan says so; a refused one is remembered in
`upgrade/given-up`, a fenced write, so no later leader fetches it again: the vendor offers a
newer one); a release not newer than what the cluster runs is left alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from cluster.errors import ClusterError
from cluster.leadership import LeaderContext, PollingService
from cluster.link.errors import MessageRejected, MissionControlUnavailable
from cluster.paths import ClusterPaths
from cluster.upgrade.errors import ReleaseRefused, ReleaseUnavailable
from cluster.upgrade.plan import MISSION_CONTROL, RESTART_TIMEOUT, RUNNING, Plan
from cluster.upgrade.record import newer_than, newest_running, plan_then, verify_and_record
from cluster.upgrade.remote import MissionControlFetcher, mission_control_client
from cluster.upgrade.rollout import read_plan, read_window
from cluster.upgrade.window import Window
from cluster.zk import Create, SetData, ZooKeeper
from cluster.zk.errors import ZooKeeperError
from cluster.zk.fencing import Fence, fenced_commit
from contract.audit.events import SYSTEM

log = logging.getLogger(__name__)
#: How many refused versions `upgrade/given-up` keeps (the newest).
GIVEN_UP_KEPT = 20


def _given_up_versions(data: bytes | None) -> list[str]:
    """The versions an `upgrade/given-up` znode holds (none when missing or unreadable)."""
    try:
        return [str(v) for v in json.loads(data)["versions"]] if data is not None else []
    except (ValueError, KeyError, TypeError):
        return []


def read_given_up(client: ZooKeeper, paths: ClusterPaths) -> set[str]:
    """The offered versions refused so far."""
    got = client.find(paths.upgrade_given_up)
    return set(_given_up_versions(got[0] if got else None))


def remember_given_up(client: ZooKeeper, paths: ClusterPaths, fence: Fence, version: str) -> None:
    """Add `version` to `upgrade/given-up`, only while `fence` is current."""
    got = client.find(paths.upgrade_given_up)
    versions = _given_up_versions(got[0] if got else None)
    if version not in versions:
        versions = [*versions, version][-GIVEN_UP_KEPT:]
    data = json.dumps({"versions": versions}).encode()
    op = (
        Create(paths.upgrade_given_up, data)
        if got is None
        else SetData(paths.upgrade_given_up, data, got[1].version)
    )
    fenced_commit(client, paths, fence, [op])


def why_not_look(
    window: Window | None, maintenance: bool, plan: Plan | None, now: datetime
) -> str | None:
    """Why the leader must not ask for an offer now, or None (it may)."""
    if window is None:
        return "no maintenance window: offered releases wait (`managed upgrade window`)"
    if maintenance:
        return "maintenance is on"
    if plan is not None and plan.state == RUNNING:
        return f"an upgrade to {plan.version} is running"
    if not window.contains(now):
        opens = window.next_opening(now)
        return f"outside the window {window} (next opens {opens:%Y-%m-%d %H:%M} UTC)"
    return None


def why_not_install(
    offered: str | None, running: str, plan: Plan | None, given_up: set[str]
) -> str | None:
    """Why the offered release must not be installed, or None (fetch, verify and plan it)."""
    if offered is None:
        return "no release is offered"
    if not newer_than(offered, running):
        return f"the offered {offered} is not newer than {running}"
    if plan is not None and plan.version == offered:
        return f"{offered} was planned already ({plan.state})"
    if offered in given_up:
        return f"{offered} was refused or could not be planned"
    return None


class OfferedReleases(PollingService):
    """Installs Mission Control's offer inside the window, while this node leads."""

    name = "upgrade-offers"

    def __init__(
        self,
        auth: str | None,
        every: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__()
        self.auth = auth
        self.every = every
        self.clock = clock
        self._given_up: set[str] = set()
        self._said = ""

    def _say(self, why: str) -> None:
        if why != self._said:
            self._said = why
            log.info("offered releases: %s", why)

    async def step(self, ctx: LeaderContext) -> None:
        snap = ctx.snapshot
        if snap is None or ctx.fence is None or not ctx.leading:
            return
        stored = await ctx.blocking(read_window, ctx.zookeeper, ctx.paths)
        got = await ctx.blocking(read_plan, ctx.zookeeper, ctx.paths)
        plan = got[0] if got else None
        window = stored[0] if stored else None
        why = why_not_look(window, snap.maintenance is not None, plan, self.clock())
        if why is not None:
            self._say(why)
            return
        offered = await self._offer(ctx, snap.config)
        running = newest_running(snap)
        given_up = await ctx.blocking(read_given_up, ctx.zookeeper, ctx.paths)
        why = why_not_install(offered, running, plan, self._given_up | given_up)
        if why is not None:
            self._say(why)
            return
        assert offered is not None
        self._say(f"installing the offered {offered}")
        await asyncio.to_thread(self._plan, ctx, snap.config, offered, running)

    async def _offer(self, ctx: LeaderContext, config: dict[str, object]) -> str | None:
        mc = await ctx.blocking(mission_control_client, ctx.zookeeper, ctx.paths, self.auth, config)
        try:
            async with mc:
                return (await mc.release_offer()).version
        except (MessageRejected, MissionControlUnavailable) as e:
            raise ClusterError(f"cannot ask Mission Control for its offer: {e}") from None

    def _plan(
        self, ctx: LeaderContext, config: dict[str, object], version: str, running: str
    ) -> None:
        """Fetch, verify and record the release with its plan (a worker thread)."""
        zk, paths = ctx.zookeeper, ctx.paths

        def opened() -> MissionControlFetcher:
            mc = mission_control_client(zk, paths, self.auth, config)
            return MissionControlFetcher(mc, version)

        made: list[Plan] = []
        then = plan_then(zk, paths, SYSTEM, MISSION_CONTROL, RESTART_TIMEOUT, made)
        source = (f"Mission Control {version}", opened)
        try:
            verify_and_record(zk, paths, source, SYSTEM, running, then=then, fence=ctx.fence)
        except ReleaseRefused as e:
            self._given_up.add(version)
            log.error("offered release %s: %s", version, e)
            try:
                if ctx.fence is not None:
                    remember_given_up(zk, paths, ctx.fence, version)
            except (ClusterError, ZooKeeperError) as failed:  # fenced out, ZooKeeper away...
                log.warning("could not record %s as refused: %s", version, failed)
        except ReleaseUnavailable as e:
            log.warning("offered release %s: %s", version, e)
        except ClusterError as e:  # the plan was refused (a node down...): next look again
            log.warning("offered release %s: %s", version, e)
        else:
            log.info("offered release %s verified: upgrade planned (%s)", version, made[-1].order)
