"""Storage targets for backup objects: `file://` directories and `s3://` buckets.

`open_target(location)` is the one way to get a `Target` for a parsed URL. The S3 backend
(botocore, about 0.2 s to import) is loaded only when an `s3://` target is opened or
`S3Target` is asked for, so file-only commands and nodes do not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backup.targets.base import Target
from backup.targets.file import FileTarget
from backup.targets.location import (
    FileLocation,
    S3Location,
    TargetLocation,
    parse_target_url,
)

if TYPE_CHECKING:
    from backup.targets.s3 import S3Target


def open_target(location: TargetLocation) -> Target:
    if isinstance(location, FileLocation):
        return FileTarget(location)
    from backup.targets.s3 import S3Target

    return S3Target(location)


def __getattr__(name: str) -> Any:
    if name == "S3Target":
        from backup.targets.s3 import S3Target

        return S3Target
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
