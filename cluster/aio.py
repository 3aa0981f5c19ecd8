"""Bounded waits that never swallow a cancellation.

On Python 3.11, `asyncio.wait_for` returns normally when the awaited thing completes in the same
loop turn as a cancellation of the waiting task: the cancellation is lost (fixed in 3.12, which
reimplemented `wait_for` on `asyncio.timeout`). A service loop that waited that way could miss
the cancel its `stop` sent and run on, and the `stop` awaiting it then never returned: a leader
that lost and regained ZooKeeper stayed stuck with its leader work stopped. These helpers use
`asyncio.timeout`, which tells its own cancellation from anyone else's, so a cancel always ends
the waiting task.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


async def within(seconds: float, work: Awaitable[T]) -> T:
    """`await work`, raising TimeoutError after `seconds` (the work is then cancelled)."""
    async with asyncio.timeout(seconds):
        return await work


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` pass; True if it was set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` (if any) and wait until it has ended, whatever it raised."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
