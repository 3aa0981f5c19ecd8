"""Feed one stream of chunks to several consumers at once, with bounded memory.

Guarantees:
- Each consumer runs on its own thread and reads the chunks through a queue of at most `depth`
  chunks, so memory is bounded by consumers x depth x chunk size.
- Every consumer sees every chunk, in order, exactly once, or the run fails as a whole: when a
  consumer fails, the producer stops and every other consumer's iterator raises `FanOutAborted`
  (consumers must make that undo their work, as Target.put does); when the producer fails, the
  same happens and the producer's error is raised.
- `run` returns only after every consumer thread ended; it raises the first error seen.
- With `cancelled`, a consumer checks it before each chunk and before it ends: once it is true,
  every consumer that has not finished fails with `FanOutAborted`, so an abandoned write never
  completes even if the producer had already handed over every chunk (a throttled target may
  still be seconds behind).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Generic, TypeVar

from backup.streams import Chunk
from backup.throttle import TokenBucket

T = TypeVar("T")
_END = object()
_ABORT = object()
POLL_SECONDS = 0.2


class FanOutAborted(Exception):
    """Raised inside a consumer's iterator when the run is being abandoned."""


class _Lane(Generic[T]):
    def __init__(
        self,
        name: str,
        consume: Callable[[Iterable[Chunk]], T],
        depth: int,
        limiter: TokenBucket | None,
        cancelled: Callable[[], bool],
    ) -> None:
        self.name = name
        self.cancelled = cancelled
        self.queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self.consume = consume
        self.limiter = limiter
        self.result: T | None = None
        self.error: BaseException | None = None
        self.finished = threading.Event()

    def chunks(self) -> Iterator[Chunk]:
        while True:
            item = self.queue.get()
            if item is _ABORT:
                raise FanOutAborted("another writer failed; abandoning this one")
            if self.cancelled():
                raise FanOutAborted("the write was cancelled; abandoning it")
            if item is _END:
                return
            assert isinstance(item, bytes | bytearray | memoryview)
            if self.limiter is not None:
                self.limiter.consume(memoryview(item).nbytes)
                if self.cancelled():
                    raise FanOutAborted("the write was cancelled; abandoning it")
            yield item

    def run(self, failed: threading.Event) -> None:
        try:
            self.result = self.consume(self.chunks())
        except BaseException as exc:
            self.error = exc
            failed.set()
        finally:
            self.finished.set()

    def offer(self, item: object, failed: threading.Event, *, stop_on_failure: bool) -> bool:
        """Queue `item`; False if this lane is gone (or, if asked, the run has failed)."""
        while not self.finished.is_set():
            if stop_on_failure and failed.is_set():
                return False
            try:
                self.queue.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False


class FanOut(Generic[T]):
    def __init__(
        self,
        consumers: Sequence[tuple[str, Callable[[Iterable[Chunk]], T]]],
        *,
        depth: int = 4,
        limiters: Sequence[TokenBucket | None] | None = None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        limits = list(limiters) if limiters is not None else [None] * len(consumers)
        self._lanes = [
            _Lane(name, consume, depth, limit, cancelled)
            for (name, consume), limit in zip(consumers, limits, strict=True)
        ]

    def run(self, chunks: Iterable[Chunk]) -> list[T]:
        """Deliver every chunk to every consumer; return their results in consumer order."""
        failed = threading.Event()
        threads = [
            threading.Thread(
                target=lane.run, args=(failed,), name=f"fanout-{lane.name}", daemon=True
            )
            for lane in self._lanes
        ]
        for thread in threads:
            thread.start()
        producer_error: BaseException | None = None
        try:
            for chunk in chunks:
                for lane in self._lanes:
                    if not lane.offer(chunk, failed, stop_on_failure=True):
                        break
                if failed.is_set():
                    break
        except BaseException as exc:
            producer_error = exc
        ending = _ABORT if (producer_error is not None or failed.is_set()) else _END
        for lane in self._lanes:
            lane.offer(ending, failed, stop_on_failure=False)
        for thread in threads:
            thread.join()
        if producer_error is not None:
            raise producer_error
        errors = [lane.error for lane in self._lanes if lane.error is not None]
        real = [e for e in errors if not isinstance(e, FanOutAborted)]
        if real or errors:
            raise (real or errors)[0]
        return [lane.result for lane in self._lanes]  # type: ignore[misc]
