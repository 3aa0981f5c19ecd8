"""`mission-control serve --workers N`: several processes on one port, one database; sweeps in
worker 0 only; migrations of servers starting at once serialised by an advisory lock."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import psutil
import pytest
from mc_messages import health, heartbeat
from mc_postgres import free_port, fresh_database, run_async
from mc_process import cli_process, serve, stop

from cluster.link.client import MissionControlClient
from mission_control.serving import STOP_GRACE_S


@pytest.fixture
def pg_url(postgres_base: str) -> Iterator[str]:
    with fresh_database(postgres_base) as url:
        yield url


def workers_of(process: subprocess.Popen[bytes]) -> list[psutil.Process]:
    return psutil.Process(process.pid).children()


def wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def create_cluster(db_url: str, name: str) -> str:
    return cli_process("clusters", "create", name, "--geography", "EU", "--db", db_url)


async def exchange(url: str, token: str, rounds: int) -> int:
    """Enroll, then `rounds` health checks and heartbeats, each round on a new connection (any
    worker may take it); how many rounds were accepted."""
    async with MissionControlClient(url, credential=None, insecure_http=True) as first:
        await first.enroll(token)
        credential = first.credential
    accepted = 0
    for _ in range(rounds):
        async with MissionControlClient(url, credential=credential, insecure_http=True) as c:
            await c.health(health(epoch=1))
            await c.heartbeat(heartbeat(epoch=1))
            accepted += 1
    return accepted


def test_two_workers_share_the_port_and_stop_together(pg_url: str, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve(pg_url, port, extra=["--workers", "2"], log=tmp_path / "serve.log") as process:
        workers = workers_of(process)
        assert len(workers) == 2, (tmp_path / "serve.log").read_text()
        tokens = [create_cluster(pg_url, f"c{i}") for i in range(4)]

        async def all_clusters() -> list[int]:
            return await asyncio.gather(*(exchange(url, t, 5) for t in tokens))

        assert asyncio.run(all_clusters()) == [5, 5, 5, 5]

        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(30) == 0
        assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
        log = (tmp_path / "serve.log").read_text()
        assert log.count("Running on") == 1, log  # worker 0 speaks for the server
        assert "Traceback" not in log, log


def test_a_worker_that_dies_stops_the_server(pg_url: str, tmp_path: Path) -> None:
    port = free_port()
    with serve(pg_url, port, extra=["--workers", "2"], log=tmp_path / "serve.log") as process:
        first, second = workers_of(process)
        second.kill()
        assert process.wait(30) == 1
        assert wait_for(lambda: not first.is_running() or first.status() == "zombie", 10)
        assert "exited with -9: stopping" in (tmp_path / "serve.log").read_text()
        assert stop(process) == 1


def test_several_workers_need_postgresql(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mission_control.cli", "serve", "--workers", "2"]
        + ["--db", f"sqlite:///{tmp_path / 'mc.db'}", "--listen", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: --workers 2 needs PostgreSQL: SQLite allows one writer process "
        "(use --workers 1, or a postgresql:// database)"
    ]
    assert not (tmp_path / "mc.db").exists()


def test_a_worker_that_will_not_stop_is_killed_after_the_grace_period(
    pg_url: str, tmp_path: Path
) -> None:
    port = free_port()
    with serve(pg_url, port, extra=["--workers", "2"], log=tmp_path / "serve.log") as process:
        first, second = workers_of(process)
        second.suspend()  # SIGSTOP: it cannot handle SIGTERM
        # Only once it is stopped: a SIGTERM that comes before the kernel has stopped it (the
        # worker not yet scheduled, under load) is fatal while the worker still starts up.
        assert wait_for(lambda: second.status() == psutil.STATUS_STOPPED, 10)
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(STOP_GRACE_S + 15) == 0
        assert not second.is_running() or second.status() == psutil.STATUS_ZOMBIE
        assert "did not stop within" in (tmp_path / "serve.log").read_text()


def _backends_by_worker(db_url: str, workers: Sequence[int]) -> dict[int, list[datetime]]:
    """When each worker's database connections last started a query, by worker PID: which
    connection is whose comes from the client ports PostgreSQL reports and the worker owns."""
    pg_port = urlsplit(db_url).port or 5432
    owner = {
        c.laddr.port: pid
        for pid in workers
        for c in psutil.Process(pid).net_connections("tcp")
        if c.raddr and c.raddr.port == pg_port
    }

    async def read() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(db_url)
        try:
            return await conn.fetch(
                "SELECT client_port, query_start FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await conn.close()

    found: dict[int, list[datetime]] = {pid: [] for pid in workers}
    for row in run_async(read):
        pid = owner.get(row["client_port"])
        if pid is not None and row["query_start"] is not None:
            found[pid].append(row["query_start"])
    return found


def test_only_worker_0_runs_the_sweeps(pg_url: str, tmp_path: Path) -> None:
    """The alert and support sweeps (every 0.2 s here) run in worker 0 alone: the other
    worker's database connections stay quiet while worker 0's keep querying."""
    port, log = free_port(), tmp_path / "serve.log"
    env = {"MISSION_CONTROL_SWEEP_INTERVAL_S": "0.2"}
    with serve(pg_url, port, extra=["--workers", "2"], env=env, log=log) as process:
        named: list[int] = []

        def worker_0_named() -> bool:
            found = re.search(r"worker 0 \(pid (\d+)\)", log.read_text())
            named.extend([int(found.group(1))] if found else [])
            return bool(named)

        assert wait_for(worker_0_named, 30), log.read_text()
        zero = named[0]
        (other,) = [w.pid for w in workers_of(process) if w.pid != zero]

        # Start-up is over when worker 0 has swept three times while the other worker's
        # newest query stayed the same (its start-up may finish after worker 0's).
        seen: list[tuple[datetime | None, datetime | None]] = []

        def newest() -> tuple[datetime | None, datetime | None]:
            found = _backends_by_worker(pg_url, [zero, other])
            return max(found[zero], default=None), max(found[other], default=None)

        def settled() -> bool:
            seen.append(newest())
            since_other = {z for z, o in seen if o == seen[-1][1]}
            return seen[-1][1] is not None and len(since_other) >= 3

        assert wait_for(settled, 30), (seen[-5:], log.read_text())
        quiet_since, quiet_other = seen[-1]
        assert quiet_since is not None
        sweeps: set[datetime] = set()

        def worker_0_keeps_sweeping() -> bool:
            sweeps.update(t for t in _backends_by_worker(pg_url, [zero])[zero] if t > quiet_since)
            return len(sweeps) >= 5

        assert wait_for(worker_0_keeps_sweeping, 20), log.read_text()
        assert newest()[1] == quiet_other, "the other worker queried: it sweeps too"


async def test_migrations_wait_for_the_advisory_lock_and_two_at_once_both_succeed(
    pg_url: str, postgres_base: str
) -> None:
    """Several servers may start at once on a new database: each upgrade takes the advisory
    lock first, so one waits (changing nothing) while another migrates."""
    from mission_control.db.migrate import _PG_LOCK_KEY  # the lock the upgrade takes

    def upgrade(db_url: str) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "mission_control.cli", "db", "upgrade", "--db", db_url]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    async def migrated(conn: asyncpg.Connection) -> bool:
        return await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")

    holder = await asyncpg.connect(pg_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", _PG_LOCK_KEY)
        waiting = upgrade(pg_url)
        deadline = time.monotonic() + 30
        while not await holder.fetchval(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = current_database()"
        ):
            assert waiting.poll() is None, "the upgrade did not wait for the lock"
            assert time.monotonic() < deadline, "the upgrade never asked for the lock"
            await asyncio.sleep(0.05)
        assert not await migrated(holder)  # nothing done while it waits
        await holder.execute("SELECT pg_advisory_unlock($1)", _PG_LOCK_KEY)
        out, _ = await asyncio.to_thread(waiting.communicate, timeout=60)
        assert waiting.returncode == 0, out
        assert await migrated(holder)
    finally:
        await holder.close()

    with fresh_database(postgres_base) as fresh:
        both = [upgrade(fresh), upgrade(fresh)]
        outs = [await asyncio.to_thread(p.communicate, timeout=90) for p in both]
        assert [p.returncode for p in both] == [0, 0], outs
        conn = await asyncpg.connect(fresh)
        try:
            versions = await conn.fetch("SELECT version_num FROM alembic_version")
        finally:
            await conn.close()
        assert len(versions) == 1
