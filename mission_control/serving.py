"""How `mission-control serve` runs: one process, or several worker processes on one socket.

One aiohttp process uses one core; past that, `--workers N` forks N processes that accept on
the same listening socket (bound once by the parent, inherited by each worker; the kernel hands
each new connection to one of them), as gunicorn's and uvicorn's worker models do.

Guarantees:
- The database is migrated once, by the parent, before any worker starts; workers only check
  that the schema is current.
- All state lives in the database, so every worker may take any request: epoch fencing,
  deduplication and group commit hold across processes (two engines on one database are tested
  in tests/mission_control/test_mcp_ingest.py). Several workers need PostgreSQL: SQLite allows
  one writer process, so it is refused rather than slowed down.
- Only worker 0 runs the background sweeps (alerts, support expiry), so they never race.
- SIGTERM or SIGINT to the parent stops every worker gracefully (aiohttp's shutdown: open
  requests finish) and the parent exits 0. A worker that dies on its own stops the whole server
  with exit code 1: a supervisor (systemd) restarts it, rather than it serving on silently with
  fewer workers.

Does not: restart workers, or reload code.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

from aiohttp import web

from mission_control.app import create_app
from mission_control.db.engine import create_engine, normalise_url
from mission_control.db.migrate import upgrade
from mission_control.settings import Settings

log = logging.getLogger(__name__)

#: How long stopping workers may take before they are killed.
STOP_GRACE_S = 15.0


class WorkersNeedPostgreSQL(ValueError):
    """`--workers` above 1 on SQLite."""


def check_workers(settings: Settings) -> None:
    """Refuse several workers on SQLite (raises UnsupportedDatabaseURL for a bad URL)."""
    if settings.workers == 1:
        return
    if not normalise_url(settings.db_url).drivername.startswith("postgresql"):
        raise WorkersNeedPostgreSQL(
            f"--workers {settings.workers} needs PostgreSQL: SQLite allows one writer process "
            "(use --workers 1, or a postgresql:// database)"
        )


def run(settings: Settings, ssl_context: ssl.SSLContext | None, say: Callable[[str], None]) -> int:
    """Serve until stopped; the exit code. Raises what binding or the database raise."""
    check_workers(settings)
    access_log = logging.getLogger("aiohttp.access") if settings.access_log else None
    if settings.workers == 1:
        web.run_app(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            ssl_context=ssl_context,
            access_log=access_log,
            print=say,
        )
        return 0
    if settings.migrate_on_start:
        asyncio.run(_migrate(settings.db_url))
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.create_server((settings.host, settings.port), family=family, backlog=1024)
    worker_settings = settings.model_copy(update={"migrate_on_start": False})
    fork = multiprocessing.get_context("fork")
    workers = [
        fork.Process(
            target=_worker,
            args=(worker_settings, index, sock, ssl_context, access_log, say),
            name=f"mission-control-worker-{index}",
        )
        for index in range(settings.workers)
    ]
    return _supervise(workers, sock)


async def _migrate(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def _worker(
    settings: Settings,
    index: int,
    sock: socket.socket,
    ssl_context: ssl.SSLContext | None,
    access_log: logging.Logger | None,
    say: Callable[[str], None],
) -> None:
    # The parent's handlers were inherited by fork; aiohttp installs its own for a graceful stop.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    web.run_app(
        create_app(settings, background=index == 0),
        sock=sock,
        ssl_context=ssl_context,
        access_log=access_log,
        print=(lambda line: say(f"worker {index} (pid {os.getpid()}): {line}"))
        if index == 0
        else None,
    )


def _supervise(workers: Sequence[BaseProcess], sock: socket.socket) -> int:
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for worker in workers:
            worker.start()
        sock.close()  # the workers hold it now
        while not stopping:
            wait([w.sentinel for w in workers if w.exitcode is None], timeout=1.0)
            ended = [w for w in workers if w.exitcode is not None]
            if ended and not stopping:
                for worker in ended:
                    log.error("%s exited with %s: stopping", worker.name, worker.exitcode)
                stop(signal.SIGTERM, None)
                return 1
        return 0
    finally:  # every worker gone within STOP_GRACE_S, killed if need be
        _join_all(workers)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _join_all(workers: Sequence[BaseProcess]) -> None:
    deadline = time.monotonic() + STOP_GRACE_S
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    for worker in workers:
        if worker.is_alive():
            log.error("%s did not stop within %g s: killed", worker.name, STOP_GRACE_S)
            worker.kill()
            worker.join(5)
