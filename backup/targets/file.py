"""`file://` target: objects are files under a directory (an NFS mount or a local disk).

Writes go to a temporary sibling in large batched writes, are fsynced and renamed into place
(backup.atomic), so a reader never sees a partial object; write-back to the disk starts while
the object is still being written. Temporary files are hidden (leading '.') and not listed.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from backup.atomic import write_atomically
from backup.errors import TargetError
from backup.streams import Chunk
from backup.targets.base import READ_CHUNK, check_object_name
from backup.targets.location import FileLocation

# Ask the kernel to start writing each 32 MiB to disk (or to the NFS server) as soon as it is
# written, instead of leaving the whole object to the final fsync.
WRITEBACK_BYTES = 32 * 1024 * 1024


class FileTarget:
    def __init__(self, location: FileLocation) -> None:
        self._location = location
        self._root = Path(location.path)

    @property
    def location(self) -> FileLocation:
        return self._location

    def _path(self, name: str) -> Path:
        return self._root / check_object_name(name)

    def put(self, name: str, chunks: Iterable[Chunk], size_hint: int | None = None) -> int:
        path = self._path(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return write_atomically(path, chunks, mode=0o640, writeback_every=WRITEBACK_BYTES)
        except OSError as exc:
            raise TargetError(f"{self._location.url}: cannot write {name}: {exc.strerror}") from exc

    def get(self, name: str) -> Iterator[bytes]:
        path = self._path(name)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise TargetError(f"{self._location.url}: object {name} is missing") from None
        except OSError as exc:
            raise TargetError(f"{self._location.url}: cannot read {name}: {exc.strerror}") from exc
        return _chunks(handle)

    def size(self, name: str) -> int | None:
        try:
            return self._path(name).stat().st_size
        except FileNotFoundError:
            return None

    def list(self, prefix: str = "") -> list[str]:
        if not self._root.is_dir():
            return []
        names: list[str] = []
        for directory, _subdirs, files in os.walk(self._root):
            base = Path(directory).relative_to(self._root).as_posix()
            for file in files:
                if file.startswith("."):
                    continue
                name = file if base == "." else f"{base}/{file}"
                if name.startswith(prefix):
                    names.append(name)
        return sorted(names)

    def delete(self, name: str) -> None:
        path = self._path(name)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        # Remove directories left empty (e.g. data/<backup-id>/), never the root itself.
        parent = path.parent
        while parent != self._root and parent.is_relative_to(self._root):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def bucket_location(self) -> None:
        return None


def _chunks(handle: io.BufferedReader) -> Iterator[bytes]:
    try:
        while chunk := handle.read(READ_CHUNK):
            yield chunk
    finally:
        handle.close()
