"""The backup library's public surface, for the orchestration (`managed backup ...`, scheduler).

A run, as the leader and nodes wire it:
    policy  = ResidencyPolicy("EU")
    targets = open_targets(target_url, mirror_urls, policy)        # both residency checks
    ctx     = BackupContext(new_backup_id(now), recipient_public_key)
    record  = write_directory_part(data_dir, ctx=ctx, part=node, node=node, targets=targets)
    record  = write_part(io.BytesIO(zk_dump), ctx=ctx, part="zookeeper", node=leader, ...)
    signed  = commit_manifest(ctx=ctx, cluster=..., epoch=..., created=now, parts=[...],
                              targets=targets, signing_key=cluster_ed25519_key)
    apply_retention(targets, RetentionPolicy(keep_last=7, keep_daily=14, keep_weekly=8))
PartRecord and SignedManifest are pydantic models: they cross ZooKeeper as JSON
(`model_dump_json()` / `model_validate_json()`).
"""

from __future__ import annotations

from backup.catalogue import Catalogue, list_backups, load_manifest
from backup.destinations import TargetSet, check_configuration, open_targets
from backup.layout import new_backup_id
from backup.manifest import BackupManifest, PartRecord, SignedManifest
from backup.progress import ProgressCallback, ProgressEvent
from backup.prune import PruneReport, apply_retention
from backup.residency import ResidencyPolicy
from backup.restore import restore_part_bytes, restore_part_directory
from backup.retention import OrphanRule, RetentionPolicy
from backup.rotation import RotationReport, rotate_key
from backup.throttle import TokenBucket, parse_rate
from backup.verify import VerifyReport, verify_backup
from backup.writer import BackupContext, commit_manifest, write_directory_part, write_part

__all__ = [
    "BackupContext",
    "BackupManifest",
    "Catalogue",
    "OrphanRule",
    "PartRecord",
    "ProgressCallback",
    "ProgressEvent",
    "PruneReport",
    "ResidencyPolicy",
    "RetentionPolicy",
    "RotationReport",
    "SignedManifest",
    "TargetSet",
    "TokenBucket",
    "VerifyReport",
    "apply_retention",
    "check_configuration",
    "commit_manifest",
    "list_backups",
    "load_manifest",
    "new_backup_id",
    "open_targets",
    "parse_rate",
    "restore_part_bytes",
    "restore_part_directory",
    "rotate_key",
    "verify_backup",
    "write_directory_part",
    "write_part",
]
