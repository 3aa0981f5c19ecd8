"""The leader's side of one run: start it, write the ZooKeeper part, wait for the nodes' parts,
commit the manifest, apply retention, record the outcome.

Guarantees:
- A run starts only through one fenced transaction that also creates `backups/current`; if that
  znode exists another run is in progress and nothing starts (the no-overlap guard lives in
  ZooKeeper, so it holds across leaders and processes, not just within one scheduler).
- Parts are expected from the roster members that are live when the run starts; the others are
  recorded as `missing` in the run and the manifest (`missing_nodes`), never silently left out.
- The manifest is committed only when every expected part was reported written on every target,
  fenced end to end (`cluster.backups.commit`): a fenced no-op right before the manifest is
  written, the `ok` record in a fenced transaction right after, and the manifest withdrawn if
  that record is refused. A stale leader's manifest does not stay.
- Every run ends `ok` or `failed` with its reason, the guard released and, when the cluster is
  enrolled, a `backup_succeeded`/`backup_failed` event queued for Mission Control, all in one
  fenced transaction. A failed run's objects are removed at once (best effort) and any leftovers
  become orphans that retention deletes after the next committed backup.
- Retention runs after the `ok` record. It prunes only this cluster's backups and deletes
  leftovers only of runs this cluster recorded as ended, or of unknown runs old enough that
  they cannot still be writing (`backup.retention.OrphanRule`); never a run in progress.
- A run found in progress by a leader that did not start it in this service's lifetime is failed
  ("leader changed"), see `runs.recover`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Concatenate, ParamSpec, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backup.engine import (
    OrphanRule,
    PartRecord,
    ProgressEvent,
    TargetSet,
    apply_retention,
    new_backup_id,
    write_part,
)
from backup.errors import BackupError
from backup.retention import DEFAULT_ORPHAN_GRACE
from cluster import zk
from cluster.backups import store, zkdump
from cluster.backups.commit import CommitUncertain, commit_run
from cluster.backups.drills import is_drill
from cluster.backups.node_part import RunAbandoned, report_outcome
from cluster.backups.runs import (
    ZOOKEEPER_PART,
    PartOutcome,
    RunRecord,
    Trigger,
    assess,
    recover,
)
from cluster.backups.settings import BackupSettings, plan_run
from cluster.backups.signing import decode_public, load_signing_key
from cluster.backups.wakeup import AsyncWakeup
from cluster.backups.work import Worker, context_for, limiter_for, open_plan, remove_run_objects
from cluster.errors import ClusterError, FencedOut, ZooKeeperUnavailable
from cluster.leadership import LeaderContext
from cluster.link.settings import Link
from cluster.paths import ClusterPaths
from cluster.zk import ZooKeeper
from cluster.zk.errors import NodeExistsError, ZooKeeperError

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


class RunFailed(ClusterError):
    pass


def enrolled_now(client: ZooKeeper, paths: ClusterPaths, fallback: bool) -> bool:
    """Whether the cluster config in ZooKeeper holds a Mission Control link; `fallback` if
    ZooKeeper cannot be asked (a damaged config holds no link)."""
    try:
        data, _stat = client.get(paths.config)
    except (ZooKeeperError, ZooKeeperUnavailable):
        return fallback
    return Link.from_config(zk.parse_config(data)) is not None


class RunDriver:
    def __init__(
        self,
        ctx: LeaderContext,
        auth: str | None,
        worker: Worker,
        clock: Callable[[], float] = time.time,
        poll: float = 0.3,
    ) -> None:
        self._ctx = ctx
        self._auth = auth
        self._work = worker
        self._clock = clock
        self._poll = poll
        # Set when the leader service stops: writing the ZooKeeper part gives up at once.
        self.abort = threading.Event()

    @property
    def _config(self) -> dict[str, object]:
        snap = self._ctx.snapshot
        return snap.config if snap else {}

    @property
    def _snapshot_enrolled(self) -> bool:
        return Link.from_config(self._config) is not None

    async def _enrolled(self) -> bool:
        """Whether Mission Control should hear of a run's end (a failed run raises an alert
        there), read now: the loop's snapshot may predate an enrollment made just before."""
        return await self._zk(enrolled_now, self._snapshot_enrolled)

    def _epoch(self) -> int:
        fence = self._ctx.fence
        if fence is None:
            raise FencedOut("not the leader")
        return fence.epoch

    async def _zk(
        self,
        fn: Callable[Concatenate[ZooKeeper, ClusterPaths, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`fn(zookeeper, paths, ...)` off the event loop, bounded (`LeaderContext.blocking`)."""
        return await self._ctx.blocking(fn, self._ctx.zookeeper, self._ctx.paths, *args, **kwargs)

    # --- start ----------------------------------------------------------------------------

    async def recover(self) -> str:
        """Fail the run a previous leader (or an earlier term of this one) left running."""
        run_id = await self._zk(store.current_run_id)
        if run_id is None:
            return "no run in progress"
        if is_drill(run_id):
            return f"restore drill {run_id} in progress (the drill service recovers it)"
        run = await self._zk(store.read_run, run_id)
        decision = recover(run, self._epoch())
        if run is None or not decision.fail:
            await self._ctx.fenced([zk.Delete(self._ctx.paths.backup_current)])
            return decision.reason
        await self._finish(run.finish("failed", self._clock(), decision.reason))
        return f"run {run.id} failed: {decision.reason}"

    async def start(
        self,
        trigger: Trigger,
        requests: tuple[str, ...] = (),
        mark: zk.Op | None = None,
    ) -> RunRecord | None:
        """Create a run (fenced, guarded). None if another run is in progress."""
        # A fresh read: the loop's snapshot may predate a `configure` made just before `run`.
        snap = await self._ctx.blocking(zk.read_snapshot, self._ctx.zookeeper, self._ctx.paths)
        now = self._clock()
        backup_id = new_backup_id(datetime.fromtimestamp(now, UTC))
        try:
            plan = plan_run(snap.config)
        except ClusterError as exc:
            return await self._refuse(backup_id, trigger, requests, mark, now, str(exc))
        writers = sorted(snap.live_ids & snap.roster_ids)
        run = RunRecord(
            id=backup_id,
            status="running",
            epoch=self._epoch(),
            leader=self._ctx.node,
            trigger=trigger,
            started=now,
            expected=(*writers, ZOOKEEPER_PART),
            missing=tuple(sorted(snap.roster_ids - snap.live_ids)),
            requests=requests,
            plan=plan,
        )
        try:
            await self._ctx.fenced(store.start_ops(self._ctx.paths, run, mark))
        except NodeExistsError:
            return None
        log.info("backup %s started (%s), parts %s", run.id, trigger, ", ".join(run.expected))
        if run.missing:
            log.warning("backup %s: no part from %s (down)", run.id, ", ".join(run.missing))
        return run

    async def _refuse(
        self,
        backup_id: str,
        trigger: Trigger,
        requests: tuple[str, ...],
        mark: zk.Op | None,
        now: float,
        reason: str,
    ) -> RunRecord:
        """A run that cannot even be planned is recorded as failed at once (and alerted)."""
        run = RunRecord(
            id=backup_id,
            status="failed",
            epoch=self._epoch(),
            leader=self._ctx.node,
            trigger=trigger,
            started=now,
            finished=now,
            expected=(),
            requests=requests,
            plan=None,
            reason=reason,
        )
        ops = store.start_ops(self._ctx.paths, run, mark)[1:]  # no guard: nothing runs
        enrolled = await self._enrolled()
        await self._ctx.fenced(ops + store.event_op(self._ctx.paths, enrolled, run, now))
        log.warning("backup %s not started: %s", backup_id, reason)
        return run

    # --- drive ----------------------------------------------------------------------------

    async def drive(self, run: RunRecord) -> RunRecord:
        """Take a started run to its end; returns the final record."""
        targets: TargetSet | None = None
        plan = run.plan
        assert plan is not None
        fence = self._ctx.fence  # the fence this run was started under
        try:
            if fence is None or fence.epoch != run.epoch:
                raise FencedOut(f"run {run.id} belongs to epoch {run.epoch}")
            targets = await self._work(open_plan, plan)
            await self._write_zookeeper_part(run, targets)
            parts = await self._wait_for_parts(run)
            signing_key = await self._zk(load_signing_key, self._auth)
            done = await self._work(self._commit, run, parts, targets, signing_key, fence)
            log.info("backup %s committed: %d bytes", run.id, done.bytes)
        except FencedOut:
            with contextlib.suppress(ClusterError, ZooKeeperError):
                await self._ctx.fenced([])  # steps this node down if it no longer leads
            raise
        except CommitUncertain:
            raise  # the manifest stands: its objects stay; the next leader fails the record
        except Exception as exc:  # every failure ends the run as failed, with its reason
            if not isinstance(exc, BackupError | ClusterError | OSError | ZooKeeperError):
                log.exception("backup %s: unexpected error", run.id)
            done = run.finish("failed", self._clock(), str(exc) or type(exc).__name__)
            log.warning("backup %s failed: %s", run.id, done.reason)
            if targets is not None:
                await self._work(remove_run_objects, targets, run.id)
            await self._finish(done)
            return done
        await self._prune_records()
        return await self._record_retention(done, targets)

    def _commit(
        self,
        run: RunRecord,
        parts: list[PartRecord],
        targets: TargetSet,
        signing_key: Ed25519PrivateKey,
        fence: zk.Fence,
    ) -> RunRecord:
        """The fenced commit, on the worker thread: it completes even if the drive task is
        cancelled meanwhile (the leader service stopping waits for it, bounded)."""
        client, paths = self._ctx.zookeeper, self._ctx.paths

        def check_fence() -> None:
            if self._ctx.fence != fence:
                raise FencedOut(f"epoch {fence.epoch} is no longer this node's")
            zk.fenced_commit(client, paths, fence, [])

        def record(done: RunRecord) -> None:
            enrolled = enrolled_now(client, paths, self._snapshot_enrolled)
            ops = store.finish_ops(paths, done, enrolled, self._clock(), holds_guard=True)
            zk.fenced_commit(client, paths, fence, ops)

        def read_status() -> str | None:
            client.sync(paths.backup_run(run.id))
            stored = store.read_run(client, paths, run.id)
            return None if stored is None else stored.status

        return commit_run(
            run,
            parts,
            targets,
            cluster=paths.cluster,
            signing_key=signing_key,
            check_fence=check_fence,
            record=record,
            read_status=read_status,
            clock=self._clock,
        )

    async def _write_zookeeper_part(self, run: RunRecord, targets: TargetSet) -> None:
        assert run.plan is not None
        data = await self._work(zkdump.dump, self._ctx.zookeeper, self._ctx.paths)

        def stop_if_aborted(_event: ProgressEvent) -> None:
            if self.abort.is_set():
                raise RunAbandoned(f"backup {run.id}: the leader service stopped")

        record = await self._work(
            write_part,
            io.BytesIO(data),
            ctx=context_for(run.id, run.plan),
            part=ZOOKEEPER_PART,
            node=self._ctx.node,
            targets=targets,
            total_bytes=len(data),
            limiter=limiter_for(run.plan),
            progress=stop_if_aborted,
        )
        outcome = PartOutcome(part=ZOOKEEPER_PART, node=self._ctx.node, record=record)
        await report_outcome(self._ctx, run.id, outcome)

    async def _wait_for_parts(self, run: RunRecord) -> list[PartRecord]:
        # Each reported part wakes the check at once.
        wakeup = AsyncWakeup(self._ctx.zookeeper, children=[self._ctx.paths.backup_parts(run.id)])
        try:
            return await self._await_parts(run, wakeup)
        finally:
            wakeup.close()

    async def _await_parts(self, run: RunRecord, wakeup: AsyncWakeup) -> list[PartRecord]:
        last = ""
        while True:
            outcomes = await self._zk(store.read_outcomes, run.id)
            snap = self._ctx.snapshot
            live = snap.live_ids if snap else frozenset()
            verdict = assess(run, outcomes, live, self._clock())
            if verdict.action == "fail":
                raise RunFailed(verdict.reason)
            if verdict.action == "commit":
                records = [outcomes[p].record for p in run.expected]
                return [r for r in records if r is not None]
            if verdict.reason != last:
                log.info("backup %s: %s", run.id, verdict.reason)
                last = verdict.reason
            if not self._ctx.leading:
                raise FencedOut("lost leadership while waiting for parts")
            await wakeup.wait(self._poll)

    async def _record_retention(self, done: RunRecord, targets: TargetSet | None) -> RunRecord:
        """Apply retention after the commit and note its outcome in the run (best effort)."""
        if targets is None:
            return done
        noted = done.model_copy(update={"retention": await self._retention(targets)})
        try:
            path = self._ctx.paths.backup_run(done.id)
            await self._ctx.fenced([zk.SetData(path, store.encode(noted))])
        except (ClusterError, ZooKeeperError) as exc:
            log.info("backup %s: retention note not recorded: %s", done.id, exc)
            return done
        return noted

    async def _retention(self, targets: TargetSet) -> str:
        settings = BackupSettings.from_config(self._config)
        try:
            runs = await self._zk(store.list_runs)
            grace = max(DEFAULT_ORPHAN_GRACE, timedelta(seconds=2 * settings.part_timeout))
            rule = OrphanRule(
                now=datetime.fromtimestamp(self._clock(), UTC),
                ended=frozenset(r.id for r in runs if r.status != "running"),
                running=frozenset(r.id for r in runs if r.status == "running"),
                grace=grace,
            )
            reports = await self._work(
                apply_retention,
                targets,
                settings.retention,
                trusted=decode_public(settings.signing_public_key),
                orphans=rule,
                cluster=self._ctx.paths.cluster,
            )
        except (BackupError, ClusterError, OSError, ZooKeeperError) as exc:
            log.warning("retention failed: %s", exc)
            return f"retention failed: {exc}"
        removed = sorted({r for report in reports for r in report.removed})
        orphans = sorted({r for report in reports for r in report.orphans_removed})
        return f"removed {len(removed)} backup(s), {len(orphans)} orphan(s)"

    async def _finish(self, run: RunRecord) -> None:
        paths = self._ctx.paths
        enrolled = await self._enrolled()
        await self._ctx.fenced(
            store.finish_ops(paths, run, enrolled, self._clock(), holds_guard=True)
        )
        await self._prune_records()

    async def _prune_records(self) -> None:
        """Old run records: a separate transaction, so a race here never blocks a finish."""
        try:
            prune = await self._ctx.blocking(store.prune_ops, self._ctx.zookeeper, self._ctx.paths)
            if prune:
                await self._ctx.fenced(prune)
        except FencedOut:
            raise
        except (ClusterError, ZooKeeperError) as exc:
            log.info("pruning old run records postponed: %s", exc)
