"""cluster.aio: bounded waits that a cancellation always ends (no servers).

Each test puts the waiting task in the situation where Python 3.11's `asyncio.wait_for` loses
the cancellation: what it waits for completes in the same loop turn as the cancel."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable

import pytest

from cluster.aio import wait_event, within


async def cancel_as_it_completes(wait: Callable[[asyncio.Event], Awaitable[object]]) -> str:
    """A service loop waiting on `wait`, its event set, then cancelled before it resumes."""
    event = asyncio.Event()

    async def service_loop() -> None:
        while True:
            await wait(event)
            event.clear()

    task = asyncio.create_task(service_loop())
    await asyncio.sleep(0)  # the loop is waiting
    event.set()
    await asyncio.sleep(0)  # what it waits for has completed; the loop has not resumed yet
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=1)
    if not done:
        task.cancel()  # clean up for the control below
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return "still running"
    return "cancelled" if task.cancelled() else "ended otherwise"


def test_wait_event_never_swallows_a_cancel() -> None:
    result = asyncio.run(cancel_as_it_completes(lambda e: wait_event(e, 10)))
    assert result == "cancelled"


def test_within_never_swallows_a_cancel() -> None:
    result = asyncio.run(cancel_as_it_completes(lambda e: within(10, e.wait())))
    assert result == "cancelled"


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="wait_for was fixed in 3.12")
def test_the_hazard_they_avoid() -> None:
    async def old_wait(event: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), 10)

    assert asyncio.run(cancel_as_it_completes(old_wait)) == "still running"


def test_timeouts() -> None:
    async def scenario() -> tuple[bool, bool]:
        event = asyncio.Event()
        timed_out = not await wait_event(event, 0.01)
        event.set()
        with pytest.raises(TimeoutError):
            await within(0.01, asyncio.sleep(1))
        return timed_out, await wait_event(event, 0.01)

    assert asyncio.run(scenario()) == (True, True)
