"""The soak's history: one JSON line per event, appended by every process of the harness.

An event is what Jepsen records: when (`t`, wall-clock seconds), who (`process`: `nemesis`,
`workload`, `observer`, `mc-proxy`, `final`), what (`op`), how it went (`outcome`: `invoke`
when an operation starts, `ok` or `fail` when it ends, `info` for an observation) and the
operation's `value`. The checkers read nothing else, so a failing run can be judged again from
its history file alone (`soak.py --check FILE`).

Guarantees: lines are written whole (one `write` under a lock, flushed), in the order the
harness recorded them; `load` numbers them from 1 as they stand in the file, which is how a
violation names its evidence.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Event:
    t: float
    process: str
    op: str
    outcome: str
    value: Mapping[str, Any] = field(default_factory=dict)
    line: int = 0  # 1-based line in the history file (0 when not loaded from one)

    def to_json(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 6),
            "process": self.process,
            "op": self.op,
            "outcome": self.outcome,
            "value": dict(self.value),
        }

    def __str__(self) -> str:
        return f"{self.line}: {json.dumps(self.to_json(), sort_keys=True)}"


class History:
    """An append-only JSON-lines file shared by the harness's threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file = path.open("a", encoding="utf-8")

    def record(
        self, process: str, op: str, outcome: str, value: Mapping[str, Any] | None = None
    ) -> None:
        event = Event(time.time(), process, op, outcome, dict(value or {}))
        line = json.dumps(event.to_json(), sort_keys=True, default=str)
        with self._lock:
            if not self._file.closed:
                self._file.write(line + "\n")
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def load(path: Path) -> list[Event]:
    """Every event of a history file, numbered by line."""
    with path.open(encoding="utf-8") as handle:
        return parse(handle)


def parse(lines: Iterable[str]) -> list[Event]:
    events = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        raw = json.loads(text)
        events.append(
            Event(
                float(raw["t"]),
                str(raw["process"]),
                str(raw["op"]),
                str(raw["outcome"]),
                dict(raw.get("value") or {}),
                number,
            )
        )
    return events
