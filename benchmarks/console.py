"""Console benchmark: server-side render time of the fleet page with 10,000 clusters and of the
cluster page with 30 nodes and 7 days of history, next to a baseline measured in the same run.

A real `mission-control serve` process (subprocess) on SQLite and on PostgreSQL is seeded with
10,000 clusters (statuses, licenses, open alerts) and one cluster of 30 nodes with a health
sample every 2 minutes for 7 days (5,040 samples) and hourly consumption for 3 environments;
one alert sweep brings the alerts to their steady state before the server starts (and, on
PostgreSQL, VACUUM ANALYZE does what autovacuum would after such a bulk load).
Each page is requested sequentially over loopback by a logged-in client (`--requests` times
after a warm-up). Two figures per page, median and p95: the server-side time (the console's
``Server-Timing: app;dur=`` header: session, queries and template, measured by the server) and
the latency the client saw (that plus HTTP on loopback). The baseline is the login page: the
same server, middleware and template engine, but a trivial template and no database query.
Goal: server-side p95 < 150 ms for each page.

    .venv/bin/python benchmarks/console.py [--clusters 10000] [--requests 100]
        [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "mission_control"))
sys.path.insert(0, str(ROOT / "tests" / "console"))

from mc_postgres import free_port, fresh_database, postgres_server  # noqa: E402
from mc_process import serve  # noqa: E402
from seed import seed_fleet, seed_showcase  # noqa: E402
from staff_store import CHEAP_ENV, add_account  # noqa: E402

from mission_control.console.cookies import COOKIE  # noqa: E402
from mission_control.db.engine import create_engine  # noqa: E402
from mission_control.db.migrate import upgrade  # noqa: E402
from mission_control.service.accounts.console_sessions import open_session  # noqa: E402
from mission_control.service.context import ServiceContext  # noqa: E402
from mission_control.service.exchange.monitor import sweep  # noqa: E402
from mission_control.staff.identity import StaffIdentity  # noqa: E402

GOAL_MS = 150.0


async def prepare(db_url: str, clusters: int) -> tuple[str, str, float]:
    """Seed the database and bring its alerts to their steady state (one alert sweep); returns
    the 30-node cluster's id, a session cookie and how long the sweep took."""
    engine = create_engine(db_url)
    try:
        await upgrade(engine)
        now = datetime.now(UTC)
        rng = random.Random(11)
        await seed_fleet(engine, count=clusters - 1, now=now, rng=rng)
        big = await seed_showcase(engine, name="big-30-nodes", now=now, rng=rng, nodes=30)
        # A session of a real account: every request checks the account is still enabled.
        await add_account(engine, "bench", "operator", "Granite-Orbit-52")
        cookie, _ = await open_session(engine, StaffIdentity("bench", "operator"), now)
        started = time.perf_counter()
        await sweep(ServiceContext(engine=engine))
        swept = time.perf_counter() - started
        if engine.dialect.name == "postgresql":
            # What autovacuum does after a bulk load: statistics and the visibility map (so
            # the covering index serves index-only scans).
            async with engine.connect() as conn:
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await auto.exec_driver_sql("VACUUM ANALYZE")
        return big, cookie, swept
    finally:
        await engine.dispose()


Timings = dict[str, list[tuple[float, float]]]  # page -> [(server s, client s)]


def server_seconds(header: str) -> float:
    """The ``app;dur=<ms>`` of a Server-Timing header, in seconds."""
    for metric in header.split(","):
        name, _, params = metric.strip().partition(";")
        if name == "app" and params.startswith("dur="):
            return float(params[4:]) / 1000
    raise RuntimeError(f"no app duration in Server-Timing {header!r}")


async def measure(
    base: str, cookie: str, pages: dict[str, str], requests: int, warmup: int = 10
) -> Timings:
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=base)
    jar.update_cookies({COOKIE: cookie}, response_url=aiohttp.client.URL(base + "/console/"))
    timings: Timings = {}
    async with aiohttp.ClientSession(cookie_jar=jar) as http:

        async def once(path: str) -> tuple[float, float]:
            started = time.perf_counter()
            async with http.get(base + path, allow_redirects=False) as reply:
                await reply.read()
                if reply.status != 200:
                    raise RuntimeError(f"{path}: HTTP {reply.status}")
                server = server_seconds(reply.headers.get("Server-Timing", ""))
            return server, time.perf_counter() - started

        for name, path in pages.items():
            for _ in range(warmup):
                await once(path)
            timings[name] = [await once(path) for _ in range(requests)]
    return timings


def figures(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return statistics.median(ordered) * 1000, p95 * 1000


def report(backend: str, timings: Timings) -> bool:
    print(
        f"\n{backend}: {'page':<40} {'server median':>13} {'server p95':>10} "
        f"{'client median':>13} {'client p95':>10}"
    )
    ok = True
    for name, samples in timings.items():
        server = figures([s for s, _ in samples])
        client = figures([c for _, c in samples])
        within = name.startswith("baseline") or server[1] < GOAL_MS
        ok = ok and within
        mark = "" if within else "  over the goal"
        print(
            f"{backend}: {name:<40} {server[0]:>11.1f}ms {server[1]:>8.1f}ms "
            f"{client[0]:>11.1f}ms {client[1]:>8.1f}ms{mark}"
        )
    return ok


def run(backend: str, db_url: str, args: argparse.Namespace, workdir: Path) -> bool:
    started = time.perf_counter()
    big, cookie, sweep_s = asyncio.run(prepare(db_url, args.clusters))
    print(f"{backend}: seeded {args.clusters:,} clusters in {time.perf_counter() - started:.1f} s")
    port = free_port()
    pages = {
        "baseline: login page": "/console/login",
        f"fleet, page 1 of {args.clusters:,}": "/console/",
        "fleet, last page (deepest offset)": "/console/?page=100000",
        "fleet, search 'acme' + EU": "/console/?q=acme&geography=EU",
        "fleet, status filter 'silent'": "/console/?status=silent",
        "cluster, 30 nodes, 7 days of history": f"/console/clusters/{big}",
        "alerts, open": "/console/alerts",
    }
    env = {**CHEAP_ENV, "MISSION_CONTROL_SWEEP_INTERVAL_S": "3600"}
    with serve(db_url, port, env=env, log=workdir / f"{backend}.log"):
        # The server sweeps alerts once at start (reads 10,000 clusters): let it finish.
        time.sleep(2 * sweep_s)
        timings = asyncio.run(measure(f"http://127.0.0.1:{port}", cookie, pages, args.requests))
    return report(backend, timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="mc-console-bench-") as tmp:
        workdir = Path(tmp)
        for backend in args.backends.split(","):
            if backend == "sqlite":
                ok = run(backend, f"sqlite:///{workdir / 'mc.db'}", args, workdir) and ok
            elif backend == "postgresql":
                with postgres_server() as pg, fresh_database(pg) as db_url:
                    ok = run(backend, db_url, args, workdir) and ok
            else:
                raise SystemExit(f"unknown backend {backend!r}: use sqlite, postgresql")
    print(f"\ngoal: server-side p95 < {GOAL_MS:.0f} ms per page: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
