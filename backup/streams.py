"""Small byte-stream adapters shared by the writers and readers of parts.

- `Readable`: anything with `read(size)` (files, pipes, BytesIO, ChunkReader).
- `Chunk`: the byte-like pieces streams are passed around in (never copied just to be bytes).
- `ChunkReader`: a `Readable` over an iterator of arbitrarily sized chunks; memory is bounded by
  the largest chunk plus the largest read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

Chunk = bytes | bytearray | memoryview
"""A piece of a byte stream: anything `bytes()`, `hashlib` and `os.write` accept."""


class Readable(Protocol):
    def read(self, size: int = -1, /) -> Chunk: ...


class ChunkReader:
    """Reads of any size over an iterator of byte chunks.

    A read never spans two chunks (it may return fewer bytes than asked, like a pipe); a whole
    chunk is handed out without copying when it fits. `read_exact` joins as needed.
    """

    def __init__(self, chunks: Iterable[Chunk]) -> None:
        self._chunks: Iterator[Chunk] = iter(chunks)
        self._current: Chunk = b""
        self._offset = 0

    def _advance(self) -> bool:
        for chunk in self._chunks:
            if chunk:  # an empty chunk is not the end of the stream
                self._current, self._offset = chunk, 0
                return True
        self._current, self._offset = b"", 0
        return False

    def read(self, size: int = -1, /) -> Chunk:
        """Up to `size` bytes (all remaining bytes if negative); empty only at the end. A
        piece of a chunk is a view of it, not a copy."""
        if size < 0:
            rest = [self._current[self._offset :], *self._chunks]
            self._current, self._offset = b"", 0
            return b"".join(rest)
        if self._offset >= len(self._current) and not self._advance():
            return b""
        current, offset = self._current, self._offset
        if offset == 0 and len(current) <= size:
            self._offset = len(current)
            return current
        end = min(offset + size, len(current))
        self._offset = end
        return current[offset:end]

    def fill(self, view: memoryview) -> int:
        """Copy the next bytes of the stream into `view` until it is full or the stream ends;
        the byte count (one copy per byte, no joins)."""
        have = 0
        while have < len(view):
            piece = self.read(len(view) - have)
            if not piece:
                break
            view[have : have + len(piece)] = piece
            have += len(piece)
        return have

    def read_exact(self, size: int) -> bytes:
        """Exactly `size` bytes, or fewer only at the end of the stream."""
        first = self.read(size)
        if len(first) == size or not first:
            return bytes(first)  # small reads only (length words, headers)
        pieces, have = [first], len(first)
        while have < size:
            piece = self.read(size - have)
            if not piece:
                break
            pieces.append(piece)
            have += len(piece)
        return b"".join(pieces)
