"""Progress reporting: what long operations tell a caller that draws a bar.

Callbacks run on the thread doing the work and must be quick; they must not raise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ProgressEvent:
    operation: Literal["write", "verify", "restore"]
    part: str
    done_bytes: int  # plaintext bytes for write/restore, stored bytes for verify
    total_bytes: int | None  # None when unknown in advance (a tar stream)
    target: str | None = None


ProgressCallback = Callable[[ProgressEvent], None]


def ignore_progress(_event: ProgressEvent) -> None:
    return None
