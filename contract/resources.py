"""What a node measures of itself: the one shape of a node's resource figures.

`NodeResources` travels from the probe on the node (psutil), through its live znode and the
leader's health report (`contract.messages.NodeHealth` carries the same fields), to Mission
Control's database and console. It is a plain frozen dataclass, not a pydantic model, so a node
can publish its figures at start without loading pydantic (start-up time): the checks are the
ones the wire applies to `NodeHealth`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

#: Bytes of one node stay below 2^53 (8 PiB): a report's sum over at most `MAX_NODES` nodes stays
#: below 2^63, so it fits the BIGINT columns of the health history on both back ends.
MAX_NODE_BYTES = 2**53
MAX_CPU_CORES = 4096


def _whole(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < high:
        raise ValueError(f"{name} must be a whole number from {low} to {high - 1}")
    return value


@dataclass(frozen=True)
class NodeResources:
    """CPU, memory and the disk of the data directory, in cores, percent and bytes."""

    cpu_cores: int
    cpu_percent: float
    memory_total_bytes: int
    memory_used_bytes: int
    disk_total_bytes: int
    disk_used_bytes: int

    def __post_init__(self) -> None:
        _whole("cpu_cores", self.cpu_cores, 1, MAX_CPU_CORES + 1)
        percent = self.cpu_percent
        if (
            isinstance(percent, bool)
            or not isinstance(percent, int | float)
            or not math.isfinite(percent)
            or not 0 <= percent <= 100
        ):
            raise ValueError("cpu_percent must be a number from 0 to 100")
        for name in ("memory_total_bytes", "memory_used_bytes", "disk_total_bytes"):
            _whole(name, getattr(self, name), 0, MAX_NODE_BYTES)
        _whole("disk_used_bytes", self.disk_used_bytes, 0, MAX_NODE_BYTES)
        if self.memory_used_bytes > self.memory_total_bytes:
            raise ValueError("memory_used_bytes exceeds memory_total_bytes")
        if self.disk_used_bytes > self.disk_total_bytes:
            raise ValueError("disk_used_bytes exceeds disk_total_bytes")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NodeResources:
        """Read the JSON form; ValueError names what is missing or out of range."""
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        return cls(**{n: data[n] for n in names})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def replaced(self, **changes: Any) -> NodeResources:
        """A copy with some figures changed (checked again)."""
        return NodeResources(**{**self.to_json(), **changes})


#: The figures reported for a node that is down (nothing measured).
UNMEASURED = NodeResources(
    cpu_cores=1,
    cpu_percent=0.0,
    memory_total_bytes=0,
    memory_used_bytes=0,
    disk_total_bytes=0,
    disk_used_bytes=0,
)
