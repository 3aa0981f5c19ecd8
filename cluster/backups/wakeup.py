"""Wake a polling loop as soon as a znode it waits on changes.

A backup passes through four hand-offs (the CLI's request to the leader, the planned run to the
nodes, the parts back to the leader, the run's end back to the CLI). Polling alone costs a few
hundred milliseconds at each. A wake-up arms one-shot ZooKeeper watches on the znodes the loop
waits for; a watch that fires sets an event, and the loop waits on that event with its poll
interval as the bound.

Guarantees:
- A wait never lasts longer than the timeout it is given, so a watch that could not be armed
  (ZooKeeper away, a path that does not exist yet) costs at most one interval, as before.
- Arming never blocks: watches are requested with `ZooKeeper.watch_children`/`watch_exists`,
  which nobody waits on. (kazoo's `ChildrenWatch`/`DataWatch` recipes retry without limit in the
  thread that creates them; created from the node's small ZooKeeper executor during an outage,
  they could hold its threads long after ZooKeeper came back.)
- Watches are armed at creation and again after every wait, before the loop does its next
  round of work, so a change made while the loop works still wakes the next wait.
- Watch callbacks run on the ZooKeeper client's thread: they never call ZooKeeper, and reach
  the event loop only through `call_soon_threadsafe`.

Does not: tell what changed (the loop reads ZooKeeper again), or withdraw armed watches on
`close` (each fires once more, later, and is ignored).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cluster.zk import ZooKeeper

if TYPE_CHECKING:
    import asyncio


class _Watches:
    def __init__(
        self, client: ZooKeeper, *, children: Iterable[str] = (), data: Iterable[str] = ()
    ) -> None:
        self._client = client
        self._children = tuple(children)  # any child added or removed
        self._data = tuple(data)  # created, changed or deleted
        self._closed = False
        self._arm()

    def _arm(self) -> None:
        if self._closed:
            return
        # Best effort: an unarmed watch only costs the waiter its timeout.
        for path in self._children:
            self._client.watch_children(path, self._on_watch)
        for path in self._data:
            self._client.watch_exists(path, self._on_watch)

    def _on_watch(self, _event: Any) -> None:
        if not self._closed:
            self.set()

    def close(self) -> None:
        self._closed = True

    def set(self) -> None:
        raise NotImplementedError


class AsyncWakeup(_Watches):
    """For a loop on the event loop: ``await wakeup.wait(poll)``."""

    def __init__(
        self, client: ZooKeeper, *, children: Iterable[str] = (), data: Iterable[str] = ()
    ) -> None:
        import asyncio  # here: the CLI's ThreadWakeup does without the event loop's import

        self._loop = asyncio.get_running_loop()
        self._event: asyncio.Event = asyncio.Event()
        super().__init__(client, children=children, data=data)

    def set(self) -> None:
        """Wake the waiter (from any thread)."""
        with contextlib.suppress(RuntimeError):  # the loop closed after the service stopped
            self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout: float) -> None:
        """Until a watched znode changes or `timeout` seconds pass, whichever is first; then
        arm the watches again for the next wait."""
        from cluster.aio import wait_event

        await wait_event(self._event, timeout)
        self._event.clear()
        self._arm()


class ThreadWakeup(_Watches):
    """For a blocking loop (the CLI): pass `wait` where a `sleep(seconds)` is expected."""

    def __init__(
        self, client: ZooKeeper, *, children: Iterable[str] = (), data: Iterable[str] = ()
    ) -> None:
        self._event = threading.Event()
        super().__init__(client, children=children, data=data)

    def set(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)
        self._event.clear()
        self._arm()
