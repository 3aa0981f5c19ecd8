"""A cluster's resource use: one aggregate per health report, and time buckets for history.

Pure. `aggregate` counts only the nodes that are up: CPU % weighted by cores, memory and disk
summed. `bucket_width` is the one rule for averaging samples into at most N time buckets, used
by the database query of the history and by the plot code alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from contract.messages import NodeHealth


def share(used: float, total: float) -> float | None:
    """used / total as a fraction, or None when there is no total."""
    return used / total if total else None


class MemoryDiskShares:
    """Memory and disk use as fractions, for any record that carries the byte counts."""

    memory_used_bytes: int
    memory_total_bytes: int
    disk_used_bytes: int
    disk_total_bytes: int

    @property
    def memory_fraction(self) -> float | None:
        return share(self.memory_used_bytes, self.memory_total_bytes)

    @property
    def disk_fraction(self) -> float | None:
        return share(self.disk_used_bytes, self.disk_total_bytes)


@dataclass(frozen=True)
class HealthSample(MemoryDiskShares):
    """The cluster-wide figures of one health report."""

    at: datetime
    nodes_up: int
    cpu_percent: float
    memory_used_bytes: int
    memory_total_bytes: int
    disk_used_bytes: int
    disk_total_bytes: int


def aggregate(at: datetime, nodes: Sequence[NodeHealth]) -> HealthSample:
    """The cluster-wide sample of one health report (nodes that are down do not count)."""
    up = [n for n in nodes if n.state != "down"]
    cores = sum(n.cpu_cores for n in up)
    busy = sum(n.cpu_cores * n.cpu_percent for n in up)
    return HealthSample(
        at=at,
        nodes_up=len(up),
        cpu_percent=busy / cores if cores else 0.0,
        memory_used_bytes=sum(n.memory_used_bytes for n in up),
        memory_total_bytes=sum(n.memory_total_bytes for n in up),
        disk_used_bytes=sum(n.disk_used_bytes for n in up),
        disk_total_bytes=sum(n.disk_total_bytes for n in up),
    )


def bucket_width(start: datetime, end: datetime, buckets: int) -> int:
    """Whole seconds per bucket so that at most `buckets` buckets cover [start, end], both ends
    included (span // width < buckets)."""
    span = max(int((end - start).total_seconds()), 1)
    return span // max(buckets, 1) + 1
