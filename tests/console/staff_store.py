"""Staff accounts for console tests, screenshots and the benchmark: real Mission Control accounts
(`users.add_user`, the code behind `mission-control users add`), hashed with cheap argon2
parameters to keep tests fast, whose TOTP secret the test keeps to make codes. The console
logs them in through its default directory (`staff.login`), as in production.

`refusing` is a `StaffDirectory` factory for the test of
``MISSION_CONTROL_CONSOLE_STAFF_DIRECTORY=module:factory`` (tests/console on PYTHONPATH).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime

import pyotp
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine

from contract.messages import StaffRole
from mission_control.service.accounts import users
from mission_control.service.accounts.audit_log import cli_actor
from mission_control.service.context import ServiceContext, utc_now
from mission_control.service.support.settings import SupportSettings
from mission_control.staff.identity import StaffIdentity

# The same cheap parameters as CHEAP_ENV, so the server never re-hashes at login.
HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
CHEAP = {"password_time_cost": 1, "password_memory_kib": 8192, "password_parallelism": 1}
CHEAP_ENV = {f"MISSION_CONTROL_{k.upper()}": str(v) for k, v in CHEAP.items()}


async def add_account(
    engine: AsyncEngine,
    name: str,
    role: StaffRole | str,
    password: str,
    clock: Callable[[], datetime] | None = None,
) -> str:
    """Create the staff account `name`; returns its TOTP secret."""
    ctx = ServiceContext(
        engine=engine, clock=clock or utc_now, support=SupportSettings(hasher=HASHER)
    )
    added = await users.add_user(ctx, name, StaffRole(role), password, by=cli_actor("tests"))
    return str(pyotp.parse_uri(added.totp_uri).secret)


def cli_add_account(db_url: str, name: str, role: str, password: str) -> str:
    """`mission-control users add NAME --role ROLE` in a subprocess (the password twice on
    stdin); returns the TOTP secret from the URI it prints."""
    done = subprocess.run(
        [sys.executable, "-m", "mission_control.cli", "users", "add", name, "--role", role],
        input=f"{password}\n{password}\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **CHEAP_ENV, "MISSION_CONTROL_DB_URL": db_url},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return str(pyotp.parse_uri(done.stdout.strip()).secret)


def cli_disable_account(db_url: str, name: str) -> None:
    """`mission-control users disable NAME` in a subprocess."""
    done = subprocess.run(
        [sys.executable, "-m", "mission_control.cli", "users", "disable", name],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MISSION_CONTROL_DB_URL": db_url},
        check=False,
    )
    assert done.returncode == 0, done.stderr


class RefusingDirectory:
    async def verify(
        self, username: str, password: str, totp_code: str, *, source: str | None
    ) -> StaffIdentity | str:
        return "refused by the test directory"


def refusing(_ctx: ServiceContext) -> RefusingDirectory:
    """The factory named by MISSION_CONTROL_CONSOLE_STAFF_DIRECTORY=staff_store:refusing."""
    return RefusingDirectory()
