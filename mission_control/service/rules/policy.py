"""Thresholds the rules use, as validated, immutable settings (see docs/mission-control-api.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

GIB = 1024**3


class SizingPolicy(BaseModel):
    """What a cluster should have: a floor, plus enough capacity to run below a target load."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_nodes: int = Field(default=3, ge=1, le=1000)
    min_cores_per_node: int = Field(default=4, ge=1, le=4096)
    min_memory_per_node_bytes: int = Field(default=16 * GIB, ge=1, lt=2**53)
    target_cpu_utilisation: float = Field(default=0.7, gt=0, le=1)
    target_memory_utilisation: float = Field(default=0.7, gt=0, le=1)


class AlertPolicy(BaseModel):
    """When alerts are raised."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu_threshold: float = Field(default=0.85, gt=0, le=1)
    memory_threshold: float = Field(default=0.85, gt=0, le=1)
    disk_threshold: float = Field(default=0.85, gt=0, le=1)
    silent_after_intervals: int = Field(default=3, ge=1, le=1000)
    license_expiring_days: int = Field(default=30, ge=0, le=3650)
