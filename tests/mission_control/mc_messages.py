"""Builders of valid cluster messages for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from contract.messages import (
    ClusterEvent,
    ConsumptionReport,
    HealthReport,
    Heartbeat,
    LicenseCheck,
)

GIB = 1024**3


def node_json(
    name: str, *, cpu: float = 30, cores: int = 8, state: str = "healthy"
) -> dict[str, Any]:
    return {
        "node": name,
        "version": "1.4.2",
        "state": state,
        "cpu_cores": cores,
        "cpu_percent": cpu,
        "memory_total_bytes": 32 * GIB,
        "memory_used_bytes": 8 * GIB,
        "disk_total_bytes": 500 * GIB,
        "disk_used_bytes": 100 * GIB,
    }


def health_json(epoch: int = 1, *, nodes: int = 3, cpu: float = 30, **extra: Any) -> dict[str, Any]:
    return {
        "message_id": str(uuid.uuid4()),
        "epoch": epoch,
        "nodes": [node_json(f"node-{i}", cpu=cpu) for i in range(nodes)],
        **extra,
    }


def consumption_json(**fields: Any) -> dict[str, Any]:
    """A valid consumption report as JSON, with `fields` replaced."""
    return {
        "message_id": str(uuid.uuid4()),
        "epoch": 1,
        "environment": "prod",
        "period_start": "2030-06-01T05:00:00Z",
        "host_units": 3,
        "host_unit_hours": 3.5,
        **fields,
    }


def health(epoch: int = 1, **kwargs: Any) -> HealthReport:
    return HealthReport.model_validate(health_json(epoch, **kwargs))


def license_check(epoch: int = 1, in_use: float = 5) -> LicenseCheck:
    return LicenseCheck(message_id=uuid.uuid4(), epoch=epoch, host_units_in_use=in_use)


def consumption(
    epoch: int = 1, environment: str = "prod", hour: int = 5, units: float = 4
) -> ConsumptionReport:
    return ConsumptionReport(
        message_id=uuid.uuid4(),
        epoch=epoch,
        environment=environment,
        period_start=datetime(2030, 6, 1, hour, tzinfo=UTC),
        host_units=units,
        host_unit_hours=units,
    )


def heartbeat(epoch: int = 1) -> Heartbeat:
    return Heartbeat(message_id=uuid.uuid4(), epoch=epoch)


def event(epoch: int = 1, kind: str = "backup_failed", detail: str = "disk full") -> ClusterEvent:
    return ClusterEvent.model_validate(
        {"message_id": str(uuid.uuid4()), "epoch": epoch, "kind": kind, "detail": detail}
    )
