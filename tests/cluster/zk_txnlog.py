"""ZooKeeper's own record of what happened: one server's transaction log, read with the
`TxnLogToolkit` of Debian's zookeeper.jar.

It shows what no client can see: which session removed a znode, and whether it did so in a
transaction of its own (a fenced handover: ``multi check:<epoch> delete:<leader> ...``) or
because the session ended (``closeSession`` lists the ephemeral znodes it removes).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from cluster.dev.zookeeper import CLASSPATH, ZkServer

_HEAD = re.compile(r" session (0x[0-9a-f]+) cxid 0x[0-9a-f]+ zxid (0x[0-9a-f]+) (\w+)")


@dataclass(frozen=True)
class Transaction:
    session: int
    zxid: int
    kind: str  # multi, closeSession, create, delete, setData, error, ...
    text: str  # the toolkit's rendering of the transaction, binary data replaced


def transactions(server: ZkServer) -> list[Transaction]:
    """Every transaction in `server`'s log files so far, in zxid order."""
    found: list[Transaction] = []
    logs = sorted(
        (server.data_dir / "version-2").glob("log.*"), key=lambda p: int(p.suffix[1:], 16)
    )
    for log in logs:
        out = subprocess.run(
            ["java", "-cp", CLASSPATH, "org.apache.zookeeper.server.persistence.TxnLogToolkit"]
            + [str(log)],
            capture_output=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        ).stdout.decode("utf-8", "replace")
        for line in out.splitlines():
            head = _HEAD.search(line)
            if head is not None:
                session, zxid, kind = head.groups()
                found.append(Transaction(int(session, 16), int(zxid, 16), kind, line))
            elif found:  # a value or ACL printed over several lines
                last = found.pop()
                found.append(Transaction(last.session, last.zxid, last.kind, last.text + line))
    return sorted(found, key=lambda t: t.zxid)
