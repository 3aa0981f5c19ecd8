"""Extracting a part's tar stream into a directory, file contents written straight from the
decrypted frames.

Why not `tarfile`: its stream mode copies every byte through a buffer of its own before writing
it, re-resolves every name for its "data" filter, and keeps a TarInfo per member for the whole
archive, so memory grows with the file count. This reader writes each file's bytes from the
caller's buffers (`os.write` of the frame's view), resolves names once, and keeps nothing per
member but the directories whose modes are set last. A restore's user CPU in process fell to
about half of what it was with `tarfile` (docs/benchmarks.md).

Guarantees:
- Reads what `backup.archive` writes (POSIX.1-2001 pax as Python's tarfile writes it) and plain
  ustar/v7: header checksums are checked (`tarfile.TarInfo.frombuf`), pax extended headers
  (`x`) supply `path`, `linkpath`, `size` and `mtime` of the next entry. Anything else (global
  pax headers, GNU long names, sparse files, unknown types) is refused as unsupported, and a
  stream that ends before its end-of-archive block, inside a header or inside a file, or a
  name holding a NUL byte, is refused as malformed: UnsafeArchiveError, one line.
- Every entry passes `backup.tarsafety.safe_entry` before anything is written for it. Names are
  resolved through symlinks (`os.path.realpath`) once the destination may hold one (it was not
  empty, or the archive made a symlink); before that, no name can be redirected and lexical
  resolution is exact.
- Regular files are created with O_NOFOLLOW (an existing non-directory is replaced, never
  written through), get their safe mode and mtime on the open descriptor; directories get
  theirs last, deepest first, so a read-only directory cannot stop its own contents.
- Only when the caller passes an inventory, each regular file's bytes are hashed (BLAKE3) from
  the very buffers written to disk, so the inventory says what the extraction wrote; without
  one, nothing is hashed.
"""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path
from typing import NamedTuple

import blake3

from backup.streams import Chunk, Readable
from backup.tarsafety import UnsafeArchiveError, safe_entry

BLOCK = tarfile.BLOCKSIZE
COPY_BYTES = 1024 * 1024  # largest piece of a file's content asked of the source at once
MAX_PAX_BYTES = 1024 * 1024  # far beyond any name; a larger extended header is refused
FILE_TYPES = frozenset((tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE))
KNOWN_TYPES = FILE_TYPES | {
    tarfile.LNKTYPE,
    tarfile.SYMTYPE,
    tarfile.DIRTYPE,
    tarfile.CHRTYPE,  # refused by safe_entry, with its own message
    tarfile.BLKTYPE,
    tarfile.FIFOTYPE,
}
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


class ExtractedFile(NamedTuple):
    """A regular file as the extraction wrote it: its size and the BLAKE3 digest (hex) of the
    bytes written."""

    size: int
    blake3: str


Inventory = dict[str, ExtractedFile]  # normalised archive name -> what was written there


def malformed(why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"archive is malformed: {why}")


class _Input:
    """Exact reads, skips and copies over a `Readable` that may return short reads."""

    def __init__(self, source: Readable) -> None:
        self._source = source

    def exact(self, size: int, what: str) -> bytes:
        pieces: list[bytes] = []
        have = 0
        while have < size:
            piece = self._source.read(size - have)
            if not piece:
                raise malformed(f"it ends inside {what}")
            pieces.append(bytes(piece))
            have += len(piece)
        return b"".join(pieces)

    def header(self) -> bytes | None:
        """The next 512-byte block, or None at a clean end of the stream."""
        first = self._source.read(BLOCK)
        if not first:
            return None
        if len(first) == BLOCK:
            return bytes(first)
        return bytes(first) + self.exact(BLOCK - len(first), "a header")

    def copy_to(self, fd: int, size: int, name: str, hasher: blake3.blake3 | None) -> None:
        """Write the next `size` bytes to `fd`, straight from the source's buffers; `hasher`,
        if any, is fed the same buffers."""
        left = size
        while left:
            piece = self._source.read(min(left, COPY_BYTES))
            if not piece:
                raise malformed(f"it ends inside {name!r}")
            _write_all(fd, piece)
            if hasher is not None:
                hasher.update(piece)
            left -= len(piece)

    def skip(self, size: int, what: str) -> None:
        left = size
        while left:
            piece = self._source.read(min(left, COPY_BYTES))
            if not piece:
                raise malformed(f"it ends inside {what}")
            left -= len(piece)


def _write_all(fd: int, piece: Chunk) -> None:
    with memoryview(piece) as view:
        done = os.write(fd, view)
        while done < len(view):
            done += os.write(fd, view[done:])


def _padding(size: int) -> int:
    return -size % BLOCK


def parse_pax(records: bytes) -> dict[str, str]:
    """The `key=value` records of a pax extended header (`"%d %s=%s\\n"` each)."""
    found: dict[str, str] = {}
    pos = 0
    while pos < len(records) and records[pos] != 0:
        space = records.find(b" ", pos)
        try:
            length = int(records[pos:space]) if space > pos else 0
        except ValueError:
            length = 0
        record = records[pos : pos + length]
        if length <= space - pos + 1 or len(record) < length or not record.endswith(b"\n"):
            raise malformed("a pax extended header has a broken record")
        key, sep, value = record[space - pos + 1 : -1].partition(b"=")
        if not sep:
            raise malformed("a pax extended header has a record without '='")
        found[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return found


def _apply_pax(member: tarfile.TarInfo, pax: dict[str, str]) -> None:
    if any(key.startswith("GNU.sparse") for key in pax):
        raise UnsafeArchiveError(f"archive refused, unsupported entry: {member.name!r} is sparse")
    try:
        if "path" in pax:
            member.name = pax["path"]
        if "linkpath" in pax:
            member.linkname = pax["linkpath"]
        if "size" in pax:
            member.size = int(pax["size"])
        if "mtime" in pax:
            member.mtime = int(float(pax["mtime"]))
    except ValueError as exc:
        raise malformed(f"a pax extended header has a bad number ({exc})") from None
    if member.type == tarfile.DIRTYPE:
        member.name = member.name.rstrip("/")


def next_member(stream: _Input) -> tarfile.TarInfo | None:
    """The next entry's header (pax records applied), or None at the end-of-archive block."""
    pax: dict[str, str] = {}
    while True:
        block = stream.header()
        if block is None:
            raise malformed("it ends without its end-of-archive block")
        if block == tarfile.NUL * BLOCK:
            return None
        try:
            member = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise malformed(f"bad header ({exc})") from None
        if member.type != tarfile.XHDTYPE:
            break
        if pax or not 0 <= member.size <= MAX_PAX_BYTES:
            raise malformed("unexpected or oversized pax extended header")
        pax = parse_pax(stream.exact(member.size, "a pax header"))
        stream.skip(_padding(member.size), "a pax header")
    _apply_pax(member, pax)
    if member.type not in KNOWN_TYPES:
        raise UnsafeArchiveError(
            f"archive refused, unsupported entry: {member.name!r} of type {member.type!r}"
        )
    if not member.name or member.size < 0 or "\0" in member.name + member.linkname:
        raise malformed("an entry without a name, with a NUL in a name, or a negative size")
    return member


def _clear(path: str) -> None:
    """Remove a non-directory at `path`, so a new entry replaces it instead of following it."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


def _write_file(
    stream: _Input, member: tarfile.TarInfo, path: str, mode: int, hashed: bool
) -> ExtractedFile | None:
    """Write the entry's content to `path`; what was written if `hashed`, else None."""
    _clear(path)
    hasher = blake3.blake3() if hashed else None
    fd = os.open(path, CREATE_FLAGS, 0o600)
    try:
        stream.copy_to(fd, member.size, member.name, hasher)
        os.fchmod(fd, mode)
        os.utime(fd, (member.mtime, member.mtime))
    finally:
        os.close(fd)
    return None if hasher is None else ExtractedFile(member.size, hasher.hexdigest())


def _make_directory(member: tarfile.TarInfo, path: str) -> None:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            raise UnsafeArchiveError(
                f"archive refused, unsafe entry: {member.name!r} is a directory over a "
                "non-directory"
            ) from None


def _make_link(member: tarfile.TarInfo, root: str, path: str, mode: int) -> None:
    _clear(path)
    try:
        os.link(os.path.join(root, member.linkname), path)
    except FileNotFoundError:
        raise malformed(
            f"hard link {member.name!r} points to {member.linkname!r}, which it does not hold"
        ) from None
    os.chmod(path, mode)
    os.utime(path, (member.mtime, member.mtime))


def _inventory_link(inventory: Inventory, name: str, target: str) -> None:
    """A hard link holds its target's bytes; a target that is not a regular file this archive
    wrote (so not in the inventory) is dropped, and the file check reports the name."""
    written = inventory.get(target)
    if written is None:
        inventory.pop(name, None)
    else:
        inventory[name] = written


def extract_archive(
    source: Readable, destination: Path, inventory: Inventory | None = None
) -> None:
    """Extract a tar stream into `destination` (an existing directory), refusing unsafe or
    unsupported entries (see the module docstring). Stops after the end-of-archive block: the
    caller reads (and checks) whatever follows. `inventory`, when given, receives every regular
    file left in `destination` (hard links included, under their own names) with the size and
    BLAKE3 digest of the bytes written for it; a name later replaced by a symlink leaves it."""
    root = os.path.realpath(destination)
    stream = _Input(source)
    with os.scandir(root) as listing:
        links_possible = next(listing, None) is not None
    directories: list[tuple[str, int, float]] = []
    while (member := next_member(stream)) is not None:
        entry = safe_entry(member, root, links_possible=links_possible)
        path = os.path.normpath(os.path.join(root, member.name))
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o700)
        name = os.path.normpath(member.name)
        if member.type in FILE_TYPES:
            assert entry.mode is not None
            written = _write_file(stream, member, path, entry.mode, inventory is not None)
            stream.skip(_padding(member.size), repr(member.name))
            if inventory is not None and written is not None:
                inventory[name] = written
            continue
        stream.skip(member.size + _padding(member.size), repr(member.name))
        if member.isdir():
            assert entry.mode is not None
            _make_directory(member, path)
            directories.append((path, entry.mode, member.mtime))
        elif member.issym():
            _clear(path)
            os.symlink(member.linkname, path)
            links_possible = True
            if inventory is not None:
                inventory.pop(name, None)
        else:
            assert entry.mode is not None
            _make_link(member, root, path, entry.mode)
            if inventory is not None:
                _inventory_link(inventory, name, os.path.normpath(member.linkname))
    for path, mode, mtime in reversed(directories):
        os.chmod(path, mode)
        os.utime(path, (mtime, mtime))
