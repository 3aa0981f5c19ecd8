"""Blocking backup work off the event loop: one small thread pool per service, and the opening
of a run's targets and key (each run re-checks residency against the buckets' real location).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from backup.engine import BackupContext, TargetSet, TokenBucket, open_targets
from backup.errors import BackupError
from backup.keys import load_public_key
from cluster.backups.settings import RunPlan

T = TypeVar("T")


class Worker:
    """Runs blocking calls (S3, file I/O, encryption) in its own threads, not the ZK executor."""

    def __init__(self, name: str, threads: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(fn, *args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def open_plan(plan: RunPlan) -> TargetSet:
    """The run's targets, after the configure-time and run-time residency checks."""
    return open_targets(plan.target, plan.mirrors, plan.policy)


def context_for(backup_id: str, plan: RunPlan) -> BackupContext:
    return BackupContext(backup_id, load_public_key(plan.public_key.encode()))


def limiter_for(plan: RunPlan) -> TokenBucket | None:
    return TokenBucket(plan.bandwidth_limit) if plan.bandwidth_limit else None


def remove_run_objects(targets: TargetSet, backup_id: str) -> int:
    """Best effort: delete whatever a failed run left on every target (retention also would)."""
    removed = 0
    for target in targets.all:
        with contextlib.suppress(BackupError, OSError):
            for name in target.list(f"data/{backup_id}/"):
                target.delete(name)
                removed += 1
    return removed
