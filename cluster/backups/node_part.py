"""Each node's share of a backup: it writes its own data directory as its part.

`PartWriter` runs on every node while the daemon runs (not only on the leader). It watches the
run in progress (`backups/current`); when the run expects a part from this node it opens the
run's targets itself (so residency is checked again on this node before a byte is written),
streams the data directory encrypted to the primary and every mirror, publishes its progress
and reports a `PartOutcome`.

Guarantees:
- A node writes at most one part per run and one run at a time.
- If the run stops being `running` (failed by a new leader, or finished) while the part is being
  written, the write is abandoned and the partial part removed from every target.
- Errors end in a reported outcome with the error's one-line message, never a silent stop.
- A run counts as handled only once its outcome is stored in ZooKeeper: the report is retried
  (bounded) on connection trouble, and an outcome still unreported is retried on the next
  rounds (never written twice). No error ends the service: it is logged and the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

from backup.engine import PartRecord, ProgressEvent, write_directory_part
from backup.errors import BackupError
from cluster.backups import store
from cluster.backups.runs import PartOutcome, PartProgress, RunRecord
from cluster.backups.wakeup import AsyncWakeup
from cluster.backups.work import Worker, cancel, context_for, limiter_for, open_plan
from cluster.errors import ClusterError
from cluster.leadership import LeaderContext
from cluster.upgrade.install import VERSIONS
from cluster.zk.errors import ZooKeeperError

log = logging.getLogger(__name__)


REPORT_ATTEMPTS = 5
REPORT_DELAY = 0.5
STOP_WAIT = 10.0  # seconds `stop` waits for an abandoned write to clean up after itself
#: What a data directory holds that is not the node's data: the installed releases (software,
#: each release's own copy of its wheels and environment), which a restore must not bring back.
NOT_DATA = (VERSIONS,)


class RunAbandoned(BackupError):
    """The run this part belongs to is no longer running."""


async def retrying(
    call: Callable[[], Awaitable[object]],
    attempts: int = REPORT_ATTEMPTS,
    delay: float = REPORT_DELAY,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Await `call` until it succeeds, at most `attempts` times, backing off on ZooKeeper
    trouble; the last error is raised."""
    for attempt in range(attempts):
        try:
            await call()
            return
        except (ClusterError, ZooKeeperError):
            if attempt + 1 == attempts:
                raise
            await sleep(delay * 2**attempt)


async def report_outcome(ctx: LeaderContext, run_id: str, outcome: PartOutcome) -> None:
    """Store a part's outcome, retried on connection trouble (a report that already exists, or
    a run that is gone, counts as stored: `store.report_part` returns False for both)."""

    async def report() -> object:
        return await ctx.blocking(store.report_part, ctx.zookeeper, ctx.paths, run_id, outcome)

    await retrying(report)


class PartWriter:
    """A node service (`NodeDaemon(node_services=[...])`)."""

    name = "backup-part-writer"

    def __init__(self, data_dir: Path, poll: float = 0.3) -> None:
        self._data_dir = data_dir
        self._poll = poll
        self._task: asyncio.Task[None] | None = None
        self._abort = threading.Event()
        self._worker = Worker("backup-part")

    async def start(self, ctx: LeaderContext) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(ctx), name=self.name)

    async def stop(self) -> None:
        self._abort.set()
        task, self._task = self._task, None
        await cancel(task)
        await self._worker.close(wait=STOP_WAIT)

    async def _run(self, ctx: LeaderContext) -> None:
        handled: set[str] = set()
        unreported: dict[str, PartOutcome] = {}
        # A run planned by the leader starts this node's part at once.
        wakeup = AsyncWakeup(ctx.zookeeper, data=[ctx.paths.backup_current])
        try:
            while True:
                try:
                    await self._once(ctx, handled, unreported)
                except (ClusterError, ZooKeeperError) as exc:
                    log.info("backup part writer: ZooKeeper unavailable (%s)", type(exc).__name__)
                except Exception:  # never let the writer die: the next run must get its part
                    log.exception("backup part writer: unexpected error; carrying on")
                await wakeup.wait(self._poll)
        finally:
            wakeup.close()

    async def _once(
        self, ctx: LeaderContext, handled: set[str], unreported: dict[str, PartOutcome]
    ) -> None:
        run_id = await ctx.blocking(store.current_run_id, ctx.zookeeper, ctx.paths)
        for old in [r for r in unreported if r != run_id]:
            del unreported[old]  # that run ended: its leader no longer waits for the report
        if run_id is None or run_id in handled:
            return
        if run_id in unreported:
            await report_outcome(ctx, run_id, unreported[run_id])
            del unreported[run_id]
            handled.add(run_id)
            return
        run: RunRecord | None = await ctx.blocking(store.read_run, ctx.zookeeper, ctx.paths, run_id)
        wanted = run is not None and run.status == "running" and ctx.node in run.expected
        if run is None or run.plan is None or not wanted:
            handled.add(run_id)
            return
        done = await ctx.blocking(store.read_outcomes, ctx.zookeeper, ctx.paths, run_id)
        if ctx.node in done:
            handled.add(run_id)
            return
        log.info("backup %s: writing part %s", run_id, ctx.node)
        outcome = await self._write(ctx, run)
        if outcome.error is not None:
            log.warning("backup %s: part %s failed: %s", run_id, ctx.node, outcome.error)
        else:
            log.info("backup %s: part %s written", run_id, ctx.node)
        unreported[run_id] = outcome  # until it is stored, the next round retries the report
        await report_outcome(ctx, run_id, outcome)
        del unreported[run_id]
        handled.add(run_id)

    async def _write(self, ctx: LeaderContext, run: RunRecord) -> PartOutcome:
        plan = run.plan
        assert plan is not None
        abort = threading.Event()
        self._abort = abort
        latest = ProgressEvent("write", ctx.node, 0, None)

        def on_progress(event: ProgressEvent) -> None:
            # Called for every chunk on the writing thread: it only keeps the event; the loop
            # below publishes the newest one (a model per chunk cost 2,000 objects per GiB).
            nonlocal latest
            if abort.is_set():
                raise RunAbandoned(f"backup {run.id} is no longer running; part abandoned")
            latest = event

        def write() -> PartRecord:
            return write_directory_part(
                self._data_dir,
                ctx=context_for(run.id, plan),
                part=ctx.node,
                node=ctx.node,
                targets=open_plan(plan),
                progress=on_progress,
                limiter=limiter_for(plan),
                cancelled=abort.is_set,  # a run that failed meanwhile never gets this part
                leave_out=NOT_DATA,
            )

        future = asyncio.ensure_future(self._worker(write))
        try:
            while not future.done():
                await asyncio.wait({future}, timeout=self._poll)
                progress = PartProgress(done=latest.done_bytes, total=latest.total_bytes)
                await self._follow(ctx, run, progress, abort)
            record = future.result()
        except asyncio.CancelledError:
            abort.set()
            raise
        except Exception as exc:  # any failure is reported, so the leader need not time out
            if not isinstance(exc, BackupError | OSError):
                log.exception("backup %s: unexpected error writing part %s", run.id, ctx.node)
            return PartOutcome(part=ctx.node, node=ctx.node, error=str(exc) or type(exc).__name__)
        return PartOutcome(part=ctx.node, node=ctx.node, record=record)

    async def _follow(
        self, ctx: LeaderContext, run: RunRecord, progress: PartProgress, abort: threading.Event
    ) -> None:
        """Publish progress; abandon the part if the run is no longer running."""
        try:
            await ctx.blocking(
                store.publish_progress, ctx.zookeeper, ctx.paths, run.id, ctx.node, progress
            )
            now = await ctx.blocking(store.read_run, ctx.zookeeper, ctx.paths, run.id)
        except (ClusterError, ZooKeeperError):
            return  # progress is advisory; ZooKeeper trouble does not stop the write
        if now is None or now.status != "running":
            abort.set()
