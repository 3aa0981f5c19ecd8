"""Staff accounts for tests: a strong password, cheap argon2 parameters, TOTP codes."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from argon2 import PasswordHasher

from contract.audit.events import Actor, ActorKind
from contract.messages import StaffRole
from mission_control.service.accounts import staff, users
from mission_control.service.context import ServiceContext
from mission_control.staff.totp import code_at_step, time_step

PASSWORD = "Violet-harbour-42-kites"
ADMIN = Actor("root", ActorKind.STAFF, via="tests")
#: Low-cost argon2id: the same code path, a fraction of the time.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
#: The same for `mission-control` commands (read from the environment by `Settings`).
FAST_HASHER_ENV = {
    "MISSION_CONTROL_PASSWORD_TIME_COST": "1",
    "MISSION_CONTROL_PASSWORD_MEMORY_KIB": "1024",
    "MISSION_CONTROL_PASSWORD_PARALLELISM": "1",
}


def fast(ctx: ServiceContext) -> ServiceContext:
    """`ctx` with cheap password hashing."""
    return replace(ctx, support=replace(ctx.support, hasher=FAST_HASHER))


async def add_user(ctx: ServiceContext, name: str, role: str) -> str:
    """Create `name` with `PASSWORD`; returns the TOTP secret."""
    created = await users.add_user(fast(ctx), name, StaffRole(role), PASSWORD, by=ADMIN)
    return created.totp_uri.split("secret=")[1].split("&")[0]


async def staff_token(ctx: ServiceContext, name: str, role: str) -> str:
    """A new user `name` with `role` and an API token for it."""
    await add_user(ctx, name, role)
    return (await staff.create_staff_token(ctx, name, by=ADMIN)).token


def totp_code(secret: str, now: datetime, steps_ahead: int = 0) -> str:
    return code_at_step(secret, time_step(now) + steps_ahead)
