"""A real Mission Control (`mission-control serve` subprocess) with a seeded console, for the
browser tests, `make screenshots` and the benchmark.

`console_stack(workdir)` migrates an SQLite database, seeds a fleet and one showcase cluster
built through the real services, starts the server (logins through Mission Control's staff
accounts, as in production, with cheap password hashing), and yields a `Stack`; the server is
stopped by PID afterwards. Accounts are added in-process (`Stack.add_user`) or with the real
`mission-control users add` (`Stack.add_cli_user`).
"""

from __future__ import annotations

import contextlib
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
from playwright.sync_api import Browser, sync_playwright

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "mission_control"))

from mc_postgres import free_port, run_async  # noqa: E402
from mc_process import serve  # noqa: E402
from seed import seed_fleet, seed_showcase  # noqa: E402
from staff_store import CHEAP_ENV, add_account, cli_add_account  # noqa: E402

from contract.messages import StaffRole  # noqa: E402
from mission_control.db.engine import create_engine  # noqa: E402
from mission_control.db.migrate import upgrade  # noqa: E402
from mission_control.service.context import ServiceContext  # noqa: E402
from mission_control.service.exchange.monitor import sweep  # noqa: E402

PASSWORD = "Orbit-Lantern-42"
SHOWCASE = "acme-prod-eu"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, through Playwright; closed afterwards."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass(frozen=True)
class StaffUser:
    name: str
    role: StaffRole
    password: str
    totp_secret: str

    def code(self) -> str:
        return str(pyotp.TOTP(self.totp_secret).now())


@dataclass(frozen=True)
class Stack:
    base_url: str
    db_url: str
    showcase_id: str
    fleet_size: int

    def add_user(self, name: str, role: StaffRole = "support-l2") -> StaffUser:
        async def add() -> str:
            engine = create_engine(self.db_url)
            try:
                return await add_account(engine, name, role, PASSWORD)
            finally:
                await engine.dispose()

        return StaffUser(name, role, PASSWORD, run_async(add))

    def add_cli_user(self, name: str, role: StaffRole = "support-l2") -> StaffUser:
        """An account made by `mission-control users add`, as an administrator would."""
        return StaffUser(name, role, PASSWORD, cli_add_account(self.db_url, name, role, PASSWORD))


async def prepare(db_url: str, *, fleet: int, seed: int) -> str:
    engine = create_engine(db_url)
    try:
        await upgrade(engine)
        now = datetime.now(UTC)
        rng = random.Random(seed)
        await seed_fleet(engine, count=fleet, now=now, rng=rng)
        # One alert sweep a while ago, as the running server would have done: license and
        # silence alerts then carry believable ages.
        await sweep(ServiceContext(engine=engine, clock=lambda: now - timedelta(hours=3)))
        return await seed_showcase(engine, name=SHOWCASE, now=now, rng=rng)
    finally:
        await engine.dispose()


@contextlib.contextmanager
def console_stack(workdir: Path, *, fleet: int = 240, seed: int = 7) -> Iterator[Stack]:
    db_url = f"sqlite:///{workdir / 'mc.db'}"
    showcase = run_async(lambda: prepare(db_url, fleet=fleet, seed=seed))
    port = free_port()
    env = {**CHEAP_ENV, "MISSION_CONTROL_SWEEP_INTERVAL_S": "3600"}
    with serve(db_url, port, env=env, log=workdir / "server.log"):
        yield Stack(f"http://127.0.0.1:{port}", db_url, showcase, fleet + 1)
