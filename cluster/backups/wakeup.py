"""Wake a polling loop as soon as a znode it waits on changes.

A backup passes through four hand-offs (the CLI's request to the leader, the planned run to the
nodes, the parts back to the leader, the run's end back to the CLI). Polling alone costs a few
hundred milliseconds at each. A wake-up registers kazoo's self-re-arming watch recipes
(`ChildrenWatch`, `DataWatch`) whose callbacks only set an event, and the loop waits on that
event with its poll interval as the bound.

Guarantees: a wait never lasts longer than the timeout it is given, so a missed, lost or not yet
established watch (a path that does not exist yet, a reconnect) costs at most one interval, as
before. Watch callbacks run on kazoo's thread: they never call ZooKeeper, and reach the event
loop only through `call_soon_threadsafe`. Registering a watch reads ZooKeeper once, so from the
event loop it goes through the executor (`LeaderContext.call_zk`), like every other call.

Does not: tell what changed (the loop reads ZooKeeper again), or remove kazoo's watch at once
on `close` (the recipe ends at the next change).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from kazoo.client import KazooClient
from kazoo.recipe.watchers import ChildrenWatch, DataWatch


class _Watches:
    def __init__(self) -> None:
        self._closed = False

    def children(self, client: KazooClient, path: str) -> None:
        """Wake on any change to `path`'s children (none if `path` does not exist)."""
        ChildrenWatch(client, path, func=self._on_change)

    def data(self, client: KazooClient, path: str) -> None:
        """Wake when `path` is created, changed or deleted."""
        DataWatch(client, path, func=self._on_change)

    def close(self) -> None:
        self._closed = True

    def _on_change(self, *_: Any) -> bool:
        if self._closed:
            return False  # ends the recipe
        self.set()
        return True

    def set(self) -> None:
        raise NotImplementedError


class AsyncWakeup(_Watches):
    """For a loop on the event loop: ``await wakeup.wait(poll)``."""

    def __init__(self) -> None:
        super().__init__()
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def set(self) -> None:
        """Wake the waiter (from any thread)."""
        with contextlib.suppress(RuntimeError):  # the loop closed after the service stopped
            self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout: float) -> None:
        """Until a watched znode changes or `timeout` seconds pass, whichever is first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()


class ThreadWakeup(_Watches):
    """For a blocking loop (the CLI): pass `wait` where a `sleep(seconds)` is expected."""

    def __init__(self) -> None:
        super().__init__()
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)
        self._event.clear()
