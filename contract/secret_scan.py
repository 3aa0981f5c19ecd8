"""Find the product's credentials in files and in git history (`managed secrets scan`,
`mission-control secrets scan`).

Guarantees:
- A finding is a string of the credential format (`contract.credentials`) whose checksum holds,
  so findings are almost never false; credentials of the old formats are not looked for.
- Read only: files are opened for reading, git is asked with plumbing commands (`rev-list`,
  `cat-file`, `log`), nothing is written, symbolic links are not followed.
- With ``git=True`` a path that is a git work tree is also scanned through its history: every
  blob reachable from any ref or the reflog, each read once however many commits hold it; a
  finding names the path the blob was first seen under and the oldest commit that added it.
- Findings never carry the whole credential out: `Leak.shown` is the kind and a short prefix.

This is the one module of `contract` that does I/O: both deployables ship the scanner and it
reads only what the caller names.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from contract.credentials import CredentialKind, find, redacted

#: Files above this size are read in one piece all the same; the bound only keeps a mistaken
#: scan of a disk image from taking all memory.
MAX_FILE_BYTES = 256 * 1024 * 1024
#: The scan commands' exit status when they found something (1 is an error, 2 a usage error).
FOUND_EXIT = 3


class ScanError(Exception):
    """A path or repository that cannot be scanned; the message is one line."""


@dataclass(frozen=True)
class Leak:
    """One credential found: where (`location`: a path and line, or a git blob) and what."""

    location: str
    line: int
    kind: CredentialKind
    credential: str
    commit: str | None = None

    @property
    def shown(self) -> str:
        return redacted(self.credential)

    def describe(self) -> str:
        where = f"{self.location}:{self.line}"
        if self.commit is not None:
            where += f" (commit {self.commit[:12]})"
        return f"{where}: {self.kind.leak_type} {self.shown}"


def _leaks_in(data: bytes, location: str, commit: str | None = None) -> Iterator[Leak]:
    line, counted_to = 1, 0
    for found in find(data):
        line += data.count(b"\n", counted_to, found.offset)
        counted_to = found.offset
        yield Leak(location, line, found.kind, found.credential, commit)


def _files(root: str) -> Iterator[str]:
    """Regular files under `root`, without following links or entering `.git` (plain strings
    and `os.scandir`: on a tree of many small files, path objects cost more than the scan)."""
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != ".git":
                        stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    yield entry.path


def _read(file: str) -> bytes:
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as e:
        raise ScanError(f"{file}: cannot read it: {e.strerror}") from None
    try:
        return os.read(fd, MAX_FILE_BYTES) if os.fstat(fd).st_size else b""
    finally:
        os.close(fd)


def scan_files(paths: Iterable[Path]) -> list[Leak]:
    """Every credential in the named files and the files under the named directories."""
    leaks: list[Leak] = []
    for path in paths:
        if path.is_symlink() or not path.exists():
            raise ScanError(f"{path}: no such file or directory")
        for file in [str(path)] if path.is_file() else _files(str(path)):
            data = _read(file)
            if b"mc" in data:
                leaks.extend(_leaks_in(data, file))
    return leaks


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], input=stdin, capture_output=True, timeout=600
        )
    except FileNotFoundError:
        raise ScanError("git is not installed: install it to scan history") from None
    except subprocess.TimeoutExpired:
        raise ScanError(f"{repo}: git took over 10 minutes; scan a smaller repository") from None
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise ScanError(f"{repo}: git {args[0]} failed: {reason[-1] if reason else '?'}")
    return done.stdout


def is_git_repository(path: Path) -> bool:
    return path.is_dir() and (path / ".git").exists()


def scan_git_history(repo: Path) -> list[Leak]:
    """Every credential in any blob reachable from the refs or the reflog of `repo`."""
    listed = _git(repo, "rev-list", "--objects", "--all", "--reflog")
    blobs: dict[str, str] = {}
    for row in listed.decode(errors="surrogateescape").splitlines():
        sha, _, name = row.partition(" ")
        if name and sha not in blobs:
            blobs[sha] = name  # trees have names too; cat-file tells them apart below
    if not blobs:
        return []
    batch = _git(repo, "cat-file", "--batch", stdin="".join(f"{s}\n" for s in blobs).encode())
    leaks: list[Leak] = []
    at = 0
    for sha, name in blobs.items():
        header_end = batch.index(b"\n", at)
        _, kind, size = batch[at:header_end].split(b" ")
        start = header_end + 1
        at = start + int(size) + 1
        content = batch[start : start + int(size)]
        if kind == b"blob" and b"mc" in content:
            found = list(_leaks_in(content, f"{repo}@{sha[:12]}:{name}"))
            if found:
                commit = _oldest_commit_adding(repo, sha)
                leaks.extend(
                    Leak(leak.location, leak.line, leak.kind, leak.credential, commit)
                    for leak in found
                )
    return leaks


def _oldest_commit_adding(repo: Path, blob: str) -> str | None:
    commits = _git(repo, "log", "--all", "--reflog", "--format=%H", f"--find-object={blob}")
    rows = commits.decode().split()
    return rows[-1] if rows else None


def scan(paths: Iterable[Path], *, git: bool = False) -> list[Leak]:
    """`scan_files` over `paths`, and with `git` the history of each that is a repository."""
    named = list(paths)
    leaks = scan_files(named)
    if git:
        for path in named:
            if is_git_repository(path):
                leaks.extend(scan_git_history(path))
    return leaks


def findings_json(leaks: Iterable[Leak]) -> list[dict[str, object]]:
    """The findings for `--json`: never the credential itself, only its shown prefix."""
    return [
        {
            "location": leak.location,
            "line": leak.line,
            "type": leak.kind.leak_type,
            "shown": leak.shown,
            "commit": leak.commit,
        }
        for leak in leaks
    ]


def summary(leaks: list[Leak]) -> str:
    if not leaks:
        return "no credentials found"
    return (
        f"{len(leaks)} credential(s) found: revoke each (a leak report to Mission Control, "
        "`managed mc rotate-credential`, or `mission-control tokens revoke`) and remove it"
    )


def report(leaks: list[Leak], *, as_json: bool) -> str:
    """What a scan command prints on stdout: the findings (JSON or one line each)."""
    if as_json:
        return json.dumps(findings_json(leaks), indent=2, sort_keys=True)
    return "\n".join(leak.describe() for leak in leaks)
