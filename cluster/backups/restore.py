"""Restoring a backup into an empty cluster: node data directories, then the ZooKeeper subtree.

Guarantees:
- Refused (nothing changed) unless the target cluster is empty: no roster, no live node, no
  backup or Mission Control settings; and unless every destination directory is absent or empty.
- The manifest's signature is checked, and once the ZooKeeper part is decrypted (authenticated
  with the customer's private key) the signer must be the key recorded in that cluster's config.
- Each directory is restored all-or-nothing (`backup.engine.restore_part_directory`); if any
  later step fails, the directories restored so far are removed again. The znodes are written
  last, so a cluster never has a roster whose nodes' data is missing.
- A restored data directory is re-labelled for the new cluster (`node.json`), so the node can
  claim it under the new cluster's name; every other byte is as backed up.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kazoo.client import KazooClient

from backup.engine import (
    ProgressCallback,
    load_manifest,
    restore_part_bytes,
    restore_part_directory,
)
from backup.keys import RecipientPrivateKey
from backup.targets import Target
from cluster.backups import zkdump
from cluster.backups.errors import BackupRunError
from cluster.backups.runs import ZOOKEEPER_PART
from cluster.backups.settings import BackupSettings
from cluster.backups.signing import decode_public
from cluster.config import default_data_dir
from cluster.datadir import IDENTITY
from cluster.names import check_name
from cluster.paths import ROOT, ClusterPaths


@dataclass(frozen=True)
class RestoreReport:
    backup_id: str
    cluster: str
    directories: tuple[tuple[str, str], ...]  # (node, directory)
    znodes: int


def parse_mappings(items: Sequence[str]) -> dict[str, Path]:
    """`NODE=DIR` options as a mapping; BackupRunError for a malformed one."""
    found: dict[str, Path] = {}
    for item in items:
        node, sep, directory = item.partition("=")
        if not sep or not directory:
            raise BackupRunError(f"--data-dir {item!r}: write NODE=DIR")
        try:
            check_name("node id", node)
        except ValueError as exc:
            raise BackupRunError(f"--data-dir {item!r}: {exc}") from exc
        found[node] = Path(directory).expanduser().absolute()
    return found


def check_empty(client: KazooClient, paths: ClusterPaths) -> None:
    """Refuse a cluster that has members, live nodes or settings."""
    if not client.exists(paths.base):
        return
    for what, path in (("live nodes", paths.live), ("a roster", paths.roster)):
        if client.exists(path) and client.get_children(path):
            raise BackupRunError(
                f"cluster {paths.cluster} has {what}: restore only into an empty cluster "
                "(pick a new --cluster name)"
            )
    data, _ = client.get(paths.config) if client.exists(paths.config) else (b"{}", None)
    try:
        config = json.loads(data or b"{}")
    except ValueError:
        config = {"?": "unreadable"}
    if config:
        raise BackupRunError(
            f"cluster {paths.cluster} already has a configuration: restore only into an empty "
            "cluster (pick a new --cluster name)"
        )


def _destinations(nodes: Sequence[str], mapping: dict[str, Path], cluster: str) -> dict[str, Path]:
    unknown = sorted(set(mapping) - set(nodes))
    if unknown:
        raise BackupRunError(
            f"--data-dir names node {unknown[0]}, which has no part in this backup "
            f"(nodes: {', '.join(nodes)})"
        )
    chosen = {n: mapping.get(n) or default_data_dir(cluster, n) for n in nodes}
    for node, path in chosen.items():
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise BackupRunError(
                f"data directory {path} for node {node} must be absent or empty; "
                f"choose another with --data-dir {node}=DIR"
            )
    return chosen


def restore_cluster(
    client: KazooClient,
    paths: ClusterPaths,
    auth: str | None,
    backup_id: str,
    source: Target,
    private_key: RecipientPrivateKey,
    mapping: dict[str, Path],
    progress: ProgressCallback,
) -> RestoreReport:
    """Restore backup `backup_id` from `source` into the empty cluster at `paths`."""
    check_empty(client, paths)
    signed = load_manifest(source, backup_id)
    nodes = [p.name for p in signed.manifest.parts if p.name != ZOOKEEPER_PART]
    destinations = _destinations(nodes, mapping, paths.cluster)
    dump = zkdump.parse(
        restore_part_bytes(backup_id, ZOOKEEPER_PART, source=source, private_key=private_key)
    )
    settings = BackupSettings.from_config(dump.config())
    trusted = decode_public(settings.signing_public_key)
    if trusted is not None:
        load_manifest(source, backup_id, trusted)  # signed by the cluster it claims to be
    ops = zkdump.restore_ops(client, paths, dump, auth)  # needs --zk-auth for secrets: check now
    restored: list[Path] = []
    try:
        for node, directory in destinations.items():
            restore_part_directory(
                backup_id,
                node,
                directory,
                source=source,
                private_key=private_key,
                trusted=trusted,
                progress=progress,
            )
            restored.append(directory)
            _relabel(directory, paths.cluster, node)
        check_empty(client, paths)  # nobody started using the cluster meanwhile
        client.ensure_path(ROOT)
        zkdump.apply_restore(client, ops)
    except BaseException:
        for directory in restored:
            with contextlib.suppress(OSError):
                shutil.rmtree(directory)
        raise
    return RestoreReport(
        backup_id=backup_id,
        cluster=paths.cluster,
        directories=tuple((n, str(d)) for n, d in destinations.items()),
        znodes=len(dump.znodes),
    )


def _relabel(directory: Path, cluster: str, node: str) -> None:
    """Point the data directory's identity at the new cluster (write temp + rename)."""
    identity = directory / IDENTITY
    tmp = identity.with_suffix(".restore-tmp")
    tmp.write_text(json.dumps({"cluster": cluster, "node": node}))
    os.replace(tmp, identity)
