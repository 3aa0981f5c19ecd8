"""`mission-control serve --workers N`: several processes on one port, one database."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from mc_messages import health, heartbeat
from mc_postgres import free_port, fresh_database
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
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(STOP_GRACE_S + 15) == 0
        assert not second.is_running() or second.status() == psutil.STATUS_ZOMBIE
        assert "did not stop within" in (tmp_path / "serve.log").read_text()
