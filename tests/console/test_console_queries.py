"""The console's data queries on both back ends: fleet search and paging, alert filters, the
cluster view, and the health-sample hook in the real ingest path."""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from seed import MovableClock, node_json, seed_fleet, seed_history, seed_showcase
from sqlalchemy import func, insert, select

from contract.messages import HealthReport, NodeHealth
from mission_control.console.plots import downsample
from mission_control.db.engine import create_engine
from mission_control.db.schema import alerts, clusters, health_samples
from mission_control.service.context import ServiceContext
from mission_control.service.exchange import cluster_messages
from mission_control.service.fleet import enrollment
from mission_control.service.fleet.alert_list import AlertFilter, load_alerts
from mission_control.service.fleet.cluster_view import load_cluster
from mission_control.service.fleet.history import resource_history
from mission_control.service.fleet.overview import FleetQuery, FleetStatus, load_fleet
from mission_control.service.rules.resources import aggregate

NOW = datetime(2030, 6, 10, 12, 0, tzinfo=UTC)
GIB = 1024**3


async def _fleet(conn: object, **query: object) -> object:
    return await load_fleet(
        conn,  # type: ignore[arg-type]
        FleetQuery.model_validate(query),
        today=NOW.date(),
        expiring_days=30,
        page_size=10,
    )


async def test_fleet_search_filters_and_pages(any_db: str) -> None:
    engine = create_engine(any_db)
    try:
        ids = await seed_fleet(engine, count=120, now=NOW, rng=random.Random(3))
        async with engine.begin() as conn:
            await conn.execute(
                insert(clusters).values(
                    id=str(uuid.uuid4()), name="odd_name%x", geography="AU", created_at=NOW
                )
            )
        async with engine.connect() as conn:
            everything = await _fleet(conn)
            assert everything.matching == 121 and everything.pages == 13
            assert everything.fleet_size == 121 and len(everything.rows) == 10
            names = [r.name for r in everything.rows]
            assert names == sorted(names)
            last = await _fleet(conn, page=999)
            assert last.page == 13 and len(last.rows) == 1

            acme = await _fleet(conn, q="ACME")
            assert acme.matching > 0 and all("acme" in r.name for r in acme.rows)
            literal = await _fleet(conn, q="_name%")
            assert [r.name for r in literal.rows] == ["odd_name%x"]
            assert (await _fleet(conn, q="od_")).matching == 0  # "_" is not a wildcard
            by_id = await _fleet(conn, q=ids[5].upper())
            assert [r.id for r in by_id.rows] == [ids[5]]

            eu = await _fleet(conn, geography="EU")
            assert eu.matching > 0 and all(r.geography == "EU" for r in eu.rows)
            for status in FleetStatus:
                only = await _fleet(conn, status=status.value)
                assert only.matching == everything.tallies[status]
                assert all(r.status is status for r in only.rows)
    finally:
        await engine.dispose()


async def test_fleet_rows_carry_nodes_license_and_alerts(any_db: str) -> None:
    engine = create_engine(any_db)
    try:
        clock = MovableClock(NOW)
        ctx = ServiceContext(engine=engine, clock=clock)
        created = await enrollment.create_cluster(ctx, "zeta", "US")
        await enrollment.enroll(ctx, created.enrollment_token)
        nodes = [node_json(f"n{i}", rng=random.Random(i), cpu=95) for i in range(3)]
        nodes[2]["state"] = "down"
        report = {"message_id": str(uuid.uuid4()), "epoch": 1, "nodes": nodes}
        await cluster_messages.health(ctx, created.id, HealthReport.model_validate(report))
        async with engine.connect() as conn:
            (row,) = (await _fleet(conn, q="zeta")).rows
        assert row.status is FleetStatus.DEGRADED
        assert (row.nodes_up, row.nodes_total) == (2, 3)
        assert row.license_state == "expired"  # no license set
        assert row.open_alerts == 1 and row.critical_alerts == 0  # cluster_undersized
        assert row.last_health_at == NOW
    finally:
        await engine.dispose()


async def test_alert_filters(any_db: str) -> None:
    engine = create_engine(any_db)
    try:
        await seed_fleet(engine, count=60, now=NOW, rng=random.Random(5))
        old = NOW - timedelta(days=20)
        async with engine.begin() as conn:
            some = await conn.scalar(select(clusters.c.id).where(clusters.c.name.like("%-00007")))
            name = await conn.scalar(select(clusters.c.name).where(clusters.c.id == some))
            await conn.execute(
                insert(alerts),
                [
                    {
                        "cluster_id": some,
                        "kind": "backup_failed",
                        "severity": "critical",
                        "detail": "old",
                        "raised_at": old,
                        "cleared_at": old + timedelta(hours=1),
                    },
                    {
                        "cluster_id": some,
                        "kind": "license_overage",
                        "severity": "warning",
                        "detail": "recent",
                        "raised_at": NOW - timedelta(days=2),
                        "cleared_at": NOW - timedelta(days=1),
                    },
                ],
            )
            opened = await conn.scalar(
                select(func.count()).select_from(alerts).where(alerts.c.cleared_at.is_(None))
            )

        async def page(**query: object) -> object:
            async with engine.connect() as conn:
                return await load_alerts(
                    conn, AlertFilter.model_validate(query), now=NOW, page_size=500
                )

        assert (await page()).matching == opened
        assert all(a.cleared_at is None for a in (await page()).alerts)
        mine = await page(state="all", cluster=name)
        assert [a.detail for a in mine.alerts][-2:] == ["recent", "old"]
        assert "old" not in [a.detail for a in (await page(state="recent", cluster=name)).alerts]
        silent = await page(kind="cluster_silent")
        assert silent.matching > 0 and {a.kind for a in silent.alerts} == {"cluster_silent"}
        assert (await page(cluster=str(some).upper(), state="all")).matching == len(mine.alerts)
        paged = await load_alerts_page(engine)
        assert paged.pages >= 2
    finally:
        await engine.dispose()


async def load_alerts_page(engine: object) -> object:
    async with engine.connect() as conn:  # type: ignore[attr-defined]
        return await load_alerts(conn, AlertFilter(state="all"), now=NOW, page_size=5)


async def test_health_checks_leave_samples_and_resends_do_not(any_db: str) -> None:
    engine = create_engine(any_db)
    try:
        clock = MovableClock(NOW)
        ctx = ServiceContext(engine=engine, clock=clock)
        created = await enrollment.create_cluster(ctx, "eta", "EU")
        await enrollment.enroll(ctx, created.enrollment_token)
        rng = random.Random(1)
        nodes = [node_json(f"n{i}", rng=rng, cores=4 * (i + 1), cpu=10 * (i + 1)) for i in range(3)]
        report = HealthReport.model_validate(
            {"message_id": str(uuid.uuid4()), "epoch": 1, "nodes": nodes}
        )
        await cluster_messages.health(ctx, created.id, report)
        clock.now = NOW + timedelta(minutes=2)
        again = await cluster_messages.health(ctx, created.id, report)  # a resend: deduplicated
        assert again.duplicate
        async with engine.connect() as conn:
            rows = (await conn.execute(select(health_samples))).all()
        assert len(rows) == 1 and rows[0].at == NOW
        expected = aggregate(NOW, [NodeHealth.model_validate(n) for n in nodes])
        # cores 4/8/12 at 10/20/30 %: (40 + 160 + 360) / 24
        assert rows[0].cpu_percent == expected.cpu_percent == 560 / 24
        assert rows[0].memory_total_bytes == 3 * 32 * GIB
    finally:
        await engine.dispose()


async def test_cluster_view_of_a_cluster_built_by_the_real_services(any_db: str) -> None:
    engine = create_engine(any_db)
    try:
        now = datetime.now(UTC)
        cluster_id = await seed_showcase(engine, name="showcase", now=now, rng=random.Random(2))
        ctx = ServiceContext(engine=engine, clock=lambda: now)
        async with engine.connect() as conn:
            view = await load_cluster(conn, ctx, "showcase", now, timedelta(days=7))
            assert await load_cluster(conn, ctx, "nope", now, timedelta(days=7)) is None
        assert view is not None and view.id == cluster_id
        assert view.status is FleetStatus.UNDERSIZED  # node-3's disk is at 90 %
        assert [n.node for n in view.nodes] == [f"node-{i}" for i in range(1, 6)]
        assert view.capacity is not None and view.capacity.nodes == 5
        assert any("disk of node-3" in r for r in view.capacity.assessment.reasons)
        assert view.license.state == "expiring" and view.license.days_left == 25
        assert [(n.datacenter, n.leader) for n in view.nodes] == [
            ("fra-1", False),
            ("fra-2", True),
            ("ams-1", False),
            ("fra-1", False),
            ("fra-2", False),
        ]
        backups = view.backups
        assert backups.failing_since is None and not backups.failed_last
        assert backups.last_failure is not None and backups.last_success is not None
        assert backups.last_failure.detail.endswith(": node-3: NFS mount /backup is read-only")
        assert backups.last_success.at - backups.last_failure.at > timedelta(hours=23)
        assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", backups.last_success.backup_id or "")
        assert view.latest is not None and view.latest.at == now - timedelta(minutes=1)
        assert 300 < len(view.history) <= 360  # a week averaged into buckets, minus a gap
        assert all(0 < p.cpu_fraction < 1 and p.disk_fraction for p in view.history)
        assert {c.environment for c in view.consumption} == {"prod", "staging", "dr"}
        kinds = {a.kind for a in view.alerts}
        assert {"cluster_undersized", "license_expiring", "backup_failed"} <= kinds
    finally:
        await engine.dispose()


async def test_the_database_averages_the_same_buckets_as_the_plot_module(any_db: str) -> None:
    engine = create_engine(any_db)
    try:
        rng = random.Random(9)
        (cluster_id,) = await seed_fleet(engine, count=1, now=NOW, rng=rng)
        await seed_history(engine, cluster_id, now=NOW, days=2, rng=rng, gap=None)
        start, end = NOW - timedelta(days=2), NOW
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(health_samples.c.at, health_samples.c.cpu_percent)
                    .where(health_samples.c.cluster_id == cluster_id)
                    .order_by(health_samples.c.at)
                )
            ).all()
            from_db = await resource_history(conn, cluster_id, start, end, 100)
        expected = downsample([(r.at, r.cpu_percent / 100) for r in rows], start, end, 100)
        assert len(from_db) == len(expected) == 100
        for point, (at, cpu) in zip(from_db, expected, strict=True):
            assert abs((point.at - at).total_seconds()) < 1
            assert point.cpu_fraction == pytest.approx(cpu)
            assert point.memory_fraction is not None and 0 < point.memory_fraction < 1
    finally:
        await engine.dispose()
