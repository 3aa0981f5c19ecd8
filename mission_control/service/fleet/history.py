"""Cluster history: one aggregate sample per health check, and hourly consumption.

The health ingest writes one sample per accepted health check, in that check's transaction
(`exchange.cluster_messages.health` queues `health_sample_insert` with `health_sample_row` for
one executemany per batch): a resend answered as a duplicate runs no effect, so it leaves no
sample. Two checks at the same instant keep the first sample. The figures are
`rules.resources.aggregate` of the report.
`resource_history` averages samples into time buckets in the database (one row per bucket);
`prune_samples` deletes samples older than the retention; the server runs it periodically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, cast, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import Insert

from contract.messages import NodeHealth
from mission_control.db.engine import insert_or_ignore
from mission_control.db.schema import consumption, health_samples
from mission_control.service.rules.resources import HealthSample, aggregate, bucket_width

# The same statement and parameter names for every sample, so a batch's samples are written with
# one executemany (and compiled statements are reused).
_SAMPLE_INSERTS: dict[str, Insert] = {
    name: insert_or_ignore(name, health_samples, ("cluster_id", "at"))
    for name in ("postgresql", "sqlite")
}


def health_sample_insert(dialect_name: str) -> Insert:
    """INSERT of one `health_sample_row` (a sample already there for that instant is kept)."""
    return _SAMPLE_INSERTS[dialect_name]


def health_sample_row(cluster_id: str, at: datetime, nodes: Sequence[NodeHealth]) -> dict[str, Any]:
    """The parameters of `health_sample_insert` for the aggregate of `nodes` at `at`."""
    sample = aggregate(at, nodes)
    return {
        "cluster_id": cluster_id,
        "at": sample.at,
        "nodes_up": sample.nodes_up,
        "cpu_percent": sample.cpu_percent,
        "memory_used_bytes": sample.memory_used_bytes,
        "memory_total_bytes": sample.memory_total_bytes,
        "disk_used_bytes": sample.disk_used_bytes,
        "disk_total_bytes": sample.disk_total_bytes,
    }


async def latest_sample(conn: AsyncConnection, cluster_id: str) -> HealthSample | None:
    """The newest sample of one cluster."""
    row = (
        await conn.execute(
            select(health_samples)
            .where(health_samples.c.cluster_id == cluster_id)
            .order_by(health_samples.c.at.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return HealthSample(
        at=row.at,
        nodes_up=row.nodes_up,
        cpu_percent=row.cpu_percent,
        memory_used_bytes=row.memory_used_bytes,
        memory_total_bytes=row.memory_total_bytes,
        disk_used_bytes=row.disk_used_bytes,
        disk_total_bytes=row.disk_total_bytes,
    )


@dataclass(frozen=True)
class ResourcePoint:
    """Averages over one time bucket, placed at the bucket's mean sample time."""

    at: datetime
    cpu_fraction: float
    memory_fraction: float | None
    disk_fraction: float | None


def epoch_seconds(column: ColumnElement[Any], dialect_name: str) -> ColumnElement[int]:
    """Whole seconds since 1970 of a UTC timestamp column, computed by the database."""
    if dialect_name == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), BigInteger)
    return cast(func.strftime("%s", column), BigInteger)


async def resource_history(
    conn: AsyncConnection, cluster_id: str, start: datetime, end: datetime, buckets: int
) -> list[ResourcePoint]:
    """CPU, memory and disk use from `start` on, averaged by the database into at most
    `buckets` buckets of `bucket_width(start, end, buckets)` seconds (the same buckets as
    `plots.downsample`), so a week of 2-minute samples reaches Python as a few hundred rows."""
    width = bucket_width(start, end, buckets)
    epoch = epoch_seconds(health_samples.c.at, conn.dialect.name)
    bucket = ((epoch - int(start.timestamp())) // width).label("bucket")

    def fraction(used: ColumnElement[int], total: ColumnElement[int]) -> ColumnElement[float]:
        return func.avg(used * 1.0 / func.nullif(total, 0))

    rows = await conn.execute(
        select(
            bucket,
            func.avg(epoch).label("at"),
            func.avg(health_samples.c.cpu_percent).label("cpu"),
            fraction(health_samples.c.memory_used_bytes, health_samples.c.memory_total_bytes),
            fraction(health_samples.c.disk_used_bytes, health_samples.c.disk_total_bytes),
        )
        .where(health_samples.c.cluster_id == cluster_id, health_samples.c.at >= start)
        .group_by(bucket)
        .order_by(bucket)
    )
    return [
        ResourcePoint(
            at=datetime.fromtimestamp(float(at), UTC),
            cpu_fraction=float(cpu) / 100,
            memory_fraction=None if memory is None else float(memory),
            disk_fraction=None if disk is None else float(disk),
        )
        for _, at, cpu, memory, disk in rows
    ]


@dataclass(frozen=True)
class HourlyConsumption:
    environment: str
    period_start: datetime
    host_unit_hours: float


async def load_consumption(
    conn: AsyncConnection, cluster_id: str, since: datetime
) -> list[HourlyConsumption]:
    """Host-unit hours per (environment, hour) from `since` on, oldest first."""
    rows = await conn.execute(
        select(consumption.c.environment, consumption.c.period_start, consumption.c.host_unit_hours)
        .where(consumption.c.cluster_id == cluster_id, consumption.c.period_start >= since)
        .order_by(consumption.c.period_start, consumption.c.environment)
    )
    return [HourlyConsumption(r.environment, r.period_start, r.host_unit_hours) for r in rows]


async def prune_samples(engine: AsyncEngine, before: datetime) -> int:
    """Delete samples older than `before`; returns how many."""
    async with engine.begin() as conn:
        result = await conn.execute(delete(health_samples).where(health_samples.c.at < before))
    return int(result.rowcount)
