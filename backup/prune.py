"""Applying retention to targets, and removing orphaned objects of failed runs.

Guarantees:
- Each target is pruned from its own catalogue, with the pure rules of backup.retention.
- A backup is removed manifest first, then its data: an interruption leaves at worst data
  without a manifest, which the next run removes as an orphan. A reader never sees a manifest
  whose data is gone.
- Orphans (ids with objects but no manifest) are deleted only as `OrphanRule` allows: never a
  run known to be in progress, nor an unknown one that may still be writing. Backups whose
  manifest is unreadable (or signed by a key not trusted) are left alone.
- With `cluster`, only backups whose manifest names that cluster are subject to the policy: a
  cluster never prunes another's backups that share its target (a restored clone, for one).
- With `dry_run` nothing is deleted; the report says what would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from backup.catalogue import Catalogue, list_backups
from backup.destinations import TargetSet
from backup.layout import backup_id_of, manifest_object
from backup.manifest import Trusted
from backup.retention import (
    BackupStamp,
    OrphanRule,
    RetentionDecision,
    RetentionPolicy,
    apply_policy,
    orphaned_ids,
)
from backup.targets import Target


@dataclass(frozen=True)
class PruneReport:
    target: str
    decision: RetentionDecision
    removed: tuple[str, ...]
    orphans_removed: tuple[str, ...]
    objects_deleted: int
    dry_run: bool

    def describe(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (
            f"{self.target}: {verb} {len(self.removed)} backup(s) {list(self.removed)} and "
            f"{len(self.orphans_removed)} orphan(s) {list(self.orphans_removed)}; "
            f"{self.decision.describe()}"
        )


def _delete_backup_objects(target: Target, catalogue: Catalogue, backup_id: str) -> int:
    manifest = manifest_object(backup_id)
    data = [o for o in catalogue.objects if backup_id_of(o) == backup_id and o != manifest]
    deleted = 0
    if manifest in catalogue.objects:
        target.delete(manifest)
        deleted += 1
    for name in data:
        target.delete(name)
        deleted += 1
    return deleted


def prune_target(
    target: Target,
    policy: RetentionPolicy,
    *,
    trusted: Trusted | None = None,
    dry_run: bool = False,
    orphans: OrphanRule | None = None,
    cluster: str | None = None,
) -> PruneReport:
    catalogue = list_backups(target, trusted)
    stamps = [
        BackupStamp(b.manifest.id, b.manifest.created)
        for b in catalogue.backups
        if cluster is None or b.manifest.cluster == cluster
    ]
    decision = apply_policy(stamps, policy)
    rule = orphans if orphans is not None else OrphanRule(now=datetime.now(UTC))
    orphan_ids = orphaned_ids(catalogue.present_ids, catalogue.committed_ids, rule)
    deleted = 0
    if not dry_run:
        for backup_id in (*decision.remove, *orphan_ids):
            deleted += _delete_backup_objects(target, catalogue, backup_id)
    return PruneReport(
        target=target.location.url,
        decision=decision,
        removed=decision.remove,
        orphans_removed=tuple(orphan_ids),
        objects_deleted=deleted,
        dry_run=dry_run,
    )


def apply_retention(
    targets: TargetSet,
    policy: RetentionPolicy,
    *,
    trusted: Trusted | None = None,
    dry_run: bool = False,
    orphans: OrphanRule | None = None,
    cluster: str | None = None,
) -> list[PruneReport]:
    """Prune the primary and every mirror; one report per target."""
    return [
        prune_target(t, policy, trusted=trusted, dry_run=dry_run, orphans=orphans, cluster=cluster)
        for t in targets.all
    ]
