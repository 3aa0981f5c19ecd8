"""The background sweep: alerts that depend on the passing of time, and dedupe retention.

One `sweep` (every `sweep_interval_s` in the server):
- raises `cluster_silent` for enrolled clusters without a health check for
  `silent_after_intervals` health intervals (a health check clears it again). The interval is
  the cluster's own, as its health checks report it (`health_interval_s`), else the server's;
- re-evaluates every enrolled cluster's license on today's date (expiring/expired alerts);
- forgets stored replies older than the dedupe retention.
Silent candidates are found in one read of every enrolled cluster (the license pass reads them
all anyway), then selected again FOR UPDATE (PostgreSQL) and re-checked, so a health check
arriving during the sweep either is seen by it or clears the alert right after; sweeps of
several servers are idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from mission_control.db.schema import clusters, licenses, messages
from mission_control.service.context import ServiceContext
from mission_control.service.exchange.alert_store import apply_alert_changes, open_alerts
from mission_control.service.rules.alerts import license_alerts, silence_alert
from mission_control.service.rules.licensing import License, evaluate_license

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    silent: tuple[str, ...]
    licenses_checked: int
    replies_forgotten: int


def health_interval_of(reported_s: float | None, default: timedelta) -> timedelta:
    """The health interval the silence alert uses for a cluster (its own, else the default)."""
    return default if reported_s is None or reported_s <= 0 else timedelta(seconds=reported_s)


def is_silent(
    last_seen: datetime, reported_s: float | None, now: datetime, ctx: ServiceContext
) -> bool:
    interval = health_interval_of(reported_s, ctx.health_interval)
    return now - last_seen > interval * ctx.alerts.silent_after_intervals


async def sweep(ctx: ServiceContext) -> SweepReport:
    now = ctx.clock()
    intervals = ctx.alerts.silent_after_intervals
    last_seen = func.coalesce(clusters.c.last_health_at, clusters.c.enrolled_at).label("last_seen")
    watched = select(clusters.c.id, last_seen, clusters.c.health_interval_s).where(
        clusters.c.enrolled_at.is_not(None)
    )
    # One read of every enrolled cluster serves both passes; only silent candidates are read
    # again, locked, so a health check that arrived meanwhile is seen.
    enrolled = watched.add_columns(
        clusters.c.host_units_in_use, licenses.c.host_units, licenses.c.expires
    ).outerjoin(licenses, licenses.c.cluster_id == clusters.c.id)
    async with ctx.engine.begin() as conn:
        rows = (await conn.execute(enrolled)).all()
        candidates = [r.id for r in rows if is_silent(r.last_seen, r.health_interval_s, now, ctx)]
        silent_rows = []
        if candidates:
            locked = watched.where(clusters.c.id.in_(candidates)).with_for_update()
            silent_rows = [
                r
                for r in await conn.execute(locked)
                if is_silent(r.last_seen, r.health_interval_s, now, ctx)
            ]
        current = await open_alerts(conn)
        for row in silent_rows:
            interval = health_interval_of(row.health_interval_s, ctx.health_interval)
            changes = silence_alert(row.last_seen, now, interval, intervals)
            await apply_alert_changes(conn, row.id, changes, now, current.get(row.id, {}))
        for lrow in rows:
            lic = None if lrow.expires is None else License(lrow.host_units, lrow.expires)
            evaluation = evaluate_license(
                lic, lrow.host_units_in_use, now.date(), ctx.alerts.license_expiring_days
            )
            await apply_alert_changes(
                conn, lrow.id, license_alerts(evaluation), now, current.get(lrow.id, {})
            )
        forgotten = await conn.execute(
            delete(messages).where(messages.c.received_at < now - ctx.dedupe_retention)
        )
    return SweepReport(
        silent=tuple(r.id for r in silent_rows),
        licenses_checked=len(rows),
        replies_forgotten=forgotten.rowcount,
    )


async def run_forever(ctx: ServiceContext, interval_s: float) -> None:
    """Sweep every `interval_s` seconds until cancelled; a failed sweep is logged and retried."""
    while True:
        try:
            report = await sweep(ctx)
            if report.silent:
                log.info("silent clusters: %s", ", ".join(report.silent))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("alert sweep failed; retrying in %s s", interval_s)
        await asyncio.sleep(interval_s)
