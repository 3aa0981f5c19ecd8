"""What a restore may write: the path-safety rules of extraction, on every supported Python.

tarfile's "data" filter (Python 3.11.4+, 3.12) is missing from Debian 12's own Python 3.11.2,
so the rules are the project's own, applied to each entry before it is extracted, in stream
order (so a symlink extracted earlier is followed when a later name is resolved):

- refused: absolute names, names that resolve outside the destination (`..`, or through a
  symlink already extracted), absolute link targets, links (hard or symbolic) that resolve
  outside the destination, and anything but regular files, directories and links (devices,
  FIFOs);
- modes: no setuid, setgid or sticky bits and no group/other write; a regular file is always
  owner read/write and keeps execute bits only when the owner has one; a directory keeps its
  recorded bits (as above) plus owner rwx, so the restore can finish. Ownership is never
  restored: the files belong to whoever restores.

Extraction (`backup.untar`) does not go through tarfile, so these rules are the only ones, the
same on every Python; they are at least as strict as tarfile's "data" filter.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass

from backup.errors import BackupError


class UnsafeArchiveError(BackupError):
    """The archive holds an entry a restore must not write (or is not a tar at all)."""


@dataclass(frozen=True)
class SafeEntry:
    """An entry that may be extracted, and the permission bits to give it (None: leave the
    default, for symlinks)."""

    member: tarfile.TarInfo
    mode: int | None


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def safe_entry(
    member: tarfile.TarInfo, destination: str, *, links_possible: bool = True
) -> SafeEntry:
    """`member` checked against the rules above for extraction into `destination` (a real
    path: `os.path.realpath` of the restore target). Raises `UnsafeArchiveError` naming the
    entry and the rule.

    `links_possible=False` says `destination` holds no symlink (it was empty and the archive
    made none yet): names then resolve lexically, which is exact there and spares `realpath`'s
    `lstat` of every path component."""
    name = member.name
    resolve = os.path.realpath if links_possible else os.path.normpath

    def refuse(why: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(f"archive refused, unsafe entry: {name!r} {why}")

    if name.startswith("/") or os.path.isabs(name):
        raise refuse("has an absolute path")
    if not _inside(resolve(os.path.join(destination, name)), destination):
        raise refuse("would be written outside the destination")
    if member.issym() or member.islnk():
        if os.path.isabs(member.linkname):
            raise refuse(f"links to an absolute path ({member.linkname!r})")
        base = os.path.dirname(name) if member.issym() else ""
        target = resolve(os.path.join(destination, base, member.linkname))
        if not _inside(target, destination):
            raise refuse(f"links outside the destination ({member.linkname!r})")
    mode = member.mode & 0o755
    if member.isreg() or member.islnk():
        if not mode & 0o100:
            mode &= ~0o111
        return SafeEntry(member, mode | 0o600)
    if member.isdir():
        return SafeEntry(member, mode | 0o700)
    if member.issym():
        return SafeEntry(member, None)
    raise refuse("is a special file (device or FIFO)")
