"""Seeded Mission Control data for console tests, screenshots and the benchmark.

- `seed_fleet`: many clusters in bulk (direct inserts, fast): a mix of statuses, geographies,
  licenses, open alerts and last backup outcomes, each with a stored last health report (nodes
  in two datacenters, the first one leading).
- `seed_history`: a cluster's health samples (every 2 minutes) and hourly consumption per
  environment over some days, with a daily rhythm, in bulk.
- `seed_showcase`: one cluster built through the real services (create, enroll, health checks,
  license, consumption, backup events), so what the console shows is what ingest stored.
All randomness comes from the `random.Random` passed in.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from contract.messages import (
    ClusterEvent,
    ConsumptionReport,
    HealthReport,
    Heartbeat,
    LicenseCheck,
)
from mission_control.db.schema import (
    alerts,
    backup_outcomes,
    clusters,
    consumption,
    health_samples,
    licenses,
)
from mission_control.service.context import ServiceContext
from mission_control.service.exchange import cluster_messages
from mission_control.service.fleet import admin, enrollment

GIB = 1024**3
COMPANIES = (
    "acme", "globex", "initech", "umbrella", "stark", "wayne", "tyrell", "cyberdyne", "soylent",
    "hooli", "vandelay", "wonka", "massive", "oscorp", "aperture", "blackmesa", "gringotts",
    "monarch", "pied-piper", "nakatomi",
)  # fmt: skip
ENVS = ("prod", "staging", "dr", "analytics", "edge")
GEOS = ("EU", "EU", "US", "US", "US", "AU")


def node_json(
    name: str,
    *,
    rng: random.Random,
    cores: int = 8,
    memory_gib: int = 32,
    disk_gib: int = 500,
    cpu: float | None = None,
    memory: float | None = None,
    disk: float | None = None,
    state: str = "healthy",
    datacenter: str = "dc1",
    leader: bool = False,
) -> dict[str, Any]:
    return {
        "node": name,
        "datacenter": datacenter,
        "leader": leader,
        "version": rng.choice(("1.42.3", "1.42.3", "1.42.3", "1.41.7")),
        "state": state,
        "cpu_cores": cores,
        "cpu_percent": round(cpu if cpu is not None else rng.uniform(15, 60), 1),
        "memory_total_bytes": memory_gib * GIB,
        "memory_used_bytes": int(memory_gib * GIB * (memory or rng.uniform(0.35, 0.7))),
        "disk_total_bytes": disk_gib * GIB,
        "disk_used_bytes": int(disk_gib * GIB * (disk or rng.uniform(0.2, 0.65))),
    }


def _nodes_for(status: str, rng: random.Random) -> list[dict[str, Any]]:
    count = rng.choice((3, 3, 3, 4, 5, 6, 7))
    nodes = [
        node_json(f"node-{i + 1}", rng=rng, datacenter=f"dc{i % 2 + 1}", leader=i == 0)
        for i in range(count)
    ]
    if status == "undersized":
        for n in nodes:
            n["cpu_percent"] = round(rng.uniform(86, 97), 1)
    if status == "degraded":
        nodes[-1]["state"] = rng.choice(("degraded", "down"))
    return nodes


async def seed_fleet(
    engine: AsyncEngine, *, count: int, now: datetime, rng: random.Random, prefix: str = ""
) -> list[str]:
    """Insert `count` clusters named ``<prefix><company>-<env>-<n>``; returns their ids."""
    rows, lics, open_alerts, backups = [], [], [], []
    statuses = ["healthy"] * 80 + ["undersized"] * 8 + ["degraded"] * 4 + ["silent"] * 3
    statuses += ["no-data"] * 2 + ["pending"] * 3
    ids = []
    for i in range(count):
        cluster_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        ids.append(cluster_id)
        status = rng.choice(statuses)
        name = f"{prefix}{rng.choice(COMPANIES)}-{rng.choice(ENVS)}-{i:05d}"
        enrolled = None if status == "pending" else now - timedelta(days=rng.randint(20, 900))
        last_at = None
        if status in ("healthy", "undersized", "degraded"):
            last_at = now - timedelta(seconds=rng.randint(5, 110))
        elif status == "silent":
            last_at = now - timedelta(minutes=rng.randint(7, 3000))
        nodes = _nodes_for(status, rng) if last_at is not None else None
        health = None if nodes is None else ("healthy" if status == "silent" else status)
        rows.append(
            {
                "id": cluster_id,
                "name": name,
                "geography": rng.choice(GEOS),
                "created_at": (enrolled or now) - timedelta(hours=1),
                "enrolled_at": enrolled,
                "last_epoch": rng.randint(1, 40) if enrolled else 0,
                "last_health_at": last_at,
                "health_status": health,
                "last_health": nodes,
                "host_units_in_use": float(len(nodes) * 4) if nodes else None,
            }
        )
        if enrolled is not None and rng.random() < 0.99:
            days = rng.choices((400, 300, 200, 120, 75, 25, 9, -3), (20, 20, 20, 15, 15, 4, 3, 3))[
                0
            ]
            in_use = len(nodes or [1, 1, 1]) * 4
            factor = rng.choices((1.5, 2.0, 3.0, 0.8), (40, 40, 17, 3))[0]
            lics.append(
                {
                    "cluster_id": cluster_id,
                    "host_units": float(math.ceil(in_use * factor / 8) * 8),
                    "expires": now.date() + timedelta(days=days),
                    "updated_at": now - timedelta(days=30),
                }
            )
        kinds = {"undersized": ["cluster_undersized"], "silent": ["cluster_silent"]}.get(status, [])
        if enrolled is not None and rng.random() < 0.95:
            backups.append(_backup_row(cluster_id, "succeeded", now, rng))
        if enrolled is not None and rng.random() < 0.02:
            kinds.append("backup_failed")
            backups.append(_backup_row(cluster_id, "failed", now, rng))
        for kind in kinds:
            open_alerts.append(
                {
                    "cluster_id": cluster_id,
                    "kind": kind,
                    "severity": "warning" if kind == "cluster_undersized" else "critical",
                    "detail": {
                        "cluster_undersized": "CPU at 91%, over 85%",
                        "cluster_silent": "no health check for 6 min",
                        "backup_failed": "target s3://backups/eu: access denied",
                    }[kind],
                    "raised_at": now - timedelta(minutes=rng.randint(3, 5000)),
                }
            )
    async with engine.begin() as conn:
        for start in range(0, len(rows), 1000):
            await conn.execute(insert(clusters), rows[start : start + 1000])
        if lics:
            await conn.execute(insert(licenses), lics)
        if open_alerts:
            await conn.execute(insert(alerts), open_alerts)
        for start in range(0, len(backups), 1000):
            await conn.execute(insert(backup_outcomes), backups[start : start + 1000])
    return ids


def _backup_row(cluster_id: str, outcome: str, now: datetime, rng: random.Random) -> dict[str, Any]:
    """A nightly backup's event: successes within the last day, failures after them."""
    hours = rng.uniform(1, 24) if outcome == "succeeded" else rng.uniform(0.1, 1)
    at = now - timedelta(hours=hours)
    backup_id = f"{at - timedelta(minutes=20):%Y%m%dT%H%M%SZ}-{rng.getrandbits(32):08x}"
    reason = "ok" if outcome == "succeeded" else "target s3://backups/eu: access denied"
    return {
        "cluster_id": cluster_id,
        "outcome": outcome,
        "at": at,
        "backup_id": backup_id,
        "detail": f"backup {backup_id}: {reason}",
    }


def _cpu_at(at: datetime, base: float, rng: random.Random) -> float:
    hour = at.hour + at.minute / 60
    daily = math.sin((hour - 8) / 24 * 2 * math.pi)
    return max(1.0, min(99.0, base + 18 * daily + rng.gauss(0, 3)))


async def seed_history(
    engine: AsyncEngine,
    cluster_id: str,
    *,
    now: datetime,
    days: int,
    rng: random.Random,
    nodes: int = 5,
    memory_gib: int = 32,
    disk_gib: int = 500,
    environments: Sequence[str] = ("prod", "staging", "dr"),
    interval: timedelta = timedelta(minutes=2),
    gap: tuple[float, float] | None = (0.62, 0.64),
) -> int:
    """Samples every `interval` and hourly consumption for the last `days` (a silent stretch
    between the fractions `gap` of the span); returns the number of samples."""
    start = now - timedelta(days=days)
    span = (now - start).total_seconds()
    memory_total, disk_total = nodes * memory_gib * GIB, nodes * disk_gib * GIB
    samples = []
    at = start
    while at <= now:
        progress = (at - start).total_seconds() / span
        if gap is None or not gap[0] <= progress < gap[1]:
            samples.append(
                {
                    "cluster_id": cluster_id,
                    "at": at,
                    "nodes_up": nodes,
                    "cpu_percent": _cpu_at(at, 42, rng),
                    "memory_used_bytes": int(memory_total * (0.48 + 0.12 * progress)),
                    "memory_total_bytes": memory_total,
                    "disk_used_bytes": int(disk_total * (0.55 + 0.2 * progress)),
                    "disk_total_bytes": disk_total,
                }
            )
        at += interval
    hours = []
    hour = start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    while hour <= now:
        for index, env in enumerate(environments):
            units = max(0.0, (nodes * 4 / (index + 1)) * (0.8 + 0.2 * rng.random()))
            hours.append(
                {
                    "cluster_id": cluster_id,
                    "environment": env,
                    "period_start": hour,
                    "host_units": units,
                    "host_unit_hours": round(units, 2),
                    "message_id": str(uuid.uuid4()),
                    "received_at": hour + timedelta(minutes=61),
                }
            )
        hour += timedelta(hours=1)
    async with engine.begin() as conn:
        for first in range(0, len(samples), 2000):
            await conn.execute(insert(health_samples), samples[first : first + 2000])
        for first in range(0, len(hours), 2000):
            await conn.execute(insert(consumption), hours[first : first + 2000])
    return len(samples)


class MovableClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def seed_showcase(
    engine: AsyncEngine,
    *,
    name: str,
    now: datetime,
    rng: random.Random,
    nodes: int = 5,
    history_days: int = 7,
) -> str:
    """A cluster that went through the real services, with history; returns its id."""
    clock = MovableClock(now - timedelta(days=history_days, hours=1))
    ctx = ServiceContext(engine=engine, clock=clock)
    created = await enrollment.create_cluster(ctx, name, "EU")
    await enrollment.enroll(ctx, created.enrollment_token)
    await seed_history(
        engine,
        created.id,
        now=now - timedelta(minutes=3),
        days=history_days,
        rng=rng,
        nodes=nodes,
        memory_gib=64,
        disk_gib=1000,
    )
    # Nightly backups at 02:00: one failed, the next succeeded (as the cluster words them).
    for days_ago, kind, reason in (
        (2, "backup_failed", "node-3: NFS mount /backup is read-only"),
        (1, "backup_succeeded", "ok"),
    ):
        started = (now - timedelta(days=days_ago)).replace(hour=2, minute=0, second=0)
        backup_id = f"{started:%Y%m%dT%H%M%SZ}-{rng.getrandbits(32):08x}"
        clock.now = started + timedelta(minutes=rng.randint(12, 40))
        await cluster_messages.record_event(
            ctx, created.id, _event(kind, f"backup {backup_id}: {reason}")
        )
    # Weekly restore drills: the RTO creeping up, the last one proving the newest backup.
    for weeks_ago, rto in ((3, 41.0), (2, 44.5), (1, 43.0), (0, 61.5)):
        clock.now = now - timedelta(weeks=weeks_ago, hours=2)
        drill = {
            "drill_id": f"drill-{clock.now:%Y%m%dT%H%M%SZ}-{rng.getrandbits(32):08x}",
            "backup_id": backup_id,
            "ok": True,
            "rto_seconds": rto,
            "rpo_seconds": 7200.0,
            "bytes": 5 << 30,
            "files": 1234,
            "decrypted": True,
        }
        detail = f"drill {drill['drill_id']}: ok"
        await cluster_messages.record_event(
            ctx,
            created.id,
            ClusterEvent.model_validate(
                _message(kind="drill_succeeded", detail=detail, drill=drill)
            ),
        )
    clock.now = now - timedelta(minutes=1)
    report = [
        node_json(
            f"node-{i + 1}",
            rng=rng,
            datacenter=("fra-1", "fra-2", "ams-1")[i % 3],
            leader=i == 1,
            cores=16,
            memory_gib=64,
            disk_gib=1000,
            cpu=_cpu_at(now, 42, rng),
            memory=rng.uniform(0.55, 0.65),
            disk=rng.uniform(0.68, 0.74),
        )
        for i in range(nodes)
    ]
    report[2]["disk_used_bytes"] = int(report[2]["disk_total_bytes"] * 0.9)
    await cluster_messages.health(
        ctx, created.id, HealthReport.model_validate(_message(nodes=report))
    )
    await cluster_messages.heartbeat(ctx, created.id, Heartbeat.model_validate(_message()))
    await admin.set_license(ctx, name, 64, now.date() + timedelta(days=24))
    await cluster_messages.license_check(
        ctx, created.id, LicenseCheck.model_validate(_message(host_units_in_use=48))
    )
    hour = now.replace(minute=0, second=0, microsecond=0)
    await cluster_messages.record_consumption(
        ctx,
        created.id,
        ConsumptionReport.model_validate(
            _message(
                environment="prod", period_start=hour.isoformat(), host_units=20, host_unit_hours=20
            )
        ),
    )
    return created.id


def _message(**fields: Any) -> dict[str, Any]:
    return {"message_id": str(uuid.uuid4()), "epoch": 3, **fields}


def _event(kind: str, detail: str) -> ClusterEvent:
    return ClusterEvent.model_validate(_message(kind=kind, detail=detail))
