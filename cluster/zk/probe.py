"""Is a ZooKeeper server serving? Asked over its TLS client port with `srvr` (no session, no
kazoo): what `cluster status` and the leader's health report count as "reachable".

A server that answers but has lost its ensemble's quorum reports no mode, and counts as not
serving: `ruok` would answer "imok" even then.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from cluster.names import check_address

SERVING_MODES = frozenset({"leader", "follower", "observer", "standalone"})


def four_letter(
    host: str, port: int, word: str, context: ssl.SSLContext, timeout: float = 1.0
) -> str:
    """Send a four-letter command over TLS; '' when the server does not answer."""
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as s,
        ):
            s.sendall(word.encode())
            chunks = []
            while chunk := s.recv(4096):
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


def mode(host: str, port: int, context: ssl.SSLContext, timeout: float = 1.0) -> str | None:
    """The server's `Mode:` (leader, follower, ...), None when it has none or does not answer."""
    for line in four_letter(host, port, "srvr", context, timeout).splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


def serving(servers: Iterable[str], ca_file: str, timeout: float = 1.0) -> dict[str, bool]:
    """`HOST:PORT` -> whether it serves, all asked at once (so the answer takes `timeout` at
    most, however many servers are down)."""
    context = ssl.create_default_context(cafile=ca_file)
    listed = list(dict.fromkeys(servers))

    def ask(server: str) -> bool:
        host, port = check_address(server)
        return mode(host, port, context, timeout) in SERVING_MODES

    if not listed:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(listed))) as pool:
        return dict(zip(listed, pool.map(ask, listed), strict=True))
