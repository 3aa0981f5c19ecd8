"""At most one record per key and time window, with a count of those left out.

Bounds the audit writes an unauthenticated caller can cause: every refused unknown staff token
would otherwise append to the hash-chained audit log under its global lock. The first refusal
from an address is recorded at once; more within the window are counted, and the next record
for that address carries the count. Per process (each worker of `serve --workers` keeps its own);
the oldest addresses are forgotten beyond `max_keys`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass
class WindowSampler:
    window: timedelta = timedelta(minutes=1)
    max_keys: int = 10_000
    _seen: dict[str, tuple[datetime, int]] = field(default_factory=dict, repr=False)

    def admit(self, key: str, now: datetime) -> int | None:
        """None when this event is left out (and counted); otherwise how many events for `key`
        were left out since the last one admitted."""
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.window:
            self._seen[key] = (seen[0], seen[1] + 1)
            return None
        self._seen.pop(key, None)
        if len(self._seen) >= self.max_keys:
            self._seen.pop(next(iter(self._seen)))  # the longest-admitted key
        self._seen[key] = (now, 0)
        return seen[1] if seen is not None else 0
