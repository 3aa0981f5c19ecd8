"""Names of things: backup ids, part names, and object names inside a target (pure).

Object layout under a target's root (file directory or S3 prefix):
    data/<backup-id>/<part>.part     one part's ciphertext
    manifests/<backup-id>.json       the signed manifest; its presence is the commit
Backup ids sort in time order: `YYYYMMDDTHHMMSSZ-<8 hex>`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime

from backup.errors import ConfigError

BACKUP_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
PART_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
DATA_DIR = "data/"
MANIFEST_DIR = "manifests/"
PART_SUFFIX = ".part"
MANIFEST_SUFFIX = ".json"


def new_backup_id(now: datetime, rng: Callable[[int], bytes] = os.urandom) -> str:
    """A fresh, time-sortable backup id."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{rng(4).hex()}"


def check_backup_id(backup_id: str) -> str:
    if not BACKUP_ID.match(backup_id):
        raise ConfigError(f"{backup_id!r} is not a backup id (like 20250101T020000Z-0a1b2c3d)")
    return backup_id


def backup_time(backup_id: str) -> datetime:
    """When the backup with this id started (the time in the id, whole seconds, UTC)."""
    stamp = check_backup_id(backup_id).split("-", 1)[0]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def check_part_name(part: str) -> str:
    if not PART_NAME.match(part):
        raise ConfigError(
            f"{part!r} is not a part name: lowercase letters, digits, '.', '_', '-' (max 63)"
        )
    return part


def part_object(backup_id: str, part: str) -> str:
    return f"{DATA_DIR}{check_backup_id(backup_id)}/{check_part_name(part)}{PART_SUFFIX}"


def manifest_object(backup_id: str) -> str:
    return f"{MANIFEST_DIR}{check_backup_id(backup_id)}{MANIFEST_SUFFIX}"


def backup_id_of(object_name: str) -> str | None:
    """The backup id an object belongs to (data or manifest), or None for foreign objects."""
    if object_name.startswith(DATA_DIR):
        candidate = object_name[len(DATA_DIR) :].split("/", 1)[0]
    elif object_name.startswith(MANIFEST_DIR) and object_name.endswith(MANIFEST_SUFFIX):
        candidate = object_name[len(MANIFEST_DIR) : -len(MANIFEST_SUFFIX)]
    else:
        return None
    return candidate if BACKUP_ID.match(candidate) else None


def is_manifest(object_name: str) -> bool:
    return object_name.startswith(MANIFEST_DIR) and backup_id_of(object_name) is not None
