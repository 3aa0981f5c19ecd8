"""Progress bars for long backup work (rich), drawn on stderr only when it is a terminal.

Scripts (no terminal) get no bars, so stdout stays plain text or JSON.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING

from backup.progress import ProgressEvent
from cluster.backups.runs import PartProgress, RunRecord

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


def interactive() -> bool:
    return sys.stderr.isatty()


def _progress() -> Progress:
    # rich is loaded only when there is a terminal to draw on (scripts never pay for it).
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )


class Bars:
    """One bar per key (a part, or a part on a target); a no-op when disabled."""

    def __init__(self, enabled: bool | None = None) -> None:
        on = interactive() if enabled is None else enabled
        self._progress = _progress() if on else None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Bars:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, key: str, done: int, total: int | None) -> None:
        if self._progress is None:
            return
        if key not in self._tasks:
            self._tasks[key] = self._progress.add_task(key, total=total)
        self._progress.update(self._tasks[key], completed=done, total=total)

    def on_event(self, event: ProgressEvent) -> None:
        """A `backup` progress callback (verify, restore)."""
        key = event.part if event.target is None else f"{event.part} @ {event.target[:40]}"
        self.update(key, event.done_bytes, event.total_bytes)

    def on_run(self, run: RunRecord, progress: dict[str, PartProgress]) -> None:
        """A `follow` observer: one bar per node part of the run."""
        for part, p in sorted(progress.items()):
            finished = run.status == "ok" and p.total is not None
            self.update(part, p.total if finished and p.total else p.done, p.total)
