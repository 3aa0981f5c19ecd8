"""The rolling upgrade at work: the leader moves the plan, every node does its part.

`UpgradeLeader` (a leader-only service) reads the plan, the nodes' reports and the snapshot
every `LOOK_EVERY` seconds and writes what `plan.advance` decides: the plan in a fenced
compare-and-set with its audit entries (and, when the plan stops, a `release_refused` event for
Mission Control, which raises that alert), or a switchover record when the leader's own turn
comes. A new leader starts from the plan as stored: it resumes, never restarts.

`UpgradeNode` (a service of every node) installs the release when the plan tells it to
(verifying the bundle again, here, against the trusted metadata: the bundle is read from the
path the plan names, on this node's machine), reports it, and when told to restart starts the
new version on trial (`install.start_trial`) and asks the daemon to stop, after which
`managed node run` execs the new version with the same arguments. Once the leader marks the
node done it confirms the trial; a start that never got there is rolled back by the launcher
(`install.settle_trial`), and reported here at the next start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cluster.errors import ClusterError
from cluster.leadership import LeaderContext, PollingService
from cluster.model import Switchover, dump
from cluster.paths import ClusterPaths
from cluster.switchover import HANDOVER_GRACE
from cluster.upgrade import install
from cluster.upgrade.errors import ReleaseRefused, ReleaseUnavailable
from cluster.upgrade.plan import (
    MISSION_CONTROL,
    RUNNING,
    Advance,
    Plan,
    Report,
    advance,
    node_work,
)
from cluster.upgrade.window import Window, WindowError, parse
from cluster.version import VERSION
from cluster.zk import Create, Op, OpFailed, SetData, ZooKeeper, read_snapshot

log = logging.getLogger(__name__)
LOOK_EVERY = 0.5
#: Steps the leader may write in one look (a node done, the next installing, its go...).
STEPS_PER_LOOK = 4
#: A switchover the leader asked for and that did not happen by then is asked for again.
ASK_AGAIN = 2 * HANDOVER_GRACE


def read_plan(client: ZooKeeper, paths: ClusterPaths) -> tuple[Plan, int] | None:
    """The plan and its znode version, None when there is none."""
    got = client.find(paths.upgrade_plan)
    return None if got is None else (Plan.from_bytes(got[0]), got[1].version)


def read_window(client: ZooKeeper, paths: ClusterPaths) -> tuple[Window, dict[str, object]] | None:
    """The stored window and its record ({spec, set_at, by}), or None when none is set."""
    got = client.find(paths.upgrade_window)
    if got is None:
        return None
    try:
        record = json.loads(got[0])
        return parse(str(record["spec"])), record
    except (ValueError, KeyError, TypeError, WindowError):
        log.warning("the stored maintenance window does not parse: set it again")
        return None


def read_reports(client: ZooKeeper, paths: ClusterPaths) -> dict[str, Report]:
    nodes = client.children_or_none(paths.upgrade_reports)
    out: dict[str, Report] = {}
    found = client.get_many(paths.upgrade_report(n) for n in nodes)
    for node, got in zip(nodes, found, strict=True):
        report = Report.from_bytes(got[0]) if got else None
        if report is not None:
            out[node] = report
    return out


def write_report(client: ZooKeeper, paths: ClusterPaths, node: str, report: Report) -> None:
    client.ensure_path(paths.upgrade_reports)
    if client.exists(paths.upgrade_report(node)) is None:
        client.create(paths.upgrade_report(node), report.to_bytes())
    else:
        client.set(paths.upgrade_report(node), report.to_bytes())


class UpgradeLeader(PollingService):
    """Moves a running plan forward while this node leads."""

    name = "upgrade"
    every = LOOK_EVERY

    def __init__(self) -> None:
        super().__init__()
        self._waiting = ""
        # (plan, to) and when: the snapshot may lag behind the switchover record just written,
        # so the same request is not repeated before the handover had time (a cancelled one is).
        self._handed_over: tuple[str, str] | None = None
        self._handed_over_at = 0.0

    async def step(self, ctx: LeaderContext) -> None:
        """Move the plan as far as it can go now: each step written is followed at once by
        the next (a node done, the next one's go), not a look later."""
        for _ in range(STEPS_PER_LOOK):
            if not await self._one_step(ctx):
                return

    async def _one_step(self, ctx: LeaderContext) -> bool:
        """One step of the plan; True when one was written (another may follow at once)."""
        snap, fence = ctx.snapshot, ctx.fence
        if snap is None or fence is None or not ctx.leading:
            return False
        got = await ctx.blocking(read_plan, ctx.zookeeper, ctx.paths)
        if got is None:
            return False
        plan, version = got
        reports = await ctx.blocking(read_reports, ctx.zookeeper, ctx.paths)
        step = advance(plan, snap, reports, time.time())
        if step.waiting != self._waiting:
            self._waiting = step.waiting
            if step.waiting:
                log.info("upgrade to %s: waiting (%s)", plan.version, step.waiting)
        if step.switchover_to is not None:
            asked = (plan.id, step.switchover_to)
            if asked != self._handed_over or time.monotonic() - self._handed_over_at > ASK_AGAIN:
                await self._hand_over(ctx, plan, step.switchover_to)
                self._handed_over, self._handed_over_at = asked, time.monotonic()
        elif step.plan != plan:
            try:
                await self._write(ctx, plan, version, step)
            except OpFailed:
                log.info("upgrade plan changed meanwhile: looking again")
                return False
            return True
        return False

    async def _write(self, ctx: LeaderContext, plan: Plan, version: int, step: Advance) -> None:
        """The new plan, its audit entries and any alert, in one fenced transaction."""
        from cluster.audit.store import AuditLog  # deferred, as the whole leader side
        from cluster.link.outbox import Outbox
        from contract.audit.events import SYSTEM, AuditEvent
        from contract.messages import ClusterEventBody

        now = datetime.now(UTC)
        ops: list[Op] = [SetData(ctx.paths.upgrade_plan, step.plan.to_bytes(), version)]
        if step.alert:
            body = ClusterEventBody(kind="release_refused", detail=step.alert[:4000])
            ops.append(Outbox(ctx.paths).message(body, now.timestamp()))
        events = [
            AuditEvent(now, SYSTEM, action, ctx.paths.cluster, plan.version, _detail(step, node))
            for action, node in step.actions
        ]
        audit = AuditLog(ctx.zookeeper, ctx.paths, fence=ctx.fence)
        await ctx.blocking(audit.append, events, now, ops)
        for action, node in step.actions:
            log.info("upgrade to %s: %s %s", plan.version, action, node)
        if step.alert:
            log.error("%s", step.alert)

    async def _hand_over(self, ctx: LeaderContext, plan: Plan, to: str) -> None:
        """The leader's turn: ask for a switchover to an upgraded node (the decision loop
        hands the lock over; the next leader carries on with the plan)."""
        from cluster.audit.store import AuditLog
        from contract.audit.events import SYSTEM, AuditEvent

        now = time.time()
        record = Switchover(to=to, at=now, requested_at=now, by=f"upgrade to {plan.version}")
        exists = await ctx.blocking(ctx.zookeeper.exists, ctx.paths.switchover)
        data = dump(record.to_json())
        op: Op = (
            Create(ctx.paths.switchover, data)
            if exists is None
            else SetData(ctx.paths.switchover, data)
        )
        at = datetime.now(UTC)
        event = AuditEvent(
            at, SYSTEM, "upgrade.switchover", ctx.paths.cluster, plan.version, {"to": to}
        )
        audit = AuditLog(ctx.zookeeper, ctx.paths, fence=ctx.fence)
        await ctx.blocking(audit.append, [event], at, [op])
        log.info("upgrade to %s: this node's turn, handing over to %s", plan.version, to)


def _detail(step: Advance, node: str) -> dict[str, Any]:
    detail: dict[str, Any] = {"node": node, "state": step.plan.state}
    if step.plan.reason:
        detail["reason"] = step.plan.reason
    return detail


class UpgradeNode(PollingService):
    """This node's part of a plan (a service of every node). `stop_daemon` is what asks the
    daemon to stop when the node must restart into the new version (or back from it);
    `restart_requested` tells `managed node run` to exec what is current once the daemon has
    stopped."""

    name = "upgrade-node"
    every = LOOK_EVERY

    def __init__(self, data_dir: Path, auth: str | None = None) -> None:
        super().__init__()
        self.data_dir = data_dir
        self.auth = auth  # reads the Mission Control credential (releases fetched from there)
        self.stop_daemon: Callable[[], None] = lambda: None
        self.restart_requested = False
        self._installing: str | None = None
        self._tidied: str | None = None  # the plan after which unused versions were removed
        self._unfetched = ("", 0)  # (plan id, fetches of its release that found nothing)
        self._retry_at = 0.0

    async def step(self, ctx: LeaderContext) -> None:
        if self.restart_requested:
            return  # the daemon is stopping to exec the new version
        zk, paths = ctx.zookeeper, ctx.paths
        got = await ctx.blocking(read_plan, zk, paths)
        plan = got[0] if got else None
        note = install.rolled_back_note(self.data_dir)
        if note is not None:
            await self._report_rollback(ctx, plan, note)
        reports = await ctx.blocking(read_reports, zk, paths)
        work = node_work(plan, ctx.node, VERSION, reports.get(ctx.node))
        if plan is None:
            return
        if work.install and self._installing != plan.id:
            if time.monotonic() < self._retry_at:
                return
            self._installing = plan.id
            report: Report | None
            try:
                report = await asyncio.to_thread(self._install, zk, paths, plan)
            except ReleaseUnavailable as e:  # Mission Control away: try again later, a while
                report = self._unavailable(plan, e)
            if report is not None:
                await ctx.blocking(write_report, zk, paths, ctx.node, report)
        elif work.restart:
            log.info("upgrade: restarting into %s", plan.version)
            install.start_trial(self.data_dir, plan.version, plan.id, VERSION)
            self.restart_requested = True
            self.stop_daemon()
        elif work.confirm:
            install.confirm_trial(self.data_dir)
        elif work.give_up and install.trial_plan(self.data_dir) == plan.id:
            why = plan.nodes[ctx.node].error or plan.reason
            log.error(
                "upgrade: the leader gave %s up on this node (%s): going back", plan.version, why
            )
            install.abandon_trial(self.data_dir, "the leader gave it up")
            self.restart_requested = True
            self.stop_daemon()
        elif work.prune and install.prune_previous(self.data_dir):
            log.info("upgrade finalized: the previous version is no longer a rollback target")
        if plan.state != RUNNING and not self.restart_requested and self._tidied != plan.id:
            await self._tidy(plan)

    async def _tidy(self, plan: Plan) -> None:
        """Once a plan is over (and no trial is open here), remove the versions it left
        installed that no start can need."""
        if install.trial_plan(self.data_dir) is not None:
            return
        self._tidied = plan.id
        gone = await asyncio.to_thread(install.remove_unused, self.data_dir, VERSION)
        if gone:
            log.info("upgrade: removed the unused installed versions %s", ", ".join(gone))

    async def _report_rollback(
        self, ctx: LeaderContext, plan: Plan | None, note: dict[str, object]
    ) -> None:
        """Report a rollback the launcher made while the plan that caused it runs; forget the
        note once that plan is over (or gone)."""
        if plan is None or plan.id != note.get("plan") or plan.state != "running":
            install.forget_rollback(self.data_dir)
            return
        report = Report(plan.id, plan.version, "rolled-back", str(note.get("error", "")))
        current = (await ctx.blocking(read_reports, ctx.zookeeper, ctx.paths)).get(ctx.node)
        if current != report:
            await ctx.blocking(write_report, ctx.zookeeper, ctx.paths, ctx.node, report)

    def _unavailable(self, plan: Plan, error: ReleaseUnavailable) -> Report | None:
        """The release could not be fetched: None (the install is tried again after
        `install_retry_delay`), or the failure report once the tries are used up."""
        tries = (self._unfetched[1] if self._unfetched[0] == plan.id else 0) + 1
        self._unfetched = (plan.id, tries)
        delay = install_retry_delay(tries)
        if delay is None:
            log.error("upgrade: %s could not be fetched, %d tries: %s", plan.version, tries, error)
            why = f"could not fetch it ({tries} tries): {error}"
            return Report(plan.id, plan.version, "install-failed", why[:500])
        log.warning(
            "upgrade: %s could not be fetched (%s); again in %.0f s", plan.version, error, delay
        )
        self._installing, self._retry_at = None, time.monotonic() + delay
        return None

    def _install(self, client: ZooKeeper, paths: ClusterPaths, plan: Plan) -> Report:
        """Verify the plan's bundle here and install it beside the running version; raises
        ReleaseUnavailable when it could not be had (nothing verified or installed)."""
        started = time.monotonic()
        try:
            install_release(client, paths, self.data_dir, plan, VERSION, self.auth)
        except ReleaseUnavailable:
            raise
        except (ClusterError, OSError) as e:
            log.error("upgrade: installing %s failed: %s", plan.version, e)
            return Report(plan.id, plan.version, "install-failed", str(e)[:500])
        log.info("upgrade: %s installed in %.0f s", plan.version, time.monotonic() - started)
        return Report(plan.id, plan.version, "installed")


#: Delays between tries to fetch a release for the plan while it cannot be had (Mission Control
#: unreachable): about two minutes in all, then the node reports the install failed.
INSTALL_RETRY_DELAYS = (2.0, 4.0, 8.0, 16.0, 30.0, 60.0)


def install_retry_delay(tries: int) -> float | None:
    """Seconds to wait after the `tries`-th fetch that found nothing, None once they are used."""
    return INSTALL_RETRY_DELAYS[tries - 1] if tries <= len(INSTALL_RETRY_DELAYS) else None


def install_release(
    client: ZooKeeper,
    paths: ClusterPaths,
    data_dir: Path,
    plan: Plan,
    running: str,
    auth: str | None = None,
) -> None:
    """Verify the plan's release against the trusted metadata (it must be the plan's release,
    newer than `running`), read from `plan.bundle` or fetched from Mission Control with the
    cluster's credential (`auth` reads it), and install it in `versions/<V>` (`current` is
    left alone)."""
    from cluster.upgrade import trust, verify  # deferred: tuf is needed only here
    from cluster.upgrade.fetchers import ReleaseFetcher

    def opened() -> ReleaseFetcher:
        if plan.bundle != MISSION_CONTROL:
            return verify.open_bundle(Path(plan.bundle))
        from cluster.upgrade.remote import MissionControlFetcher, mission_control_client

        config = read_snapshot(client, paths).config
        return MissionControlFetcher(
            mission_control_client(client, paths, auth, config), plan.version
        )

    def verify_into(incoming: Path) -> str:
        fetcher = opened()
        try:
            release, _after = verify.check(fetcher, trust.read(client, paths), running, incoming)
        finally:
            fetcher.close()
        if release.version != plan.version:
            raise ReleaseRefused(
                "bundle", f"{plan.bundle} holds {release.version}, not {plan.version}"
            )
        return release.version

    with install.install_lock(data_dir):
        install.stage(data_dir, verify_into)
        install.install(data_dir, plan.version)
