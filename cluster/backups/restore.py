"""Restoring a backup into an empty cluster: node data directories, then the ZooKeeper subtree.

Guarantees:
- Refused (nothing changed) unless the target cluster is empty: no roster, no live node, no
  backup or Mission Control settings; and unless every destination directory is absent or empty.
- Refused (nothing changed) unless the manifest is signed by a signer the operator trusts
  independently of the backup (`signers`: fingerprints from `--signer` or the signers file
  `keygen` wrote), and unless the configuration inside the backup names that same signing key.
  Anyone can write a self-signed backup into a bucket; only the trusted signer makes it ours.
- Each directory is restored all-or-nothing (`backup.engine.restore_part_directory`), up to
  PARALLEL_PARTS of them at once; if any part or any later step fails, the directories
  restored so far are removed again (a destination that existed empty beforehand is left in
  place, empty). The znodes are written last, all or
  nothing (`zkdump.apply_restore`), so a cluster never has a roster whose restored data is
  missing.
- The restored cluster is the backed-up one, with three changes: its scheduled backups are
  paused (it would otherwise write into the original's target and apply retention there), its
  epoch is at least the manifest's epoch + 1 (and `min_epoch`), so its leaders are not fenced
  out by Mission Control for epochs the original already used, and each restored data directory
  is re-labelled for the new cluster (`node.json`). Everything else, the Mission Control
  enrollment included, comes back as it was.
- Roster members that had no part in the backup (down when it ran: `missing_nodes`) are named
  in the report; their roster entries come back, their data does not.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

# The modules themselves, not backup.engine: a restore loads only what it uses.
from backup.catalogue import load_manifest
from backup.keys import RecipientPrivateKey
from backup.manifest import Trusted, signer_id
from backup.progress import ProgressCallback, ProgressEvent
from backup.restore import restore_part_bytes, restore_part_directory
from backup.targets import Target
from backup.untar import Inventory
from cluster.backups import zkdump
from cluster.backups.errors import BackupRunError
from cluster.backups.runs import ZOOKEEPER_PART
from cluster.backups.settings import SECTION, BackupSettings
from cluster.backups.signing import decode_public
from cluster.config import default_data_dir
from cluster.datadir import IDENTITY
from cluster.names import check_name
from cluster.paths import ROOT, ClusterPaths
from cluster.zk import ZooKeeper

PARALLEL_PARTS = 4  # node parts restored at once (each reads a few MiB ahead: bounded memory)
PartCheck = Callable[[str, Path, Inventory], None]  # (node, restored directory, its files)


@dataclass(frozen=True)
class RestoreReport:
    backup_id: str
    cluster: str
    directories: tuple[tuple[str, str], ...]  # (node, directory)
    znodes: int
    signer: str  # fingerprint of the manifest's (trusted) signer
    missing_nodes: tuple[str, ...]  # roster members without data in this backup
    epoch: int  # the restored epoch znode: the first leader takes the next one
    enrolled: bool  # the restored config carries a Mission Control enrollment


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


def check_empty(client: ZooKeeper, paths: ClusterPaths) -> None:
    """Refuse a cluster that has members, live nodes or settings."""
    if not client.exists(paths.base):
        return
    for what, path in (("live nodes", paths.live), ("a roster", paths.roster)):
        if client.exists(path) and client.children(path):
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


def _destinations(
    nodes: Sequence[str], missing: Sequence[str], mapping: dict[str, Path], cluster: str
) -> dict[str, Path]:
    for node in sorted(mapping):
        if node in missing:
            raise BackupRunError(
                f"--data-dir names node {node}, which was down when this backup ran: "
                "the backup has no data for it"
            )
        if node not in nodes:
            raise BackupRunError(
                f"--data-dir names node {node}, which has no part in this backup "
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


def _prepared(dump: zkdump.Dump, backup_epoch: int, min_epoch: int) -> tuple[zkdump.Dump, int]:
    """The dump as it is restored: backups paused, epoch raised (see the module docstring)."""
    config = dump.config()
    section = config.get(SECTION)
    if isinstance(section, dict):
        config = {**config, SECTION: {**section, "paused": True}}
        dump = dump.with_data("config", json.dumps(config, sort_keys=True).encode())
    try:
        stored = int(dump.data_of("epoch") or b"0")
    except ValueError:
        stored = 0
    epoch = max(stored, backup_epoch + 1, min_epoch)
    return dump.with_data("epoch", str(epoch).encode()), epoch


def restore_cluster(
    client: ZooKeeper,
    paths: ClusterPaths,
    auth: str | None,
    backup_id: str,
    source: Target,
    private_key: RecipientPrivateKey,
    mapping: dict[str, Path],
    progress: ProgressCallback,
    *,
    signers: frozenset[str],
    min_epoch: int = 0,
) -> RestoreReport:
    """Restore backup `backup_id` from `source` into the empty cluster at `paths`."""
    check_empty(client, paths)
    signed = load_manifest(source, backup_id, signers)
    manifest = signed.manifest
    nodes = [p.name for p in manifest.parts if p.name != ZOOKEEPER_PART]
    destinations = _destinations(nodes, manifest.missing_nodes, mapping, paths.cluster)
    dump = zkdump.parse(
        restore_part_bytes(
            backup_id, ZOOKEEPER_PART, source=source, private_key=private_key, trusted=signers
        )
    )
    recorded = decode_public(BackupSettings.from_config(dump.config()).signing_public_key)
    if recorded is None or signer_id(recorded) != signed.signature.signer:
        raise BackupRunError(
            f"backup {backup_id}: its configuration does not name the key that signed its "
            "manifest as the cluster's signing key; refusing it"
        )
    dump, epoch = _prepared(dump, manifest.epoch, min_epoch)
    writes = zkdump.restore_ops(client, paths, dump, auth)  # needs --zk-auth for secrets
    empty_before = {d: d.stat().st_mode & 0o7777 for d in destinations.values() if d.exists()}
    made_parents = [p for p in {_first_missing(d.parent) for d in destinations.values()} if p]
    restored: list[Path] = []
    try:
        restore_parts(backup_id, destinations, source, private_key, signers, progress, restored)
        for node, directory in destinations.items():
            _relabel(directory, paths.cluster, node)
        check_empty(client, paths)  # nobody started using the cluster meanwhile
        client.ensure_path(ROOT)
        zkdump.apply_restore(client, writes)
    except BaseException:
        for directory in restored:
            with contextlib.suppress(OSError):
                shutil.rmtree(directory)
                if directory in empty_before:  # it was there, empty: leave it so
                    directory.mkdir()
                    os.chmod(directory, empty_before[directory])
        for parent in sorted(made_parents, reverse=True):  # directories made on the way, if empty
            with contextlib.suppress(OSError):
                _remove_empty_tree(parent)
        raise
    return RestoreReport(
        backup_id=backup_id,
        cluster=paths.cluster,
        directories=tuple((n, str(d)) for n, d in destinations.items()),
        znodes=len(dump.znodes),
        signer=signed.signature.signer,
        missing_nodes=manifest.missing_nodes,
        epoch=epoch,
        enrolled=bool(dump.config().get("mission_control")),
    )


def restore_parts(
    backup_id: str,
    destinations: dict[str, Path],
    source: Target,
    private_key: RecipientPrivateKey,
    signers: Trusted,
    progress: ProgressCallback,
    restored: list[Path],
    *,
    check: PartCheck | None = None,
) -> None:
    """Every node's directory part, PARALLEL_PARTS at a time; each finished one is appended to
    `restored`. The first failure stops the others at their next frame and is raised once all
    have stopped (so the caller can remove everything restored). With `check` (a drill), each
    part is extracted with its files' digests taken (`Inventory`), and `check` runs on the
    part's worker once the part is restored; what it raises is that part's failure. Without
    it, nothing is hashed beyond the part's own digest."""
    failed = threading.Event()

    def reported(event: ProgressEvent) -> None:
        if failed.is_set():
            raise _Stopped("another part failed")
        progress(event)

    def one(node: str, directory: Path) -> None:
        inventory: Inventory | None = None if check is None else {}
        restore_part_directory(
            backup_id,
            node,
            directory,
            source=source,
            private_key=private_key,
            trusted=signers,
            progress=reported,
            inventory=inventory,
        )
        restored.append(directory)
        if check is not None and inventory is not None:
            check(node, directory, inventory)

    workers = max(1, min(PARALLEL_PARTS, len(destinations)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="restore") as pool:
        futures = [pool.submit(one, n, d) for n, d in destinations.items()]
        for future in as_completed(futures):
            if future.exception() is not None:
                failed.set()
    errors = [e for e in (f.exception() for f in futures) if e is not None]
    if errors:
        raise next((e for e in errors if not isinstance(e, _Stopped)), errors[0])


class _Stopped(BackupRunError):
    """A part given up because another one failed."""


def _first_missing(path: Path) -> Path | None:
    """The outermost ancestor-or-self of `path` that does not exist yet (None if it does)."""
    missing = None
    while not path.exists():
        missing, path = path, path.parent
    return missing


def _remove_empty_tree(top: Path) -> None:
    """Remove `top` and the directories under it, only if none holds anything else."""
    for directory in sorted((p for p in top.rglob("*") if p.is_dir()), reverse=True):
        directory.rmdir()
    top.rmdir()


def _relabel(directory: Path, cluster: str, node: str) -> None:
    """Point the data directory's identity at the new cluster (write temp + rename)."""
    identity = directory / IDENTITY
    tmp = identity.with_suffix(".restore-tmp")
    tmp.write_text(json.dumps({"cluster": cluster, "node": node}))
    os.replace(tmp, identity)
