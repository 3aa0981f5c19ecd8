"""The storage-target contract every backend (file, S3) fulfils.

A target stores named objects under its root. Names are '/'-separated, made of
`[A-Za-z0-9._-]` segments, never '..'. Guarantees required of every implementation:
- `put` consumes the chunks once, keeping memory bounded (not proportional to the object), and
  makes the object visible only when complete: after an exception nothing new is visible.
  `size_hint` is the expected size (an estimate, or None): a backend may size its writes by it.
- `get` streams an object in chunks; a missing object is a TargetError.
- `delete` of a missing object is not an error.
- `bucket_location` is the storage's real location as S3 reports it (None for file targets).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Protocol

from backup.errors import TargetError
from backup.streams import Chunk
from backup.targets.location import TargetLocation

OBJECT_NAME = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
READ_CHUNK = 1024 * 1024


def check_object_name(name: str) -> str:
    if not OBJECT_NAME.match(name) or ".." in name.split("/"):
        raise TargetError(f"invalid object name {name!r}")
    return name


class Target(Protocol):
    @property
    def location(self) -> TargetLocation: ...

    def put(self, name: str, chunks: Iterable[Chunk], size_hint: int | None = None) -> int:
        """Store the object; return its size in bytes."""
        ...

    def get(self, name: str) -> Iterator[bytes]: ...

    def size(self, name: str) -> int | None:
        """The object's size, or None if it does not exist."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Names of all objects whose name starts with `prefix`, sorted."""
        ...

    def delete(self, name: str) -> None: ...

    def bucket_location(self) -> str | None: ...
