"""Reading ahead on a thread: plaintext cut into frame-sized pieces in recycled buffers
(`FrameReads`, for writing), and any iterator's items produced ahead of their use
(`read_ahead`, for restoring and verifying).

Guarantees:
- `FrameReads` yields `(buffer, length)` pairs: every piece but the last has exactly
  `frame_size` bytes, the last has 1..frame_size bytes, and an empty stream gives exactly one
  piece of length 0. A short read from the source (a pipe) never makes a short piece.
- With `ahead > 0` the source is read on a background thread while the caller works on earlier
  pieces; a source error is raised to the caller at the piece where it happened, never as an
  early end of the stream.
- Memory is bounded: at most `ahead + 2` buffers of `frame_size` bytes exist, recycled through
  `release`. A caller must `release` each buffer once it no longer needs the bytes, and must
  `close` the reader if it stops early (that ends the thread; `close` is idempotent).
- Sources with `readinto` (files, BytesIO, DirectoryStream) are read straight into the buffers
  without an intermediate copy; others are read with `read`.
- `read_ahead(items, depth)` yields the items of `items` in order, produced on a thread at most
  `depth` items ahead; an error raised by `items` is raised to the caller at its place, and a
  caller that stops early (or fails) stops the thread before the generator ends.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

from backup.streams import Readable

T = TypeVar("T")

POLL_SECONDS = 0.1
_END = object()


def fill(source: Readable, view: memoryview) -> int:
    """Read from `source` into `view` until it is full or the stream ends; the byte count."""
    have, size = 0, len(view)
    readinto = getattr(source, "readinto", None)
    while have < size:
        count: int | None = None
        if readinto is not None:
            try:
                count = readinto(view[have:])
            except NotImplementedError:  # io.RawIOBase subclasses that only define read()
                readinto = None
        if readinto is None:
            data = source.read(size - have)
            view[have : have + len(data)] = data
            count = len(data)
        if not count:
            break
        have += count
    return have


class FrameReads:
    """Iterate for `(buffer, length)` pieces of `source`; see the module docstring."""

    def __init__(self, source: Readable, frame_size: int, *, ahead: int = 0) -> None:
        if frame_size < 1:
            raise ValueError("frame size must be positive")
        self._source = source
        self._size = frame_size
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(max(0, ahead) + 2):
            self._free.put(bytearray(frame_size))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready: queue.Queue[object] = queue.Queue()  # bounded by the buffer count
        if ahead > 0:
            self._thread = threading.Thread(target=self._run, name="frame-reader", daemon=True)
            self._thread.start()

    def _pieces(self) -> Iterator[tuple[bytearray, int]]:
        first = True
        while not self._stop.is_set():
            buffer = self._take()
            if buffer is None:
                return
            with memoryview(buffer) as view:
                length = fill(self._source, view)
            if length == 0 and not first:
                self._free.put(buffer)
                return
            first = False
            yield buffer, length
            if length < self._size:
                return

    def _take(self) -> bytearray | None:
        while not self._stop.is_set():
            try:
                return self._free.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
        return None

    def _run(self) -> None:
        try:
            for piece in self._pieces():
                self._ready.put(piece)
            self._ready.put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            self._ready.put(exc)

    def __iter__(self) -> Iterator[tuple[bytearray, int]]:
        if self._thread is None:
            yield from self._pieces()
            return
        while True:
            item = self._ready.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]

    def release(self, buffer: bytearray) -> None:
        """Give a buffer back for reuse once its bytes are no longer needed."""
        self._free.put(buffer)

    def close(self) -> None:
        """Stop reading ahead and wait for the reader thread (at most one read in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def read_ahead(items: Iterable[T], depth: int) -> Iterator[T]:
    """`items`, produced on a thread up to `depth` items ahead of the caller (see the module)."""
    ready: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            offer(exc)

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
