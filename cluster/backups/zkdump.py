"""The `zookeeper` part: a JSON dump of a cluster's znodes, and its restore into another cluster.

Format (UTF-8 JSON, keys sorted):
    {"format": 1, "cluster": NAME,
     "znodes": [{"path": REL, "data": BASE64, "protected": BOOL}, ...]}
`path` is relative to `/managed/clusters/<cluster>` ("" is the cluster's own znode), sorted so
that parents come before children. `protected` znodes (the secrets) carry a digest ACL; they are
read with the cluster's credential and restored under the restoring operator's credential.

Guarantees:
- Ephemeral znodes (live members, the leader lock) and the backup run state (`backups/`) are
  left out: they describe running processes, not the cluster.
- The same tree always gives the same bytes, so a restored cluster can be proven identical by
  comparing dumps.
- `restore_ops` builds creates (or sets, for the containers an empty cluster already has) in
  dump order; the caller applies them in as few transactions as ZooKeeper's size limit allows.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, NoNodeError
from kazoo.security import make_digest_acl

from cluster import zk
from cluster.backups.errors import BackupRunError
from cluster.paths import ClusterPaths
from cluster.secrets import parse_auth

FORMAT = 1
EXCLUDED = ("backups",)  # run state, relative to the cluster's znode


@dataclass(frozen=True)
class Znode:
    path: str  # relative to the cluster's znode
    data: bytes
    protected: bool


def _excluded(rel: str) -> bool:
    return any(rel == e or rel.startswith(e + "/") for e in EXCLUDED)


def read_tree(client: KazooClient, paths: ClusterPaths) -> list[Znode]:
    """Every persistent znode of the cluster outside EXCLUDED, parents first."""
    found: list[Znode] = []
    pending = [""]
    while pending:
        rel = pending.pop()
        absolute = paths.base + (f"/{rel}" if rel else "")
        try:
            data, stat = client.get(absolute)
            acls, _ = client.get_acls(absolute)
            children = client.get_children(absolute)
        except NoNodeError:
            continue
        except NoAuthError as exc:
            raise BackupRunError(
                f"cannot read {absolute}: the node needs the cluster's ZooKeeper credential "
                "(MANAGED_ZK_AUTH) to back up its secrets"
            ) from exc
        if stat.ephemeralOwner:
            continue
        protected = any(acl.id.scheme == "digest" for acl in acls)
        found.append(Znode(rel, bytes(data or b""), protected))
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
            }
            for z in znodes
        ],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def dump(client: KazooClient, paths: ClusterPaths) -> bytes:
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
            Znode(str(z["path"]), base64.b64decode(z["data"], validate=True), bool(z["protected"]))
            for z in doc["znodes"]
        )
        return Dump(cluster=str(doc["cluster"]), znodes=znodes)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackupRunError("the zookeeper part is not a readable dump") from exc


def restore_ops(
    client: KazooClient, paths: ClusterPaths, dump_: Dump, auth: str | None
) -> list[zk.Op | tuple[str, bytes, list[Any]]]:
    """What restoring `dump_` under `paths` takes: plain ops, or (path, data, acl) creates."""
    acl: list[Any] | None = None
    ops: list[zk.Op | tuple[str, bytes, list[Any]]] = []
    for znode in dump_.znodes:
        absolute = paths.base + (f"/{znode.path}" if znode.path else "")
        if znode.protected:
            if acl is None:
                user, password = parse_auth(auth)
                acl = [make_digest_acl(user, password, all=True)]
            ops.append((absolute, znode.data, acl))
        elif client.exists(absolute):
            ops.append(zk.SetData(absolute, znode.data))
        else:
            ops.append(zk.Create(absolute, znode.data))
    return ops


def apply_restore(
    client: KazooClient,
    ops: list[zk.Op | tuple[str, bytes, list[Any]]],
    batch_bytes: int = 512 * 1024,
) -> None:
    """Apply `ops` in transactions of at most `batch_bytes` (ZooKeeper's limit is 1 MiB)."""
    batch: list[zk.Op | tuple[str, bytes, list[Any]]] = []
    size = 0
    for op in ops:
        weight = len(op[1]) if isinstance(op, tuple) else len(getattr(op, "data", b""))
        if batch and size + weight > batch_bytes:
            _commit(client, batch)
            batch, size = [], 0
        batch.append(op)
        size += weight + len(op[0] if isinstance(op, tuple) else op.path)
    if batch:
        _commit(client, batch)


def _commit(client: KazooClient, batch: list[zk.Op | tuple[str, bytes, list[Any]]]) -> None:
    tx = client.transaction()
    for op in batch:
        if isinstance(op, tuple):
            tx.create(op[0], op[1], acl=op[2])
        elif isinstance(op, zk.SetData):
            tx.set_data(op.path, op.data)
        elif isinstance(op, zk.Create):
            tx.create(op.path, op.data)
        else:
            tx.delete(op.path)
    results = tx.commit()
    errors = [r for r in results if isinstance(r, Exception)]
    if errors:
        raise BackupRunError(f"restoring znodes failed: {type(errors[0]).__name__}")
