"""A node's own resource figures (psutil), published in its live znode."""

from __future__ import annotations

from pathlib import Path

import psutil

from cluster.model import NodeHealth


def probe(data_dir: Path) -> NodeHealth:
    """CPU, memory and the disk holding `data_dir`; never blocks (cpu_percent since last call)."""
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(data_dir))
    return NodeHealth(
        cpu_count=psutil.cpu_count() or 1,
        cpu_percent=psutil.cpu_percent(interval=None),
        memory_total=memory.total,
        memory_used=memory.total - memory.available,
        disk_total=disk.total,
        disk_used=disk.used,
    )
