"""The backup services a node daemon runs, imported only when first started.

`backup.engine` pulls in boto3 and `cryptography`; importing them before the node is live would
delay its registration (start-up time is part of the product), so the daemon gets light
wrappers and the real services are built (in a thread) on first start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from cluster.leadership import LeaderContext, LeaderService


class LazyService:
    """A `LeaderService` whose implementation is created (and imported) on first start."""

    def __init__(self, name: str, factory: Callable[[], LeaderService]) -> None:
        self.name = name
        self._factory = factory
        self._impl: LeaderService | None = None

    async def start(self, ctx: LeaderContext) -> None:
        if self._impl is None:
            # The import takes a moment: keep it off the event loop.
            loop = asyncio.get_running_loop()
            self._impl = await loop.run_in_executor(None, self._factory)
        await self._impl.start(ctx)

    async def stop(self) -> None:
        if self._impl is not None:
            await self._impl.stop()


def backup_leader(auth: str | None) -> LeaderService:
    """The leader-only service: schedule, requested runs, recovery of interrupted runs."""

    def make() -> LeaderService:
        from cluster.backups.leader import BackupLeader

        return BackupLeader(auth)

    return LazyService("backup", make)


def part_writer(data_dir: Path) -> LeaderService:
    """The every-node service that writes this node's data directory as its part."""

    def make() -> LeaderService:
        from cluster.backups.node_part import PartWriter
        from cluster.memory import return_large_buffers_to_os

        return_large_buffers_to_os()  # this process writes backup after backup: see the module
        return PartWriter(data_dir)

    return LazyService("backup-part-writer", make)


def drill_leader() -> LeaderService:
    """The leader-only restore drill service: schedule, requested drills, recovery."""

    def make() -> LeaderService:
        from cluster.backups.drill_leader import DrillLeader

        return DrillLeader()

    return LazyService("backup-drill", make)


def drill_runner(data_dir: Path) -> LeaderService:
    """The every-node service that runs a restore drill when the leader names this node."""

    def make() -> LeaderService:
        from cluster.backups.drill_node import DrillRunner

        return DrillRunner(data_dir)

    return LazyService("backup-drill-runner", make)
