"""Backups: encrypted on the cluster, written to file or S3 targets inside its geography.

Entry points for the orchestration are in `backup.engine` (write, commit, verify, restore,
list, retention); the format is specified in docs/backup-format.md.
"""
