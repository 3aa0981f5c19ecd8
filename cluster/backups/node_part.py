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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from pathlib import Path

from kazoo.exceptions import KazooException

from backup.engine import PartRecord, ProgressEvent, write_directory_part
from backup.errors import BackupError
from cluster.backups import store
from cluster.backups.runs import PartOutcome, PartProgress, RunRecord
from cluster.backups.work import Worker, context_for, limiter_for, open_plan
from cluster.errors import ClusterError
from cluster.leadership import LeaderContext

log = logging.getLogger(__name__)


class RunAbandoned(BackupError):
    """The run this part belongs to is no longer running."""


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
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._worker.close()

    async def _run(self, ctx: LeaderContext) -> None:
        handled: set[str] = set()
        while True:
            try:
                await self._once(ctx, handled)
            except (ClusterError, KazooException) as exc:
                log.info("backup part writer: ZooKeeper unavailable (%s)", type(exc).__name__)
            await asyncio.sleep(self._poll)

    async def _once(self, ctx: LeaderContext, handled: set[str]) -> None:
        run_id = await ctx.call_zk(store.current_run_id, ctx.zk_client, ctx.paths)
        if run_id is None or run_id in handled:
            return
        run: RunRecord | None = await ctx.call_zk(store.read_run, ctx.zk_client, ctx.paths, run_id)
        wanted = run is not None and run.status == "running" and ctx.node in run.expected
        if run is None or run.plan is None or not wanted:
            handled.add(run_id)
            return
        done = await ctx.call_zk(store.read_outcomes, ctx.zk_client, ctx.paths, run_id)
        handled.add(run_id)
        if ctx.node in done:
            return
        log.info("backup %s: writing part %s", run_id, ctx.node)
        outcome = await self._write(ctx, run)
        if outcome.error is not None:
            log.warning("backup %s: part %s failed: %s", run_id, ctx.node, outcome.error)
        else:
            log.info("backup %s: part %s written", run_id, ctx.node)
        await ctx.call_zk(store.report_part, ctx.zk_client, ctx.paths, run_id, outcome)

    async def _write(self, ctx: LeaderContext, run: RunRecord) -> PartOutcome:
        plan = run.plan
        assert plan is not None
        abort = threading.Event()
        self._abort = abort
        latest = [PartProgress(done=0)]

        def on_progress(event: ProgressEvent) -> None:
            if abort.is_set():
                raise RunAbandoned(f"backup {run.id} is no longer running; part abandoned")
            latest[0] = PartProgress(done=event.done_bytes, total=event.total_bytes)

        def write() -> PartRecord:
            return write_directory_part(
                self._data_dir,
                ctx=context_for(run.id, plan),
                part=ctx.node,
                node=ctx.node,
                targets=open_plan(plan),
                progress=on_progress,
                limiter=limiter_for(plan),
            )

        future = asyncio.ensure_future(self._worker(write))
        try:
            while not future.done():
                await asyncio.wait({future}, timeout=self._poll)
                await self._follow(ctx, run, latest[0], abort)
            record = future.result()
        except asyncio.CancelledError:
            abort.set()
            raise
        except (BackupError, OSError) as exc:
            return PartOutcome(part=ctx.node, node=ctx.node, error=str(exc) or type(exc).__name__)
        return PartOutcome(part=ctx.node, node=ctx.node, record=record)

    async def _follow(
        self, ctx: LeaderContext, run: RunRecord, progress: PartProgress, abort: threading.Event
    ) -> None:
        """Publish progress; abandon the part if the run is no longer running."""
        try:
            await ctx.call_zk(
                store.publish_progress, ctx.zk_client, ctx.paths, run.id, ctx.node, progress
            )
            now = await ctx.call_zk(store.read_run, ctx.zk_client, ctx.paths, run.id)
        except (ClusterError, KazooException):
            return  # progress is advisory; ZooKeeper trouble does not stop the write
        if now is None or now.status != "running":
            abort.set()
