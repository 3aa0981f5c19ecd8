"""The drill node's share of a restore drill: it restores, checks and reports.

`DrillRunner` runs on every node while the daemon runs. It watches the shared guard
(`backups/current`); when a drill holds it, names this node and has no outcome yet, it runs the
drill (`drill_check.run_drill`) on a worker thread and reports a `DrillOutcome`.

Guarantees:
- A node runs at most one drill at a time and each drill at most once.
- If the drill stops being `running` (a new leader failed it) while it runs, it is abandoned at
  the next progress step and its scratch copy removed; nothing is reported for it.
- Errors end in a reported outcome with the error's one-line message; the report is retried on
  connection trouble. No error ends the service.
- A scratch copy left by a drill that is no longer running (the node was killed mid-drill) is
  removed once the runner has the cluster's settings after a start; a running drill's copy is
  never touched (nodes on one machine may share a scratch directory).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
from pathlib import Path

from backup.errors import BackupError
from cluster.backups import drill_store, store
from cluster.backups.drill_check import DrillAbandoned, run_drill
from cluster.backups.drills import DRILL_PREFIX, DrillOutcome, DrillRecord, is_drill
from cluster.backups.node_part import retrying
from cluster.backups.settings import BackupSettings
from cluster.backups.wakeup import AsyncWakeup
from cluster.backups.work import Worker, cancel
from cluster.errors import ClusterError
from cluster.leadership import LeaderContext
from cluster.zk.errors import ZooKeeperError

log = logging.getLogger(__name__)
STOP_WAIT = 10.0


class DrillRunner:
    """A node service (`NodeDaemon(node_services=[...])`)."""

    name = "backup-drill-runner"

    def __init__(self, data_dir: Path, poll: float = 0.3) -> None:
        self._data_dir = data_dir
        self._poll = poll
        self._task: asyncio.Task[None] | None = None
        self._stopping = threading.Event()
        self._worker = Worker("backup-drill", threads=1)
        self._swept = False  # the scratch copies of drills no longer running were removed

    async def start(self, ctx: LeaderContext) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(ctx), name=self.name)

    async def stop(self) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        await cancel(task)
        await self._worker.close(wait=STOP_WAIT)

    async def _run(self, ctx: LeaderContext) -> None:
        handled: set[str] = set()
        wakeup = AsyncWakeup(ctx.zookeeper, data=[ctx.paths.backup_current])
        try:
            while True:
                try:
                    await self._once(ctx, handled)
                except (ClusterError, ZooKeeperError) as exc:
                    log.info("drill runner: ZooKeeper unavailable (%s)", type(exc).__name__)
                except Exception:  # never let the runner die: the next drill must run
                    log.exception("drill runner: unexpected error; carrying on")
                await wakeup.wait(self._poll)
        finally:
            wakeup.close()

    async def _once(self, ctx: LeaderContext, handled: set[str]) -> None:
        if not self._swept and ctx.snapshot is not None:
            self._swept = True  # once, whatever happens
            await self._sweep(ctx, ctx.snapshot.config)
        guard = await ctx.blocking(store.current_run_id, ctx.zookeeper, ctx.paths)
        if guard is None or not is_drill(guard) or guard in handled:
            return
        drill = await ctx.blocking(drill_store.read_drill, ctx.zookeeper, ctx.paths, guard)
        if drill is None or drill.status != "running" or drill.node != ctx.node:
            handled.add(guard)
            return
        if await ctx.blocking(drill_store.read_outcome, ctx.zookeeper, ctx.paths, guard):
            handled.add(guard)
            return
        handled.add(guard)
        log.info("drill %s: restoring backup %s", drill.id, drill.backup_id)
        outcome = await self._drill(ctx, drill)
        if outcome is None:
            log.info("drill %s abandoned: it is no longer running", drill.id)
            return
        log.info("drill %s: %s", drill.id, outcome.error or f"ok in {outcome.rto} s")

        async def report() -> object:
            return await ctx.blocking(
                drill_store.report_outcome, ctx.zookeeper, ctx.paths, drill.id, outcome
            )

        await retrying(report)

    async def _sweep(self, ctx: LeaderContext, config: dict[str, object]) -> None:
        """Remove the scratch copies of drills that are not running (their records say so, or
        are gone): a node killed mid-drill leaves one."""
        drill = BackupSettings.from_config(config).drill
        scratch = Path(drill.scratch) if drill and drill.scratch else None
        if scratch is None or not scratch.is_dir():
            return
        for entry in sorted(scratch.iterdir()):
            if not entry.name.startswith(DRILL_PREFIX) or not entry.is_dir():
                continue
            record = await ctx.blocking(
                drill_store.read_drill, ctx.zookeeper, ctx.paths, entry.name
            )
            if record is None or record.status != "running":
                log.info("drill %s: removing the scratch copy it left", entry.name)
                await asyncio.to_thread(shutil.rmtree, entry, True)

    async def _drill(self, ctx: LeaderContext, drill: DrillRecord) -> DrillOutcome | None:
        abandoned = threading.Event()

        def stop() -> bool:
            return abandoned.is_set() or self._stopping.is_set()

        future = asyncio.ensure_future(self._worker(run_drill, drill, self._data_dir, stop))
        try:
            while not future.done():
                await asyncio.wait({future}, timeout=self._poll)
                if not await self._still_running(ctx, drill):
                    abandoned.set()
            outcome = future.result()
            return None if abandoned.is_set() else outcome
        except asyncio.CancelledError:
            abandoned.set()
            raise
        except DrillAbandoned:
            return None
        except Exception as exc:  # any failure is reported: a failed drill is an alert
            if not isinstance(exc, BackupError | ClusterError | OSError):
                log.exception("drill %s: unexpected error", drill.id)
            return DrillOutcome(node=ctx.node, error=str(exc) or type(exc).__name__)

    async def _still_running(self, ctx: LeaderContext, drill: DrillRecord) -> bool:
        try:
            now = await ctx.blocking(drill_store.read_drill, ctx.zookeeper, ctx.paths, drill.id)
        except (ClusterError, ZooKeeperError):
            return True  # ZooKeeper trouble alone does not stop a drill
        return now is not None and now.status == "running"
