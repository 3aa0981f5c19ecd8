"""`DrillLeader`: the leader-only restore drill service (schedule, requested drills, recovery).

Started when the node leads with quorum and stopped at once on SUSPENDED, LOST, loss of quorum
or step-down (`cluster.leadership.LeaderService`), like the backup service. While it runs:
- it first fails a drill a previous leader left running (`runs.recover`) and releases the
  guard, so a leader change leaves no drill half-recorded; the drill node sees the drill
  failed, abandons it and removes its scratch copy;
- it keeps an APScheduler cron job (UTC) in step with the drill schedule; a fire that finds a
  backup or a drill in progress is skipped (drills are not caught up: the next fire runs one);
- it turns `managed backup drill run` requests into one drill. A request that finds a backup
  running waits for it to end.
A drill starts only in a fenced transaction that takes the guard backup runs use
(`backups/current`), so a drill never overlaps a backup or another drill, whoever leads, and
never starts without quorum (this service runs only with it, and a drill starts only after a
fresh read of the cluster shows quorum: the node may not have noticed a loss yet). It ends in
one fenced transaction that records the outcome (RTO, RPO), releases the guard and queues the
Mission Control event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from cluster import zk
from cluster.backups import drill_store, store
from cluster.backups.cron import parse_schedule
from cluster.backups.drills import (
    DrillRecord,
    DrillTrigger,
    assess,
    choose,
    is_drill,
    new_drill_id,
)
from cluster.backups.driver import enrolled_now
from cluster.backups.runs import recover
from cluster.backups.settings import BackupSettings
from cluster.backups.wakeup import AsyncWakeup
from cluster.backups.work import cancel
from cluster.errors import ClusterError, FencedOut
from cluster.leadership import LeaderContext
from cluster.zk.errors import NodeExistsError, ZooKeeperError

log = logging.getLogger(__name__)
JOB_ID = "drill-schedule"


class DrillLeader:
    name = "backup-drill"

    def __init__(self, clock: Callable[[], float] = time.time, poll: float = 0.3) -> None:
        self._clock = clock
        self._poll = poll
        self._task: asyncio.Task[None] | None = None
        self._drive: asyncio.Task[DrillRecord | None] | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._expression: str | None = None

    async def start(self, ctx: LeaderContext) -> None:
        self._task = asyncio.create_task(self._run(ctx), name=self.name)

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        self._expression = None
        for task in (self._drive, self._task):
            await cancel(task)
        self._drive = self._task = None

    async def _run(self, ctx: LeaderContext) -> None:
        scheduler = self._scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.start()
        recovered = False
        wakeup = AsyncWakeup(ctx.zookeeper, children=[ctx.paths.backup_drill_requests])
        try:
            while True:
                try:
                    if not recovered:
                        await ctx.blocking(drill_store.ensure_layout, ctx.zookeeper, ctx.paths)
                        log.info("drill service: %s", await self._recover(ctx))
                        recovered = True
                    self._sync_schedule(ctx, scheduler)
                    await self._serve_requests(ctx)
                except FencedOut:
                    return
                except (ClusterError, ZooKeeperError) as exc:
                    log.warning("drill service paused: %s", exc)
                await wakeup.wait(self._poll)
        finally:
            wakeup.close()

    async def _recover(self, ctx: LeaderContext) -> str:
        guard = await ctx.blocking(store.current_run_id, ctx.zookeeper, ctx.paths)
        if not is_drill(guard):
            return "no drill in progress"
        assert guard is not None
        drill = await ctx.blocking(drill_store.read_drill, ctx.zookeeper, ctx.paths, guard)
        fence = ctx.fence
        if fence is None:
            raise FencedOut("not the leader")
        decision = recover(drill, fence.epoch)
        if drill is None or not decision.fail:
            await ctx.fenced([zk.Delete(ctx.paths.backup_current)])
            return decision.reason
        await self._finish(ctx, drill.finish(self._clock(), None, decision.reason))
        return f"drill {drill.id} failed: {decision.reason}"

    def _busy(self) -> bool:
        return self._drive is not None and not self._drive.done()

    async def _serve_requests(self, ctx: LeaderContext) -> None:
        if self._busy():
            return
        requests = await ctx.blocking(drill_store.pending_requests, ctx.zookeeper, ctx.paths)
        if requests:
            await self._begin(ctx, "manual", tuple(requests))

    def _sync_schedule(self, ctx: LeaderContext, scheduler: AsyncIOScheduler) -> None:
        settings = BackupSettings.from_config(ctx.snapshot.config if ctx.snapshot else {})
        expression = settings.drill.schedule if settings.drill else None
        if expression == self._expression:
            return
        if scheduler.get_job(JOB_ID) is not None:
            scheduler.remove_job(JOB_ID)
        self._expression = expression
        if expression is None:
            return
        scheduler.add_job(
            self._fire,
            parse_schedule(expression),
            args=(ctx,),
            id=JOB_ID,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
        log.info("drill schedule: %s (UTC)", expression)

    async def _fire(self, ctx: LeaderContext) -> None:
        if not ctx.leading or self._busy():
            log.info("scheduled drill skipped: %s", "busy" if ctx.leading else "not leading")
            return
        try:
            await self._begin(ctx, "schedule", ())
        except FencedOut:
            pass
        except (ClusterError, ZooKeeperError) as exc:
            log.warning("scheduled drill not started: %s", exc)

    async def _begin(
        self, ctx: LeaderContext, trigger: DrillTrigger, requests: tuple[str, ...]
    ) -> None:
        """Start a drill (fenced, guarded), or record why it cannot run; nothing while busy."""
        fence = ctx.fence
        if fence is None or not ctx.leading:
            raise FencedOut("not the leader")
        snap = await ctx.blocking(zk.read_snapshot, ctx.zookeeper, ctx.paths)
        if not snap.quorum.ok:  # read now: this node may not have noticed the loss yet
            log.info("drill waits: no quorum (%d of %d)", snap.quorum.have, snap.quorum.need)
            return
        config = snap.config
        settings = BackupSettings.from_config(config)
        runs = await ctx.blocking(store.list_runs, ctx.zookeeper, ctx.paths)
        choice = choose(settings.drill, runs, snap.live_ids & snap.roster_ids, ctx.node)
        now = self._clock()
        drill = DrillRecord(
            id=new_drill_id(now, os.urandom(4).hex()),
            status="running",
            epoch=fence.epoch,
            leader=ctx.node,
            trigger=trigger,
            started=now,
            node=choice.node,
            backup_id=choice.backup.id if choice.backup else None,
            backup_started=choice.backup.started if choice.backup else None,
            plan=choice.backup.plan if choice.backup else None,
            signing_public_key=settings.signing_public_key,
            scratch=settings.drill.scratch if settings.drill else None,
            key_file=settings.drill.key_file if settings.drill else None,
            timeout=settings.drill.timeout if settings.drill else 0.0,
            requests=requests,
        )
        if choice.refusal is not None:
            failed = drill.finish(now, None, choice.refusal)
            ops: list[zk.Op] = [zk.Create(ctx.paths.backup_drill(drill.id), store.encode(failed))]
            ops += drill_store.request_ops(ctx.paths, requests)
            enrolled = await ctx.blocking(enrolled_now, ctx.zookeeper, ctx.paths, False)
            await ctx.fenced(ops + drill_store.event_op(ctx.paths, enrolled, failed, now))
            log.warning("drill %s not started: %s", drill.id, choice.refusal)
            return
        try:
            await ctx.fenced(drill_store.start_ops(ctx.paths, drill))
        except NodeExistsError:
            return  # a backup or a drill is in progress: requests wait, a fire is skipped
        log.info("drill %s started: backup %s on node %s", drill.id, drill.backup_id, drill.node)
        self._drive = asyncio.create_task(self._follow(ctx, drill), name=f"drill-{drill.id}")

    async def _follow(self, ctx: LeaderContext, drill: DrillRecord) -> DrillRecord | None:
        """Wait for the drill node's outcome (or a reason to fail), then record the end; ZooKeeper
        trouble is retried while this node leads. Deposed, it leaves the drill to the next
        leader, whose recovery fails it."""
        wakeup = AsyncWakeup(ctx.zookeeper, children=[ctx.paths.backup_drill(drill.id)])
        try:
            while True:
                try:
                    done = await self._settle(ctx, drill)
                    if done is not None:
                        log.info("%s", done.describe())
                        return done
                except FencedOut as exc:
                    log.info("drill %s: %s (the next leader fails it)", drill.id, exc)
                    return None
                except (ClusterError, ZooKeeperError) as exc:
                    log.info("drill %s: ZooKeeper trouble, retrying: %s", drill.id, exc)
                if not ctx.leading:
                    log.info("drill %s: no longer leading (the next leader fails it)", drill.id)
                    return None
                await wakeup.wait(self._poll)
        finally:
            wakeup.close()

    async def _settle(self, ctx: LeaderContext, drill: DrillRecord) -> DrillRecord | None:
        """The final record once the drill ended (recorded), None while it runs."""
        outcome = await ctx.blocking(drill_store.read_outcome, ctx.zookeeper, ctx.paths, drill.id)
        snap = ctx.snapshot
        live = snap.live_ids if snap else frozenset()
        verdict = assess(drill, outcome, live, self._clock())
        if verdict.action == "wait":
            return None
        reason = None if verdict.action == "finish" else verdict.reason
        done = drill.finish(self._clock(), outcome, reason)
        await self._finish(ctx, done)
        return done

    async def _finish(self, ctx: LeaderContext, drill: DrillRecord) -> None:
        now = self._clock()
        enrolled = await ctx.blocking(enrolled_now, ctx.zookeeper, ctx.paths, False)
        ops = await ctx.blocking(
            drill_store.finish_ops, ctx.zookeeper, ctx.paths, drill, enrolled, now
        )
        await ctx.fenced(ops)
        with contextlib.suppress(ClusterError, ZooKeeperError):
            prune = await ctx.blocking(drill_store.prune_ops, ctx.zookeeper, ctx.paths)
            if prune:
                await ctx.fenced(prune)
