"""Atomic file writes: a reader sees the old file, the new file, or nothing, never half of one.

Data goes to a temporary file in the destination's directory, is fsynced, then renamed (or
hard-linked when the destination must not already exist) into place; the directory is fsynced so
the rename survives a crash. On any error the temporary file is removed and the destination is
untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from backup.streams import Chunk

BATCH_BYTES = 8 * 1024 * 1024
MAX_IOVECS = 512  # well under IOV_MAX (1024 on Linux)


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_sibling(path: Path) -> Path:
    """A unique hidden name next to `path`, on the same filesystem so a rename is atomic."""
    return path.with_name(f".{path.name}.tmp-{secrets.token_hex(6)}")


def write_atomically(
    path: Path,
    chunks: Iterable[Chunk] | bytes,
    *,
    mode: int = 0o644,
    overwrite: bool = True,
    writeback_every: int | None = None,
) -> int:
    """Write `chunks` to `path` atomically and return the number of bytes written.

    With `overwrite=False` an existing `path` raises FileExistsError and is left alone.
    The file is created with permission bits `mode` from the start (never briefly wider).
    With `writeback_every`, the kernel is asked to start writing each such stretch to disk
    as soon as it is written (see `BatchedWriter`), so the final fsync has little left to do.
    """
    if isinstance(chunks, bytes):
        chunks = (chunks,)
    temp = temporary_sibling(path)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            writer = BatchedWriter(fd, writeback_every=writeback_every)
            for chunk in chunks:
                writer.write(chunk)
            writer.flush()
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(temp, path)
        else:
            os.link(temp, path)
            os.unlink(temp)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_directory(path.parent)
    return writer.written


class BatchedWriter:
    """Large writes to a file descriptor from many chunks, without copying them.

    Chunks are collected (by reference) until `batch_bytes` are waiting, then written with one
    `writev`. With `writeback_every`, each stretch of that many bytes is handed to the kernel
    for write-back right away (`posix_fadvise(DONTNEED)`, which on Linux starts writing dirty
    pages without waiting and later drops the clean ones): the disk works while we produce
    the rest, and a backup does not push the node's own data out of the page cache.
    Chunks must not be modified until `flush` returned.
    """

    def __init__(
        self, fd: int, *, batch_bytes: int = BATCH_BYTES, writeback_every: int | None = None
    ) -> None:
        self._fd = fd
        self._batch_bytes = batch_bytes
        self._writeback_every = writeback_every if hasattr(os, "posix_fadvise") else None
        self._waiting: list[Chunk] = []
        self._waiting_bytes = 0
        self._written_back = 0
        self.written = 0

    def write(self, chunk: Chunk) -> None:
        size = memoryview(chunk).nbytes
        if not size:
            return
        self._waiting.append(chunk)
        self._waiting_bytes += size
        if self._waiting_bytes >= self._batch_bytes or len(self._waiting) >= MAX_IOVECS:
            self.flush()

    def flush(self) -> None:
        """Write everything waiting (handles short writes)."""
        waiting: list[Chunk] = self._waiting
        self._waiting, self._waiting_bytes = [], 0
        while waiting:
            count = os.writev(self._fd, waiting)
            self.written += count
            while waiting and count >= memoryview(waiting[0]).nbytes:
                count -= memoryview(waiting[0]).nbytes
                waiting.pop(0)
            if count:
                waiting[0] = memoryview(waiting[0]).cast("B")[count:]
        self._start_writeback()

    def _start_writeback(self) -> None:
        every = self._writeback_every
        if every is None or self.written - self._written_back < every:
            return
        start, length = self._written_back, self.written - self._written_back
        os.posix_fadvise(self._fd, start, length, os.POSIX_FADV_DONTNEED)
        self._written_back = self.written
