"""A node's own resource figures (psutil), published in its live znode."""

from __future__ import annotations

import logging
from pathlib import Path

import psutil

from cluster.model import NodeHealth

log = logging.getLogger(__name__)


def probe(data_dir: Path) -> NodeHealth:
    """CPU, memory and the disk holding `data_dir`; never blocks (cpu_percent since last call).

    Raises `OSError` (e.g. the data directory vanished) or `psutil.Error`.
    """
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


class HealthProbe:
    """Probes for the daemon: a failure is logged (once per new message) and reported in
    `error`, never raised, so a vanished disk cannot end the node; the last good figures stand."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.last = NodeHealth()
        self.error: str | None = None

    def __call__(self) -> NodeHealth:
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
