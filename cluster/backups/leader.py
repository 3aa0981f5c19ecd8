"""`BackupLeader`: the leader-only backup service (schedule, requested runs, recovery).

Started when the node leads with quorum and stopped at once on SUSPENDED, LOST, loss of quorum
or step-down (`cluster.leadership.LeaderService`). While it runs:
- it first fails any run a previous leader left in progress (`RunDriver.recover`);
- it keeps an APScheduler cron job (UTC) in step with the configured schedule; a fire starts a
  run, or, if one is in progress (the ZooKeeper guard), backups are paused or the cluster is in
  maintenance (`managed maintenance on`), only advances the schedule mark, so fires are
  coalesced and never overlap;
- on start it compares the schedule mark in ZooKeeper with the cron expression: fire times that
  passed while no leader ran them are caught up with exactly one run;
- it turns `managed backup run` requests into runs, all pending requests into one run.
On stop, the run's ZooKeeper part gives up at once and a commit in progress is waited for
(at most STOP_WAIT seconds): the commit is fenced end to end either way (`cluster.backups.commit`).
Does not guarantee: a fire time is handled while no node leads with quorum (it is caught up).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from cluster.backups import store
from cluster.backups.cron import due, parse_schedule
from cluster.backups.driver import RunDriver
from cluster.backups.runs import RunRecord, ScheduleMark, Trigger
from cluster.backups.settings import BackupSettings
from cluster.backups.wakeup import AsyncWakeup
from cluster.backups.work import Worker, cancel
from cluster.errors import ClusterError, FencedOut
from cluster.leadership import LeaderContext
from cluster.zk.errors import ZooKeeperError

log = logging.getLogger(__name__)
JOB_ID = "backup-schedule"
STOP_WAIT = 15.0


class BackupLeader:
    name = "backup"

    def __init__(
        self, auth: str | None, clock: Callable[[], float] = time.time, poll: float = 0.3
    ) -> None:
        self._auth = auth
        self._clock = clock
        self._poll = poll
        self._task: asyncio.Task[None] | None = None
        self._drive: asyncio.Task[RunRecord] | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._expression: str | None = None
        self._worker: Worker | None = None
        self._driver: RunDriver | None = None
        self._wakeup: AsyncWakeup | None = None

    async def start(self, ctx: LeaderContext) -> None:
        self._worker = Worker("backup-leader")
        self._task = asyncio.create_task(self._run(ctx), name=self.name)

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        self._expression = None
        if self._driver is not None:
            self._driver.abort.set()
            self._driver = None
        for task in (self._drive, self._task):
            await cancel(task)
        self._drive = self._task = None
        if self._worker is not None:
            await self._worker.close(wait=STOP_WAIT)
            self._worker = None

    async def _run(self, ctx: LeaderContext) -> None:
        assert self._worker is not None
        driver = self._driver = RunDriver(ctx, self._auth, self._worker, self._clock, self._poll)
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.start()
        self._scheduler = scheduler
        recovered = False
        # A request is served as soon as the CLI writes it.
        wakeup = self._wakeup = AsyncWakeup(ctx.zookeeper, children=[ctx.paths.backup_requests])
        try:
            while True:
                try:
                    if not recovered:
                        await ctx.blocking(store.ensure_layout, ctx.zookeeper, ctx.paths)
                        log.info("backup service: %s", await driver.recover())
                        recovered = True
                    await self._sync_schedule(ctx, driver, scheduler)
                    await self._serve_requests(ctx, driver)
                except FencedOut:
                    return
                except (ClusterError, ZooKeeperError) as exc:
                    log.warning("backup service paused: %s", exc)
                await wakeup.wait(self._poll)
        finally:
            wakeup.close()

    def _busy(self) -> bool:
        return self._drive is not None and not self._drive.done()

    def _launch(self, driver: RunDriver, run: RunRecord | None) -> None:
        if run is not None and run.status == "running":
            self._drive = asyncio.create_task(driver.drive(run), name=f"backup-{run.id}")
            self._drive.add_done_callback(_log_end)
            self._drive.add_done_callback(self._wake_after_run)

    def _wake_after_run(self, _run: asyncio.Task[RunRecord]) -> None:
        if self._wakeup is not None:  # a request queued meanwhile is served at once
            self._wakeup.set()

    async def _serve_requests(self, ctx: LeaderContext, driver: RunDriver) -> None:
        if self._busy():
            return
        requests = await ctx.blocking(store.pending_requests, ctx.zookeeper, ctx.paths)
        if requests:
            self._launch(driver, await driver.start("manual", tuple(requests)))

    # --- the schedule ---------------------------------------------------------------------

    async def _sync_schedule(
        self, ctx: LeaderContext, driver: RunDriver, scheduler: AsyncIOScheduler
    ) -> None:
        settings = BackupSettings.from_config(ctx.snapshot.config if ctx.snapshot else {})
        expression = settings.schedule
        if expression == self._expression:
            return
        if scheduler.get_job(JOB_ID) is not None:
            scheduler.remove_job(JOB_ID)
        self._expression = expression
        if expression is None:
            log.info("backup schedule: none")
            return
        trigger = parse_schedule(expression)
        await self._catch_up(ctx, driver, expression)
        scheduler.add_job(
            self._fire,
            trigger,
            args=(ctx, driver),
            id=JOB_ID,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
        log.info("backup schedule: %s (UTC)", expression)

    async def _catch_up(self, ctx: LeaderContext, driver: RunDriver, expression: str) -> None:
        now = self._clock()
        mark = await ctx.blocking(store.read_mark, ctx.zookeeper, ctx.paths)
        if mark is None or mark.expression != expression:
            note = "schedule set: counting from now"
            mark = ScheduleMark(expression=expression, handled_through=now, note=note)
            await self._advance(ctx, mark)
            return
        handled = datetime.fromtimestamp(mark.handled_through, UTC)
        verdict = due(parse_schedule(expression), handled, datetime.fromtimestamp(now, UTC))
        log.info("backup schedule catch-up: %s", verdict.reason)
        if verdict.run:
            await self._scheduled(ctx, driver, expression, "catch-up", now)

    async def _fire(self, ctx: LeaderContext, driver: RunDriver) -> None:
        if not ctx.leading or self._expression is None:
            return
        try:
            await self._scheduled(ctx, driver, self._expression, "schedule", self._clock())
        except FencedOut:
            pass
        except (ClusterError, ZooKeeperError) as exc:
            log.warning("scheduled backup not started: %s", exc)

    async def _scheduled(
        self, ctx: LeaderContext, driver: RunDriver, expression: str, trigger: Trigger, now: float
    ) -> None:
        settings = BackupSettings.from_config(ctx.snapshot.config if ctx.snapshot else {})
        skipped = "paused" if settings.paused else None
        if ctx.snapshot is not None and ctx.snapshot.maintenance is not None:
            skipped = "maintenance"  # automatic leader-only work waits (`managed maintenance`)
        if skipped is not None:
            note = f"{skipped}: skipped"
            mark = ScheduleMark(expression=expression, handled_through=now, note=note)
            await self._advance(ctx, mark)
            log.info("scheduled backup %s", note)
            return
        mark = ScheduleMark(expression=expression, handled_through=now, note=f"{trigger} run")
        op = await ctx.blocking(store.mark_op, ctx.zookeeper, ctx.paths, mark)
        run = None if self._busy() else await driver.start(trigger, (), op)
        if run is None:
            current = await ctx.blocking(store.current_run_id, ctx.zookeeper, ctx.paths)
            note = f"coalesced into run {current} in progress"
            await self._advance(ctx, mark.model_copy(update={"note": note}))
            log.info("scheduled backup: %s", note)
            return
        self._launch(driver, run)

    async def _advance(self, ctx: LeaderContext, mark: ScheduleMark) -> None:
        op = await ctx.blocking(store.mark_op, ctx.zookeeper, ctx.paths, mark)
        await ctx.fenced([op])


def _log_end(task: asyncio.Task[RunRecord]) -> None:
    """A drive that ends without a record (leadership lost, service stopped) says so."""
    if task.cancelled():
        return
    exc = task.exception()
    if isinstance(exc, FencedOut):
        log.info("%s ended: %s", task.get_name(), exc)
    elif exc is not None:
        log.error("%s ended unexpectedly: %r", task.get_name(), exc)
