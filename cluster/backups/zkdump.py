"""The `zookeeper` part: a JSON dump of a cluster's znodes, and its restore into another cluster.

The format is specified in docs/backup-format.md (section 8). In short (UTF-8 JSON, keys sorted):
    {"format": 1, "cluster": NAME,
     "znodes": [{"path": REL, "data": BASE64, "protected": BOOL[, "readable": true]}, ...]}
`path` is relative to `/managed/clusters/<cluster>` ("" is the cluster's own znode), sorted so
that parents come before children. `protected` znodes carry a digest ACL (the secrets, and the
settings only the operator may change); `readable` ones are also world-readable. They are read
with the cluster's credential and restored under the restoring operator's credential.

Guarantees:
- Ephemeral znodes (live members, the leader lock) and the backup run state (`backups/`) are
  left out: they describe running processes, not the cluster.
- The same tree always gives the same bytes, so a restored cluster can be proven identical by
  comparing dumps.
- `apply_restore` is all or nothing: the znodes go in as few transactions as ZooKeeper's size
  limit allows, and if one fails every znode the restore created is deleted again and every
  one it overwrote gets its old data back, before the error is raised.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cluster.backups.errors import BackupRunError
from cluster.errors import ZooKeeperUnavailable
from cluster.paths import ClusterPaths
from cluster.secrets import secret_acl
from cluster.zk import Create, Op, SetData, ZooKeeper, acl
from cluster.zk.acl import Acl
from cluster.zk.errors import NoAuthError, NoNodeError, ZooKeeperError

FORMAT = 1
EXCLUDED = ("backups",)  # run state, relative to the cluster's znode


@dataclass(frozen=True)
class Znode:
    path: str  # relative to the cluster's znode
    data: bytes
    protected: bool  # a digest ACL: changeable (and, unless readable, readable) only with it
    readable: bool = False  # protected, but world-readable (settings rather than secrets)


def _excluded(rel: str) -> bool:
    return any(rel == e or rel.startswith(e + "/") for e in EXCLUDED)


def read_tree(client: ZooKeeper, paths: ClusterPaths) -> list[Znode]:
    """Every persistent znode of the cluster outside EXCLUDED, parents first."""
    found: list[Znode] = []
    pending = [""]
    while pending:
        rel = pending.pop()
        absolute = paths.base + (f"/{rel}" if rel else "")
        try:
            data, stat = client.get(absolute)
            acls, _ = client.get_acls(absolute)
            children = client.children(absolute)
        except NoNodeError:
            continue
        except NoAuthError as exc:
            raise BackupRunError(
                f"cannot read {absolute}: the node needs the cluster's ZooKeeper credential "
                "(MANAGED_ZK_AUTH) to back up its secrets"
            ) from exc
        if stat.ephemeral_owner:
            continue
        protected = any(acl.scheme(a) == "digest" for a in acls)
        readable = protected and any(acl.scheme(a) == "world" for a in acls)
        found.append(Znode(rel, bytes(data or b""), protected, readable))
        for child in children:
            child_rel = f"{rel}/{child}" if rel else child
            if not _excluded(child_rel):
                pending.append(child_rel)
    return sorted(found, key=lambda z: z.path.split("/") if z.path else [])


def encode(cluster: str, znodes: list[Znode]) -> bytes:
    doc = {
        "format": FORMAT,
        "cluster": cluster,
        "znodes": [
            {
                "path": z.path,
                "data": base64.b64encode(z.data).decode("ascii"),
                "protected": z.protected,
                **({"readable": True} if z.readable else {}),
            }
            for z in znodes
        ],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def dump(client: ZooKeeper, paths: ClusterPaths) -> bytes:
    return encode(paths.cluster, read_tree(client, paths))


@dataclass(frozen=True)
class Dump:
    cluster: str
    znodes: tuple[Znode, ...]

    def data_of(self, rel: str) -> bytes | None:
        return next((z.data for z in self.znodes if z.path == rel), None)

    def config(self) -> dict[str, Any]:
        raw = self.data_of("config") or b"{}"
        try:
            loaded = json.loads(raw)
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def with_data(self, rel: str, data: bytes) -> Dump:
        """The same dump with znode `rel`'s data replaced (added if missing)."""
        if self.data_of(rel) is None:
            added = (*self.znodes, Znode(rel, data, False))
            znodes = tuple(sorted(added, key=lambda z: z.path.split("/") if z.path else []))
        else:
            znodes = tuple(
                Znode(z.path, data, z.protected, z.readable) if z.path == rel else z
                for z in self.znodes
            )
        return Dump(self.cluster, znodes)

    def children_of(self, rel: str) -> list[str]:
        prefix = rel + "/"
        return [
            z.path[len(prefix) :]
            for z in self.znodes
            if z.path.startswith(prefix) and "/" not in z.path[len(prefix) :]
        ]


def parse(data: bytes) -> Dump:
    try:
        doc = json.loads(data)
        if doc.get("format") != FORMAT:
            raise BackupRunError(f"zookeeper part has unknown format {doc.get('format')!r}")
        znodes = tuple(
            Znode(
                str(z["path"]),
                base64.b64decode(z["data"], validate=True),
                bool(z["protected"]),
                bool(z.get("readable", False)),
            )
            for z in doc["znodes"]
        )
        return Dump(cluster=str(doc["cluster"]), znodes=znodes)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackupRunError("the zookeeper part is not a readable dump") from exc


@dataclass(frozen=True)
class ZnodeWrite:
    """One znode a restore writes: created (with `acl`), or set when it already exists."""

    path: str
    data: bytes
    acl: tuple[Acl, ...] | None  # None: ZooKeeper's open default
    previous: bytes | None = None  # the data it had, when it already existed (to undo a set)

    @property
    def creates(self) -> bool:
        return self.previous is None

    @property
    def weight(self) -> int:
        return len(self.data) + len(self.path) + 64


def restore_ops(
    client: ZooKeeper, paths: ClusterPaths, dump_: Dump, auth: str | None
) -> list[ZnodeWrite]:
    """What restoring `dump_` under `paths` takes, in dump order (parents first)."""
    secret: tuple[Acl, ...] | None = None
    writes: list[ZnodeWrite] = []
    for znode in dump_.znodes:
        absolute = paths.base + (f"/{znode.path}" if znode.path else "")
        protection: tuple[Acl, ...] | None = None
        if znode.protected:
            if secret is None:
                secret = tuple(secret_acl(auth))
            protection = secret  # no longer world-readable, whatever the dump recorded
        existing = client.exists(absolute)
        if existing is not None:
            previous, _ = client.get(absolute)
            writes.append(ZnodeWrite(absolute, znode.data, protection, previous))
        else:
            writes.append(ZnodeWrite(absolute, znode.data, protection))
    return writes


def apply_restore(
    client: ZooKeeper, writes: list[ZnodeWrite], batch_bytes: int = 512 * 1024
) -> None:
    """Apply `writes` all or nothing, in transactions of at most `batch_bytes` (ZooKeeper's
    request limit is 1 MiB); see the module docstring."""
    batches: list[list[ZnodeWrite]] = [[]]
    size = 0
    for write in writes:
        if batches[-1] and size + write.weight > batch_bytes:
            batches.append([])
            size = 0
        batches[-1].append(write)
        size += write.weight
    applied: list[ZnodeWrite] = []
    for batch in batches:
        try:
            _commit(client, batch)
        except (BackupRunError, ZooKeeperError, ZooKeeperUnavailable) as exc:
            _undo(client, applied)
            if isinstance(exc, BackupRunError):
                raise
            raise BackupRunError(
                f"restoring znodes failed ({type(exc).__name__}); nothing was kept"
            ) from exc
        applied += batch


def _commit(client: ZooKeeper, batch: list[ZnodeWrite]) -> None:
    if not batch:
        return
    ops: list[Op] = [
        Create(write.path, write.data, acl=write.acl or None)
        if write.creates
        else SetData(write.path, write.data)
        for write in batch
    ]
    failure = client.commit(ops).failure
    if failure is not None:
        failed = failure[1]
        raise BackupRunError(f"restoring znodes failed: {type(failed).__name__}; nothing was kept")


def _undo(client: ZooKeeper, applied: list[ZnodeWrite]) -> None:
    """Take back what earlier transactions of a failed restore wrote (children first)."""
    left: list[str] = []
    for write in reversed(applied):
        try:
            if write.creates:
                client.delete(write.path)
            else:
                assert write.previous is not None
                client.set(write.path, write.previous)
        except NoNodeError:
            continue
        except (ZooKeeperError, ZooKeeperUnavailable):
            left.append(write.path)
    if left:
        raise BackupRunError(
            f"restoring znodes failed and {len(left)} znode(s) could not be taken back "
            f"(first: {left[-1]}); delete them before trying again"
        )
