"""A PostgreSQL server for tests: the one on 127.0.0.1:5432 if it answers, else a throwaway
instance (initdb + pg_ctl in a temp dir, on a free port), stopped by PID afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import asyncpg

from cluster.dev.processes import free_port

T = TypeVar("T")


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running loop's thread."""

    async def runner() -> T:
        return await make()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, runner()).result(timeout=60)


async def _answers(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def _existing() -> str | None:
    for user in ("postgres", "root"):
        base = f"postgresql://{user}@127.0.0.1:5432"
        if run_async(lambda b=base: _answers(b + "/test")):
            return base
    return None


@contextlib.contextmanager
def _throwaway() -> Iterator[str]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        raise RuntimeError("no PostgreSQL on 127.0.0.1:5432 and no initdb to start one")
    bindir = Path(bins[-1]).parent
    workdir = Path(tempfile.mkdtemp(prefix="mc-pg-"))
    data = workdir / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    # The server inherits pg_ctl's stdout/stderr: send them to a log file, never to a pipe.
    start = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(workdir / "server.log")]
    subprocess.run(
        [*as_user, *start, "-o", options, "-w", "-t", "60", "start"],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=90,
    )
    pid = int((data / "postmaster.pid").read_text().split()[0])
    try:
        base = f"postgresql://postgres@127.0.0.1:{port}"
        run_async(lambda: _create(base, "test"))
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)  # fast shutdown
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        shutil.rmtree(workdir, ignore_errors=True)


async def _create(base: str, name: str, template: str | None = None) -> None:
    conn = await asyncpg.connect(base + "/test" if name != "test" else base + "/postgres")
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await conn.close()


async def _drop(base: str, name: str) -> None:
    conn = await asyncpg.connect(base + "/test", timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yields a base URL such as postgresql://postgres@127.0.0.1:5432 (no database part)."""
    base = _existing()
    if base is not None:
        yield base
        return
    with _throwaway() as base:
        yield base


@contextlib.contextmanager
def fresh_database(base: str, template: str | None = None) -> Iterator[str]:
    """A new database on `base` (empty, or a copy of `template`), dropped afterwards."""
    name = f"mc_{uuid.uuid4().hex[:16]}"
    run_async(lambda: _create(base, name, template))
    try:
        yield f"{base}/{name}"
    finally:
        run_async(lambda: _drop(base, name))


def migrate(url: str) -> None:
    """Run the project's migrations on the database at `url` (SQLite or PostgreSQL)."""
    from mission_control.db.engine import create_engine
    from mission_control.db.migrate import upgrade

    async def run() -> None:
        engine = create_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    run_async(run)
