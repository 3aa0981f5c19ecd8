"""A node's data directory: the home of its local state, and what backups copy.

Guarantees: while a `DataDir` is held, no other process can claim the same directory (an
exclusive `flock` on `.lock`), and a directory that once belonged to another node or cluster is
refused (its `node.json` names the owner), so two nodes never share one.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cluster.errors import DataDirError

IDENTITY = "node.json"
LOCK = ".lock"


@dataclass
class DataDir:
    path: Path
    _lock: IO[str]

    def release(self) -> None:
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()


def claim(path: Path, cluster: str, node: str) -> DataDir:
    """Create (if needed), lock and check ownership of a data directory."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = (path / LOCK).open("a")
    except OSError as e:
        raise DataDirError(f"cannot use data directory {path}: {e.strerror}") from e
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        lock.close()
        raise DataDirError(
            f"data directory {path} is in use by another process: give each node its own"
        ) from e
    identity = path / IDENTITY
    wanted = {"cluster": cluster, "node": node}
    if identity.exists():
        try:
            owner = json.loads(identity.read_text())
        except (OSError, json.JSONDecodeError):
            owner = None
        if owner != wanted:
            lock.close()
            raise DataDirError(
                f"data directory {path} belongs to {owner!r}, not node {node} of cluster "
                f"{cluster}: give each node its own"
            )
    else:
        tmp = identity.with_suffix(".tmp")
        tmp.write_text(json.dumps(wanted))
        os.replace(tmp, identity)
    return DataDir(path=path, _lock=lock)
