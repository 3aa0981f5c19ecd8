"""Free TCP ports for the servers of a dev stack or a test, never handed out twice at once.

The kernel names a port that is free now, but nothing holds it until its server binds it, so
two processes asking at the same moment (two pytest-xdist workers, or a test and the
`managed dev up` it runs) could be given the same one. Every port handed out is therefore
recorded, under an exclusive `flock`, in a registry file shared by this user's processes on
the machine, and no process is handed a port recorded there in the last `RESERVED_S` seconds
(nor one it handed out itself before).

The registry is only a list of reservations: a stale entry costs one port for a few minutes;
a registry that cannot be opened leaves each process with its own memory only.
`MANAGED_PORT_REGISTRY` names another file (tests of this module use their own).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

REGISTRY_ENV = "MANAGED_PORT_REGISTRY"
#: Long enough for any server of a stack to bind the port it was given.
RESERVED_S = 600.0

_handed_out: deque[int] = deque(maxlen=4096)
_handed_out_lock = threading.Lock()


def registry_path() -> Path:
    named = os.environ.get(REGISTRY_ENV)
    return Path(named) if named else Path(tempfile.gettempdir()) / f"managed-ports-{os.getuid()}"


@contextlib.contextmanager
def _reservations() -> Iterator[dict[int, float]]:
    """The ports reserved machine-wide, {port: when}, locked; what the caller adds is saved."""
    try:
        fd = os.open(registry_path(), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError:
        yield {}
        return
    with os.fdopen(fd, "r+", encoding="ascii") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
        now = time.time()
        held: dict[int, float] = {}
        for line in f.read().splitlines():
            port, _, at = line.partition(" ")
            with contextlib.suppress(ValueError):
                if now - float(at) < RESERVED_S:
                    held[int(port)] = float(at)
        yield held
        f.seek(0)
        f.truncate()
        f.write("".join(f"{port} {at}\n" for port, at in held.items()))
        f.flush()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on `host`, and that no process of this user on
    this machine was handed in the last `RESERVED_S` seconds (this one: ever, recently)."""
    with _handed_out_lock, _reservations() as held:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((host, 0))
                port = int(s.getsockname()[1])
            if port not in _handed_out and port not in held:
                _handed_out.append(port)
                held[port] = time.time()
                return port
    raise RuntimeError(f"no free TCP port on {host} that was not already handed out")
