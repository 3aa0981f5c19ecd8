"""A node's own resource figures (psutil), published in its live znode."""

from __future__ import annotations

import logging
from pathlib import Path

import psutil

from contract.resources import NodeResources

log = logging.getLogger(__name__)


def probe(data_dir: Path) -> NodeResources:
    """CPU, memory and the disk holding `data_dir`; never blocks (cpu_percent since last call).
    Figures are clamped into the ranges `NodeResources` accepts.

    Raises `OSError` (e.g. the data directory vanished) or `psutil.Error`.
    """
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(data_dir))
    return NodeResources(
        cpu_cores=min(max(psutil.cpu_count() or 1, 1), 4096),
        cpu_percent=min(max(psutil.cpu_percent(interval=None), 0.0), 100.0),
        memory_total_bytes=memory.total,
        memory_used_bytes=min(max(memory.total - memory.available, 0), memory.total),
        disk_total_bytes=disk.total,
        disk_used_bytes=min(disk.used, disk.total),
    )


class HealthProbe:
    """Probes for the daemon: a failure is logged (once per new message) and reported in
    `error`, never raised, so a vanished disk cannot end the node; the last good figures stand."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.last: NodeResources | None = None
        self.error: str | None = None

    def __call__(self) -> NodeResources | None:
        """The figures now, else the last good ones (None until a probe has worked)."""
        try:
            figures = probe(self.data_dir)
        except (OSError, psutil.Error) as e:
            message = f"health probe failed: {e}"
            if message != self.error:
                log.warning("%s", message)
            self.error = message
            return self.last
        if self.error is not None:
            log.info("health probe works again")
        self.error = None
        self.last = figures
        return figures
