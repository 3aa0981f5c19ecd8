"""A node data directory as a byte stream (deterministic tar).

Guarantees:
- `DirectoryStream` produces the tar lazily, on the reader's thread, straight into the reader's
  buffer (`readinto`), so memory stays bounded whatever the directory's size. The first entry
  is the directory itself (`.`, so its mode is restored too); the rest follow in a fixed walk
  order (`sorted_tree`), with owner 0/0, no user or group names and whole-second mtimes: the
  same tree gives the same bytes.
  The output is a POSIX (pax) tar that GNU tar and Python's tarfile read.
- If reading the directory fails (a file or a directory that cannot be read, or a file that
  shrinks under us), `read` raises; the stream never ends early or skips what it could not
  list, so an incomplete tar can never be sealed as complete. The tree is listed once, when the
  stream is made (`DirectoryStream.tree`), and `tree_totals` counts that same listing.
- Reading such a stream back into a directory is `backup.untar.extract_archive`.
Sockets and FIFOs in the data directory are skipped (they are not data).
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Collection, Generator, Iterator, Sequence
from pathlib import Path

from backup.errors import BackupError

READ_BYTES = 1024 * 1024


class ArchiveSourceError(BackupError):
    """The data directory could not be read completely."""


class FileSpan:
    """The content of one regular file inside the tar, read straight into the reader's buffer.

    Raises ArchiveSourceError if the file cannot be read or ends before its recorded size."""

    def __init__(self, handle: io.FileIO, size: int, root: Path, path: Path) -> None:
        self._handle = handle
        self.remaining = size
        self._root = root
        self._path = path

    def readinto(self, view: memoryview) -> int:
        want = min(len(view), self.remaining)
        try:
            count = self._handle.readinto(view[:want])
            if not count:
                raise OSError(f"{self._path} shrank while being read")
        except OSError as exc:
            raise source_error(self._root, self._path, exc) from exc
        self.remaining -= count
        return count


Piece = bytes | FileSpan


class DirectoryStream:
    """A readable tar of `root`, produced as it is read (see `tar_pieces`).

    `readinto` copies headers and reads file contents directly into the caller's buffer, as
    many entries as fit, so a frame-sized buffer is filled in one call without extra copies."""

    def __init__(self, root: Path, leave_out: Collection[str] = ()) -> None:
        if not root.is_dir():
            raise ArchiveSourceError(f"data directory {root} does not exist or is not a directory")
        # What the tar holds, in its order (see `tree_totals`).
        self.tree = listed_tree(root, leave_out)
        self._pieces = tar_pieces(root, self.tree)
        self._current: Piece | None = None
        self._offset = 0

    def __enter__(self) -> DirectoryStream:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file being read, if any (the stream cannot be read afterwards)."""
        self._pieces.close()
        self._current = None

    def readinto(self, buffer: memoryview | bytearray) -> int:
        """Fill `buffer` from the stream; fewer bytes than its length only at the end."""
        with memoryview(buffer) as view:
            written, size = 0, len(view)
            while written < size:
                current = self._current
                if current is None:
                    current = self._current = next(self._pieces, None)
                    self._offset = 0
                    if current is None:
                        break
                if isinstance(current, FileSpan):
                    written += current.readinto(view[written:])
                    if current.remaining == 0:
                        self._current = None
                    continue
                take = min(size - written, len(current) - self._offset)
                view[written : written + take] = current[self._offset : self._offset + take]
                written += take
                self._offset += take
                if self._offset == len(current):
                    self._current = None
            return written

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes (everything left if negative); b"" only at the end."""
        if size >= 0:
            buffer = bytearray(size)
            return bytes(buffer[: self.readinto(buffer)])
        pieces = []
        while piece := self.read(READ_BYTES):
            pieces.append(piece)
        return b"".join(pieces)


def source_error(root: Path, path: Path, exc: OSError) -> ArchiveSourceError:
    return ArchiveSourceError(
        f"reading data directory {root} failed at {path}: {exc.strerror or exc}"
    )


def listed_tree(root: Path, leave_out: Collection[str] = ()) -> list[Path]:
    """`root`, then `sorted_tree(root, leave_out)`: the entries of its tar, in order;
    ArchiveSourceError if a directory cannot be listed."""
    try:
        return [root, *sorted_tree(root, leave_out)]
    except OSError as exc:
        raise source_error(root, Path(exc.filename or root), exc) from exc


def tar_pieces(root: Path, tree: Sequence[Path]) -> Generator[Piece, None, None]:
    """The tar of `root` as header bytes and file spans, produced lazily, of the entries in
    `tree` (`listed_tree(root)`).

    Each span must be read to its end before the next piece is asked for. Raises
    ArchiveSourceError if an entry cannot be read or a file shrinks while being read."""
    # A throwaway TarFile gives us gettarinfo() with tarfile's own hard-link bookkeeping.
    written = 0
    with tarfile.open(fileobj=io.BytesIO(), mode="w", format=tarfile.PAX_FORMAT) as helper:
        for path in tree:
            try:
                for piece in entry_chunks(helper, root, path):
                    written += len(piece) if isinstance(piece, bytes) else piece.remaining
                    yield piece
            except OSError as exc:
                raise source_error(root, path, exc) from exc
    end = tarfile.BLOCKSIZE * 2
    written += end
    yield tarfile.NUL * (end + (-written) % tarfile.RECORDSIZE)


def entry_chunks(helper: tarfile.TarFile, root: Path, path: Path) -> Iterator[Piece]:
    """Header, content span and padding of one entry (nothing for sockets, FIFOs, devices)."""
    info = helper.gettarinfo(str(path), arcname=path.relative_to(root).as_posix())
    if info is None or not (info.isfile() or info.isdir() or info.issym() or info.islnk()):
        return
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = int(info.mtime)
    yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    if not info.isreg() or info.size == 0:
        return
    with path.open("rb", buffering=0) as data:
        span = FileSpan(data, info.size, root, path)
        yield span
        if span.remaining:
            raise OSError(f"{path} was not read to its end")
    if info.size % tarfile.BLOCKSIZE:
        yield tarfile.NUL * (tarfile.BLOCKSIZE - info.size % tarfile.BLOCKSIZE)


def sorted_tree(root: Path, leave_out: Collection[str] = ()) -> list[Path]:
    """Every path under `root` (not `root` itself) in depth-first pre-order: for each directory,
    the directory, then its non-directory entries by name, then its symlinks to directories by
    name, then each subdirectory (with its contents) by name. Names compare as Python strings.
    A directory that cannot be listed raises OSError: a backup never silently leaves out what
    it could not read. `leave_out`: names of entries directly under `root` the caller does not
    want (with everything beneath them), e.g. installed software that is not data."""
    found: list[Path] = []
    for directory, subdirs, files in os.walk(root, onerror=_raise):
        base = Path(directory)
        if base == root and leave_out:
            subdirs[:] = [d for d in subdirs if d not in leave_out]
            files = [f for f in files if f not in leave_out]
        subdirs.sort()
        if base != root:
            found.append(base)
        found.extend(base / name for name in sorted(files))
        # Symlinks to directories are listed by walk() among subdirs but not followed.
        found.extend(base / name for name in subdirs if (base / name).is_symlink())
    return found


def _raise(exc: OSError) -> None:
    raise exc


# Per entry: a 512-byte header, and at most a pax extended header (512 bytes of header plus
# its records, one or two blocks for the long names and link targets a data directory has).
ENTRY_OVERHEAD = 3 * tarfile.BLOCKSIZE


def tree_totals(tree: Sequence[Path]) -> tuple[int, int]:
    """The regular files' total size in `tree` (`listed_tree(root)`, as `DirectoryStream.tree`
    holds it), and an estimate of the tar's size from above (headers, padding, end blocks):
    what an S3 upload sizes its parts by. One `lstat` per entry; ArchiveSourceError if one
    fails."""
    files = padded = 0
    for path in tree:
        try:
            info = path.lstat()
        except OSError as exc:
            raise source_error(tree[0], path, exc) from exc
        if stat.S_ISREG(info.st_mode):
            files += info.st_size
            padded += -(-info.st_size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    return files, padded + len(tree) * ENTRY_OVERHEAD + tarfile.RECORDSIZE * 2
