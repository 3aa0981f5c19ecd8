"""Starting and stopping leader-only services, and the health probe; no servers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from cluster.health import HealthProbe
from cluster.leadership import LeaderContext, LeaderServices


class Service:
    """A service with a task of its own, like the Mission Control exchange.

    A gated service's start and stop each wait until the test opens its gate (`starting` and
    `stopping` say that they are waiting), so a test orders events without sleeping.
    """

    def __init__(self, name: str, stop_delay: float = 0.0, gated: bool = False) -> None:
        self.name = name
        self.stop_delay = stop_delay
        self.gated = gated
        self.starting, self.start_gate = asyncio.Event(), asyncio.Event()
        self.stopping, self.stop_gate = asyncio.Event(), asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.stopped_cleanly = False

    async def start(self, ctx: LeaderContext) -> None:
        self.starting.set()
        if self.gated:
            await self.start_gate.wait()
        self.task = asyncio.create_task(asyncio.sleep(3600))

    async def stop(self) -> None:
        self.stopping.set()
        if self.gated:
            await self.stop_gate.wait()
        await asyncio.sleep(self.stop_delay)  # a slow stop (timed, never waited for)
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        self.stopped_cleanly = True

    @property
    def running(self) -> bool:
        return self.task is not None


async def until(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), 5)


async def settle() -> None:
    """Let every ready task run until it waits: turns of the event loop, not time."""
    for _ in range(20):
        await asyncio.sleep(0)


CTX: Any = object()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_stop_during_start_leaves_every_service_stopped() -> None:
    async def scenario() -> Sequence[Service]:
        services = [Service("a", gated=True), Service("b", gated=True)]
        group = LeaderServices(services)
        for s in services:
            s.stop_gate.set()
        starting = asyncio.create_task(group.start(CTX))
        await until(services[0].starting)  # "a" is starting: SUSPENDED arrives now
        stopping = asyncio.create_task(group.stop())
        await settle()  # the stop goes as far as it can while "a" is still starting
        for s in services:
            s.start_gate.set()
        await asyncio.wait_for(asyncio.gather(starting, stopping), 5)
        return services

    services = run(scenario())
    assert not any(s.running for s in services)


def test_a_cancelled_stop_still_stops_every_service() -> None:
    async def scenario() -> Sequence[Service]:
        services = [Service("a", gated=True), Service("b", gated=True)]
        group = LeaderServices(services)
        for s in services:
            s.start_gate.set()
        await group.start(CTX)
        stopping = asyncio.create_task(group.stop())
        await until(services[0].stopping)
        await until(services[1].stopping)
        stopping.cancel()  # e.g. the task that asked for it was a service's own, now cancelled
        with pytest.raises(asyncio.CancelledError):
            await stopping
        for s in services:
            s.stop_gate.set()
        deadline = asyncio.get_running_loop().time() + 5
        while not all(s.stopped_cleanly for s in services):
            assert asyncio.get_running_loop().time() < deadline, "a service never stopped"
            await asyncio.sleep(0.001)
        return services

    services = run(scenario())
    assert all(s.stopped_cleanly and not s.running for s in services)


def test_a_service_may_have_its_set_stopped_from_its_own_task() -> None:
    """What a fenced-out write does: the step-down runs in a task of its own."""

    async def scenario() -> tuple[Service, Service]:
        group: LeaderServices
        pending: list[asyncio.Task[None]] = []
        asked = asyncio.Event()

        class Writer(Service):
            async def start(self, ctx: LeaderContext) -> None:
                self.task = asyncio.create_task(self.work())

            async def work(self) -> None:
                await self.start_gate.wait()  # opened once the set has started
                pending.append(asyncio.create_task(group.stop()))  # as NodeDaemon.fenced does
                asked.set()
                await asyncio.sleep(3600)

        writer, other = Writer("writer"), Service("other", stop_delay=0.02)
        group = LeaderServices([writer, other])
        await group.start(CTX)
        writer.start_gate.set()
        await until(asked)
        await asyncio.wait_for(asyncio.gather(*pending), 5)
        return writer, other

    writer, other = run(scenario())
    assert writer.stopped_cleanly and other.stopped_cleanly
    assert not writer.running and not other.running


def test_health_probe_failure_is_reported_not_raised(tmp_path: Path) -> None:
    probe = HealthProbe(tmp_path)
    good = probe()
    assert good is not None and good.memory_total_bytes > 0 and probe.error is None
    gone = HealthProbe(tmp_path / "vanished")
    figures = gone()
    assert figures is None and gone.error is not None and "vanished" in gone.error
    (tmp_path / "vanished").mkdir()
    again = gone()
    assert again is not None and again.memory_total_bytes > 0 and gone.error is None


def test_a_slow_stop_is_logged_with_the_services_name(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import cluster.leadership

    monkeypatch.setattr(cluster.leadership, "SLOW_STOP_S", 0.02)

    async def scenario() -> None:
        group = LeaderServices([Service("quick"), Service("backup", stop_delay=0.05)])
        await group.start(CTX)
        await group.stop()

    with caplog.at_level("WARNING", logger="cluster.leadership"):
        run(scenario())
    slow = [r.getMessage() for r in caplog.records if "to stop" in r.getMessage()]
    assert len(slow) == 1 and slow[0].startswith("leader service backup took ")


def test_a_service_whose_stop_hangs_is_abandoned_and_the_set_stays_usable(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One stuck stop must not hold the set's lock (and the node's leadership) forever."""
    import cluster.leadership as leadership

    class Stuck(Service):
        async def stop(self) -> None:
            await asyncio.Event().wait()  # never returns

    original = leadership._timed_stop

    async def quick(service: Any) -> None:
        await original(service, limit=0.2)

    monkeypatch.setattr(leadership, "_timed_stop", quick)

    async def scenario() -> tuple[Service, Service]:
        stuck, fine = Stuck("stuck"), Service("fine")
        group = LeaderServices([stuck, fine])
        await group.start(CTX)
        await asyncio.wait_for(group.stop(), 5)
        await asyncio.wait_for(group.start(CTX), 5)  # the lock was released
        return stuck, fine

    _stuck, fine = run(scenario())
    assert fine.stopped_cleanly and fine.running
    assert "leader service stuck did not stop within 0 s" in caplog.text
