"""Group commit: many concurrent callers, one flush (one transaction) per batch of their items.

`GroupCommit(flush, key=...)`; callers ``await submit(item)`` and get their own item's outcome.
`flush(items)` handles a whole batch and returns one outcome per item, in order: a result, or an
exception for that item alone (raised to its caller). If `flush` itself raises, every item of
the batch fails with that exception.

Guarantees:
- Every submitted item is flushed at most once and its caller gets its own outcome. An item
  whose caller was cancelled before its batch started is dropped, never flushed.
- Items with the same key never share a batch and are never in two concurrent flushes: they are
  flushed one after the other in submission order. A flush may therefore treat the items of
  one batch as independent of each other.
- Items arriving during a flush wait for the next one and share it (up to `max_batch`).
- Linger only while busy: with `linger` (seconds, default 0) a batch waits for company until
  its oldest item has waited `linger`, but only while items arrive less than `linger` apart.
  A lone item, or the first after a quiet spell, starts its flush at once, so an idle service
  answers as fast as without batching; an item that already waited a flush out is never held
  longer. At a steady stream too thin to fill batches by itself (each flush done before the
  next item arrives), the linger is what makes one transaction serve several items.
- No background task while idle: flusher tasks start on demand and end when nothing is left
  to take, so there is nothing to start or stop. At most `max_concurrent` flushes run at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeAlias, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Outcome: TypeAlias = R | BaseException
Flush: TypeAlias = Callable[[Sequence[T]], Awaitable[Sequence[Outcome[R]]]]


@dataclass
class _Waiting(Generic[T, R]):
    item: T
    key: Hashable
    since: float  # the loop's time at submit
    future: asyncio.Future[R] = field(repr=False)


class GroupCommit(Generic[T, R]):
    """Collects concurrently submitted items into batches handed to one `flush` call each."""

    def __init__(
        self,
        flush: Flush[T, R],
        *,
        key: Callable[[T], Hashable],
        max_batch: int = 256,
        max_concurrent: int = 1,
        linger: float = 0.0,
    ) -> None:
        if max_batch < 1 or max_concurrent < 1:
            raise ValueError("max_batch and max_concurrent must be at least 1")
        if linger < 0:
            raise ValueError("linger must not be negative")
        self._flush = flush
        self._key = key
        self._max_batch = max_batch
        self._max_concurrent = max_concurrent
        self._linger = linger
        self._last_submit = float("-inf")
        self._streaming = False  # the last two items came less than `linger` apart
        self._queue: deque[_Waiting[T, R]] = deque()
        self._busy: set[Hashable] = set()
        self._flushers: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        """Items submitted and not yet taken into a batch."""
        return len(self._queue)

    async def submit(self, item: T) -> R:
        """Flush `item` with the next batch that may take it; its outcome, or its exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        now = loop.time()
        self._streaming = now - self._last_submit < self._linger
        self._last_submit = now
        self._queue.append(_Waiting(item, self._key(item), now, future))
        self._start_flusher()
        return await future

    def _start_flusher(self) -> None:
        if len(self._flushers) < self._max_concurrent and self._takeable():
            task = asyncio.create_task(self._run())
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)

    def _takeable(self) -> bool:
        return any(w.key not in self._busy for w in self._queue)

    def _take(self) -> list[_Waiting[T, R]]:
        """The next batch: the oldest items whose key is neither busy nor already taken."""
        batch: list[_Waiting[T, R]] = []
        left: deque[_Waiting[T, R]] = deque()
        while self._queue and len(batch) < self._max_batch:
            waiting = self._queue.popleft()
            if waiting.future.done():  # the caller went away before its batch started
                continue
            if waiting.key in self._busy:
                left.append(waiting)
            else:
                self._busy.add(waiting.key)
                batch.append(waiting)
        self._queue.extendleft(reversed(left))
        return batch

    async def _run(self) -> None:
        try:
            await self._drain()
        finally:
            # Synchronously with the last empty `_take`: a submit right after sees no flusher.
            task = asyncio.current_task()
            if task is not None:
                self._flushers.discard(task)

    async def _gather(self) -> None:
        """While items stream in, wait until the oldest waiting one has waited `linger`."""
        if not (self._linger and self._streaming and self._queue):
            return
        if len(self._queue) >= self._max_batch:
            return
        loop = asyncio.get_running_loop()
        delay = self._queue[0].since + self._linger - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _drain(self) -> None:
        while True:
            await self._gather()
            batch = self._take()
            if not batch:
                break
            try:
                outcomes = await self._flush([w.item for w in batch])
                if len(outcomes) != len(batch):
                    raise RuntimeError(f"flush returned {len(outcomes)} outcomes for {len(batch)}")
            except asyncio.CancelledError:
                for waiting in batch:
                    waiting.future.cancel()
                raise
            except Exception as error:
                outcomes = [error] * len(batch)
            finally:
                self._busy.difference_update(w.key for w in batch)
            for waiting, outcome in zip(batch, outcomes, strict=True):
                if waiting.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    waiting.future.set_exception(outcome)
                else:
                    waiting.future.set_result(outcome)
            # Keys just released may let another flusher start on what this one cannot take.
            self._start_flusher()
