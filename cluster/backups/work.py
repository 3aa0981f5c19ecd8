"""Blocking backup work off the event loop: one small thread pool per service, and the opening
of a run's targets and key (each run re-checks residency against the buckets' real location).

Guarantees:
- `Worker.close` stops taking work and waits, for a bounded time, for the calls in progress
  (a manifest commit among them) instead of abandoning them mid-way.
- `limiter_for` gives every service of one process the same token bucket for a given rate, so
  the leader's ZooKeeper part and its own node part together stay within the node's limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

# The modules themselves, not backup.engine: `verify` and `restore` load only what they use.
from backup.destinations import TargetSet, open_targets
from backup.errors import BackupError
from backup.keys import load_public_key
from backup.throttle import TokenBucket
from backup.writer import BackupContext
from cluster.backups.settings import RunPlan

T = TypeVar("T")
log = logging.getLogger(__name__)


class Worker:
    """Runs blocking calls (S3, file I/O, encryption) in its own threads, not the ZK executor."""

    def __init__(self, name: str, threads: int = 2) -> None:
        self._name = name
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._running: set[Future[Any]] = set()

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        future = self._pool.submit(partial(fn, *args, **kwargs))
        self._running.add(future)
        future.add_done_callback(self._running.discard)
        return await asyncio.wrap_future(future)

    async def close(self, wait: float = 0.0) -> bool:
        """Take no more work; wait up to `wait` seconds for calls in progress. True if none
        is left running (a call that outlives the wait finishes on its own thread)."""
        pending = [f for f in self._running if not f.done()]
        self._pool.shutdown(wait=False, cancel_futures=True)
        pending = [f for f in pending if not f.cancelled()]
        if pending and wait > 0:
            await asyncio.wait([asyncio.wrap_future(f) for f in pending], timeout=wait)
        left = [f for f in pending if not f.done()]
        if left:
            log.warning("%s: %d call(s) still running after %gs", self._name, len(left), wait)
        return not left


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` and wait for it to end, whatever its outcome (a service stopping)."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def open_plan(plan: RunPlan) -> TargetSet:
    """The run's targets, after the configure-time and run-time residency checks."""
    return open_targets(plan.target, plan.mirrors, plan.policy)


def context_for(backup_id: str, plan: RunPlan) -> BackupContext:
    return BackupContext(backup_id, load_public_key(plan.public_key.encode()))


_limiters: dict[int, TokenBucket] = {}
_limiters_lock = threading.Lock()


def limiter_for(plan: RunPlan) -> TokenBucket | None:
    """The process's token bucket for the plan's bandwidth limit (None when unlimited)."""
    rate = plan.bandwidth_limit
    if not rate:
        return None
    with _limiters_lock:
        bucket = _limiters.get(rate)
        if bucket is None:
            bucket = _limiters[rate] = TokenBucket(rate)
        return bucket


def remove_run_objects(targets: TargetSet, backup_id: str) -> int:
    """Best effort: delete whatever a failed run left on every target (retention also would)."""
    removed = 0
    for target in targets.all:
        with contextlib.suppress(BackupError, OSError):
            for name in target.list(f"data/{backup_id}/"):
                target.delete(name)
                removed += 1
    return removed
