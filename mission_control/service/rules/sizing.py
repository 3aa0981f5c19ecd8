"""Sizing advice and health status from one health report: pure functions, no I/O.

The formula (documented in docs/mission-control-api.md):

- Only nodes whose state is not ``down`` count as capacity.
- used cores  = sum(cores_i * cpu_percent_i / 100);  used memory = sum(memory_used_i)
- min_cpu_cores    = max(min_nodes * min_cores_per_node,        ceil(used cores / target_cpu))
- min_memory_bytes = max(min_nodes * min_memory_per_node_bytes, ceil(used memory / target_memory))
- min_nodes = max(policy min_nodes, ceil(min_cpu_cores / average cores per node),
                  ceil(min_memory_bytes / average memory per node))
  i.e. how many nodes like the current ones carry the load with the target headroom.

A cluster is *undersized* when it has fewer nodes, cores or memory than advised, when its
cluster-wide CPU or memory utilisation is over the alert threshold, or when any node's disk is
over the disk threshold. It is *degraded* when any node is not ``healthy``; degraded wins over
undersized in the status, and the reasons list both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from contract.messages import HealthStatus, NodeHealth, SizingAdvice
from mission_control.service.rules.policy import AlertPolicy, SizingPolicy

_EPS = 1e-9


@dataclass(frozen=True)
class HealthAssessment:
    status: HealthStatus
    advice: SizingAdvice
    undersized: tuple[str, ...]
    degraded: tuple[str, ...]

    @property
    def reasons(self) -> list[str]:
        return [*self.degraded, *self.undersized]


def _ceil(value: float) -> int:
    return math.ceil(value - _EPS)


def advise(nodes: Sequence[NodeHealth], policy: SizingPolicy) -> SizingAdvice:
    """The minimum nodes, cores and memory the cluster should have, given its current load."""
    up = [n for n in nodes if n.state != "down"]
    used_cores = sum(n.cpu_cores * n.cpu_percent / 100 for n in up)
    used_memory = sum(n.memory_used_bytes for n in up)
    min_cores = max(
        policy.min_nodes * policy.min_cores_per_node,
        _ceil(used_cores / policy.target_cpu_utilisation),
    )
    min_memory = max(
        policy.min_nodes * policy.min_memory_per_node_bytes,
        _ceil(used_memory / policy.target_memory_utilisation),
    )
    if up:
        cores_per_node = sum(n.cpu_cores for n in up) / len(up)
        memory_per_node = max(1.0, sum(n.memory_total_bytes for n in up) / len(up))
    else:
        cores_per_node = policy.min_cores_per_node
        memory_per_node = policy.min_memory_per_node_bytes
    min_nodes = max(
        policy.min_nodes,
        _ceil(min_cores / cores_per_node),
        _ceil(min_memory / memory_per_node),
    )
    return SizingAdvice(min_nodes=min_nodes, min_cpu_cores=min_cores, min_memory_bytes=min_memory)


def _gib(size: int) -> str:
    return f"{size / 1024**3:.1f}"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.0f}%"


def assess(
    nodes: Sequence[NodeHealth], sizing: SizingPolicy, alerts: AlertPolicy
) -> HealthAssessment:
    """Status, reasons and advice for one health report."""
    advice = advise(nodes, sizing)
    up = [n for n in nodes if n.state != "down"]
    cores = sum(n.cpu_cores for n in up)
    memory = sum(n.memory_total_bytes for n in up)
    undersized: list[str] = []
    if len(up) < advice.min_nodes:
        undersized.append(f"{len(up)} nodes up, {advice.min_nodes} advised")
    if cores < advice.min_cpu_cores:
        undersized.append(f"{cores} CPU cores, {advice.min_cpu_cores} advised")
    if memory < advice.min_memory_bytes:
        undersized.append(
            f"{_gib(memory)} GiB of memory, {_gib(advice.min_memory_bytes)} GiB advised"
        )
    if cores:
        cpu = sum(n.cpu_cores * n.cpu_percent / 100 for n in up) / cores
        if cpu > alerts.cpu_threshold:
            undersized.append(f"CPU at {_percent(cpu)}, over {_percent(alerts.cpu_threshold)}")
    if memory:
        mem = sum(n.memory_used_bytes for n in up) / memory
        if mem > alerts.memory_threshold:
            undersized.append(
                f"memory at {_percent(mem)}, over {_percent(alerts.memory_threshold)}"
            )
    for n in up:
        if n.disk_total_bytes and n.disk_used_bytes / n.disk_total_bytes > alerts.disk_threshold:
            used = n.disk_used_bytes / n.disk_total_bytes
            undersized.append(
                f"disk of {n.node} at {_percent(used)}, over {_percent(alerts.disk_threshold)}"
            )
    degraded = [f"node {n.node} is {n.state}" for n in nodes if n.state != "healthy"]
    if degraded:
        status = HealthStatus.DEGRADED
    elif undersized:
        status = HealthStatus.UNDERSIZED
    else:
        status = HealthStatus.HEALTHY
    return HealthAssessment(
        status=status, advice=advice, undersized=tuple(undersized), degraded=tuple(degraded)
    )
