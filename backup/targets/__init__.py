"""Storage targets for backup objects: `file://` directories and `s3://` buckets.

`open_target(location)` is the one way to get a `Target` for a parsed URL.
"""

from __future__ import annotations

from backup.targets.base import Target
from backup.targets.file import FileTarget
from backup.targets.location import (
    FileLocation,
    S3Location,
    TargetLocation,
    parse_target_url,
)
from backup.targets.s3 import S3Target


def open_target(location: TargetLocation) -> Target:
    if isinstance(location, FileLocation):
        return FileTarget(location)
    return S3Target(location)


__all__ = [
    "FileLocation",
    "FileTarget",
    "S3Location",
    "S3Target",
    "Target",
    "TargetLocation",
    "open_target",
    "parse_target_url",
]
