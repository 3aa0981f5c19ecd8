"""Fixtures of the backup orchestration tests (defined in backupkit, shared with the tests)."""

from backupkit import backup_cluster, bucket, regions

__all__ = ["backup_cluster", "bucket", "regions"]
