"""A `StaffDirectory` for tests, screenshots and the benchmark: staff accounts in a table of its
own (``console_test_staff``), decided by the project's pure login (`mission_control.staff.auth`:
argon2id password, RFC 6238 TOTP never accepted twice, throttle).

It stands in for the account store that arrives with staff user accounts; the console is wired
to it with ``MISSION_CONTROL_CONSOLE_STAFF_DIRECTORY=staff_store:directory`` (tests/console on
PYTHONPATH). Passwords are hashed with cheap argon2 parameters to keep tests fast.
"""

from __future__ import annotations

import json
from datetime import datetime

from argon2 import PasswordHasher
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mission_control.protocol import StaffRole
from mission_control.service.context import ServiceContext
from mission_control.service.staff import StaffIdentity
from mission_control.staff.auth import StaffAccount, login
from mission_control.staff.throttle import ThrottleState

HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
test_metadata = MetaData()
accounts = Table(
    "console_test_staff",
    test_metadata,
    Column("username", String(128), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("totp_secret", String(64), nullable=False),
    Column("last_totp_step", Integer),
    Column("throttle", Text, nullable=False, default="{}"),
)


def _dump_throttle(state: ThrottleState) -> str:
    def iso(at: datetime | None) -> str | None:
        return None if at is None else at.isoformat()

    return json.dumps(
        {
            "failures": [t.isoformat() for t in state.failures],
            "lockouts": state.lockouts,
            "locked_until": iso(state.locked_until),
            "last_failure": iso(state.last_failure),
        }
    )


def _load_throttle(text: str) -> ThrottleState:
    raw = json.loads(text or "{}")

    def at(value: str | None) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)

    return ThrottleState(
        failures=tuple(datetime.fromisoformat(t) for t in raw.get("failures", [])),
        lockouts=int(raw.get("lockouts", 0)),
        locked_until=at(raw.get("locked_until")),
        last_failure=at(raw.get("last_failure")),
    )


class TableStaffDirectory:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def _ensure(self, conn: AsyncConnection) -> None:
        await conn.run_sync(lambda sync: test_metadata.create_all(sync, checkfirst=True))

    async def add(self, username: str, role: StaffRole, password: str, totp_secret: str) -> None:
        async with self.ctx.engine.begin() as conn:
            await self._ensure(conn)
            await conn.execute(
                insert(accounts).values(
                    username=username,
                    role=role,
                    password_hash=HASHER.hash(password),
                    totp_secret=totp_secret,
                    throttle="{}",
                )
            )

    async def verify(self, username: str, password: str, totp_code: str) -> StaffIdentity | str:
        async with self.ctx.engine.begin() as conn:
            await self._ensure(conn)
            row = (
                await conn.execute(select(accounts).where(accounts.c.username == username))
            ).first()
            account = None
            if row is not None:
                account = StaffAccount(
                    username=row.username,
                    role=row.role,
                    password_hash=row.password_hash,
                    totp_secret=row.totp_secret,
                    last_totp_step=row.last_totp_step,
                    throttle=_load_throttle(row.throttle),
                )
            outcome = login(account, username, password, totp_code, self.ctx.clock(), hasher=HASHER)
            if outcome.account is not None:
                await conn.execute(
                    update(accounts)
                    .where(accounts.c.username == username)
                    .values(
                        last_totp_step=outcome.account.last_totp_step,
                        throttle=_dump_throttle(outcome.account.throttle),
                        password_hash=outcome.account.password_hash,
                    )
                )
        if not outcome.accepted or outcome.account is None:
            return outcome.message
        return StaffIdentity(user=outcome.account.username, role=outcome.account.role.value)  # type: ignore[arg-type]


def directory(ctx: ServiceContext) -> TableStaffDirectory:
    """The factory named by MISSION_CONTROL_CONSOLE_STAFF_DIRECTORY=staff_store:directory."""
    return TableStaffDirectory(ctx)
