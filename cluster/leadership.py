"""Leader-only services: started when this node leads with quorum, stopped at once otherwise.

Later features (Mission Control exchange, backup schedule) plug in here. A service is told to
stop on SUSPENDED (Curator's rule: it may no longer be leader) and on LOST, before anything else
happens, and every ZooKeeper write it makes goes through the leader's fence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import ParamSpec, Protocol, TypeVar

from cluster.aio import cancel_and_wait, within
from cluster.errors import ClusterError, FencedOut
from cluster.model import ClusterSnapshot
from cluster.paths import ClusterPaths
from cluster.zk import Applied, Fence, Op, ZooKeeper

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


class LeaderContext(Protocol):
    """What a leader-only service may use: the cluster, its fence and fenced writes."""

    @property
    def paths(self) -> ClusterPaths: ...

    @property
    def node(self) -> str: ...

    @property
    def fence(self) -> Fence | None: ...

    @property
    def snapshot(self) -> ClusterSnapshot | None: ...

    @property
    def leading(self) -> bool:
        """True only while this node holds the lock, is connected and has quorum."""
        ...

    async def fenced(self, ops: Sequence[Op]) -> list[Applied]:
        """Apply `ops` in one transaction fenced by this leader's epoch (`FencedOut` else)."""
        ...

    async def advance_epoch(self, past: int) -> None:
        """Move this leader's epoch above `past` (fenced; `FencedOut` when deposed)."""
        ...

    @property
    def zookeeper(self) -> ZooKeeper:
        """The node's ZooKeeper session: pass it to blocking calls made through `blocking`."""
        ...

    async def blocking(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` (blocking ZooKeeper calls) off the event loop, bounded."""
        ...


class LeaderService(Protocol):
    name: str

    async def start(self, ctx: LeaderContext) -> None: ...

    async def stop(self) -> None: ...


class DeferredService:
    """A `LeaderService` made (and its module imported) when this node first leads, so what
    only a leader needs (the wire models, pydantic, the audit chain) never delays a node's
    start-up: the first `start` pays for it once."""

    def __init__(self, name: str, make: Callable[[], LeaderService]) -> None:
        self.name = name
        self._make = make
        self._service: LeaderService | None = None

    async def start(self, ctx: LeaderContext) -> None:
        if self._service is None:
            self._service = self._make()
        await self._service.start(ctx)

    async def stop(self) -> None:
        if self._service is not None:
            await self._service.stop()


class PollingService:
    """A service that looks every `every` seconds (`step`) in a task of its own until stopped
    or fenced out. A failed look is logged (a cluster error as a pause, anything else with its
    traceback) and the next one tries again: one bad look never ends the service."""

    name = "polling"
    every = 1.0

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    async def start(self, ctx: LeaderContext) -> None:
        self._task = asyncio.create_task(self._run(ctx), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def step(self, ctx: LeaderContext) -> object:
        raise NotImplementedError

    async def _run(self, ctx: LeaderContext) -> None:
        while True:
            try:
                await self.step(ctx)
            except FencedOut:
                return
            except ClusterError as e:
                log.warning("%s paused: %s", self.name, e)
            except Exception:
                log.exception("%s step failed", self.name)
            await asyncio.sleep(self.every)


class LeaderServices:
    """Starts and stops a set of services together; stopping twice is harmless.

    Start and stop never interleave (a lock), so a stop that arrives while the services are
    starting takes effect right after, and every service ends stopped. A stop runs to its end
    even if the task that asked for it is cancelled (shielded), so one service is never left
    running because another one's stop was interrupted. A service must not await a stop of its
    own set from inside its start: it would wait for itself.
    """

    def __init__(self, services: Sequence[LeaderService]) -> None:
        self._services = list(services)
        self._lock = asyncio.Lock()
        self.active = False

    def add(self, service: LeaderService) -> None:
        self._services.append(service)

    async def start(self, ctx: LeaderContext) -> None:
        async with self._lock:
            if self.active:
                return
            self.active = True
            for s in self._services:
                try:
                    await s.start(ctx)
                except Exception:
                    log.exception("leader service %s failed to start", s.name)

    async def stop(self) -> None:
        await asyncio.shield(self._stop())

    async def _stop(self) -> None:
        async with self._lock:
            if not self.active:
                return
            self.active = False
            results = await asyncio.gather(
                *(_timed_stop(s) for s in self._services), return_exceptions=True
            )
        for s, r in zip(self._services, results, strict=True):
            if isinstance(r, BaseException):
                log.error("leader service %s failed to stop: %r", s.name, r)


#: A stop slower than this is logged with the service's name (stops are expected to be quick,
#: but a backup commit in progress may hold one up).
SLOW_STOP_S = 1.0
#: A stop still running after this long is abandoned, logged as an error, so that one stuck
#: service cannot hold the set's lock, and with it the node's leadership, forever. What it
#: might still do is harmless: every leader write is fenced. (The backup service waits at most
#: 15 s for a commit in progress.)
STOP_LIMIT_S = 60.0


async def _timed_stop(service: LeaderService, limit: float = STOP_LIMIT_S) -> None:
    started = time.monotonic()
    try:
        await within(limit, service.stop())
    except TimeoutError:
        log.error("leader service %s did not stop within %.0f s; carrying on", service.name, limit)
    finally:
        took = time.monotonic() - started
        if took > SLOW_STOP_S:
            log.warning("leader service %s took %.1f s to stop", service.name, took)
