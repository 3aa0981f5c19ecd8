"""Staff accounts in the `users` table: creation, listing, disabling, and login bookkeeping.

Guarantees:
- `add_user` stores nothing unless the password passes the strength rule; the argon2id hash runs
  in a worker thread, never on the event loop.
- `claim_login` advances the last accepted TOTP step with a conditional UPDATE (`WHERE
  last_totp_step IS NULL OR last_totp_step < :step`): of two concurrent logins with the same
  code, exactly one wins.
- `claim_attempt` counts an attempt as a failure BEFORE any secret is checked, under the row lock
  (PostgreSQL `FOR UPDATE`; SQLite transactions are serial, `BEGIN IMMEDIATE`): of N concurrent
  attempts at most the throttle's `max_failures` are evaluated, the others find the account
  locked. A successful login then clears the count (`claim_login`).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from contract.audit.canonical import format_time, parse_time
from contract.audit.events import Actor, AuditEvent
from contract.messages import StaffRole
from mission_control.db.schema import users
from mission_control.errors import AlreadyExists, NotFound
from mission_control.service.accounts import audit_log
from mission_control.service.context import ServiceContext
from mission_control.service.refusals import InvalidInput
from mission_control.staff.auth import AUDIT_SCOPE, StaffAccount
from mission_control.staff.passwords import WeakPassword, hash_password
from mission_control.staff.throttle import ThrottleState, record_failure
from mission_control.staff.totp import new_totp_secret, provisioning_uri


@dataclass(frozen=True)
class NewUser:
    name: str
    role: StaffRole
    totp_uri: str


@dataclass(frozen=True)
class UserSummary:
    name: str
    role: StaffRole
    created_at: datetime
    disabled: bool


def throttle_to_text(state: ThrottleState) -> str:
    data: dict[str, Any] = {
        "failures": [format_time(t) for t in state.failures],
        "lockouts": state.lockouts,
        "locked_until": format_time(state.locked_until) if state.locked_until else None,
        "last_failure": format_time(state.last_failure) if state.last_failure else None,
    }
    return json.dumps(data, sort_keys=True)


def throttle_from_text(stored: str) -> ThrottleState:
    data = json.loads(stored or "{}")
    locked, last = data.get("locked_until"), data.get("last_failure")
    return ThrottleState(
        failures=tuple(parse_time(t) for t in data.get("failures", [])),
        lockouts=int(data.get("lockouts", 0)),
        locked_until=parse_time(locked) if locked else None,
        last_failure=parse_time(last) if last else None,
    )


async def add_user(
    ctx: ServiceContext, name: str, role: StaffRole, password: str, *, by: Actor
) -> NewUser:
    """Create a staff account; returns the TOTP enrolment URI (shown once)."""
    try:
        password_hash = await asyncio.to_thread(
            hash_password, password, name, hasher=ctx.support.hasher
        )
    except WeakPassword as error:
        raise InvalidInput(str(error)) from None
    secret = new_totp_secret()
    now = ctx.clock()
    event = AuditEvent(now, by, "staff.user.created", AUDIT_SCOPE, name, {"role": role.value})
    try:
        async with ctx.engine.begin() as conn:
            await conn.execute(
                insert(users).values(
                    name=name,
                    role=role.value,
                    password_hash=password_hash,
                    totp_secret=secret,
                    throttle=throttle_to_text(ThrottleState()),
                    created_at=now,
                    disabled=False,
                )
            )
            await audit_log.record(conn, ctx, [event])
    except IntegrityError:
        raise AlreadyExists(f"a staff user named {name!r} exists already") from None
    return NewUser(name, role, provisioning_uri(secret, name))


async def list_users(ctx: ServiceContext) -> list[UserSummary]:
    query = select(users.c.name, users.c.role, users.c.created_at, users.c.disabled)
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(query.order_by(users.c.name))).all()
    return [UserSummary(r.name, StaffRole(r.role), r.created_at, bool(r.disabled)) for r in rows]


async def disable_user(ctx: ServiceContext, name: str, *, by: Actor) -> None:
    """Disable an account: it can no longer log in, and its tokens stop working at once."""
    now = ctx.clock()
    async with ctx.engine.begin() as conn:
        result = await conn.execute(update(users).where(users.c.name == name).values(disabled=True))
        if result.rowcount != 1:
            raise NotFound(f"no staff user named {name!r}")
        event = AuditEvent(now, by, "staff.user.disabled", AUDIT_SCOPE, name, {})
        await audit_log.record(conn, ctx, [event])


async def load_account(conn: AsyncConnection, name: str) -> StaffAccount | None:
    row = (await conn.execute(select(users).where(users.c.name == name))).first()
    return None if row is None else _account(row)


def _account(row: Any) -> StaffAccount:
    return StaffAccount(
        username=row.name,
        role=StaffRole(row.role),
        password_hash=row.password_hash,
        totp_secret=row.totp_secret,
        last_totp_step=row.last_totp_step,
        throttle=throttle_from_text(row.throttle),
        disabled=bool(row.disabled),
    )


async def claim_login(conn: AsyncConnection, account: StaffAccount) -> bool:
    """Store an accepted login (TOTP step, cleared throttle, upgraded hash) if no other login
    has used this or a later step meanwhile; False when it lost that race."""
    step = account.last_totp_step
    assert step is not None
    result = await conn.execute(
        update(users)
        .where(
            users.c.name == account.username,
            or_(users.c.last_totp_step.is_(None), users.c.last_totp_step < step),
        )
        .values(
            last_totp_step=step,
            throttle=throttle_to_text(account.throttle),
            password_hash=account.password_hash,
        )
    )
    return result.rowcount == 1


@dataclass(frozen=True)
class AttemptClaim:
    """The account as it was before this attempt (None: no such user), and the throttle state
    stored for the attempt (counted as a failure until the login succeeds)."""

    account: StaffAccount | None
    counted: ThrottleState | None


async def claim_attempt(
    ctx: ServiceContext, conn: AsyncConnection, name: str, now: datetime
) -> AttemptClaim:
    """Count one login attempt for `name` under the row lock, before its secrets are checked.

    A disabled or locked account is not counted (a lock is never extended by attempts)."""
    row = (await conn.execute(select(users).where(users.c.name == name).with_for_update())).first()
    if row is None:
        return AttemptClaim(None, None)
    account = _account(row)
    state = account.throttle
    if account.disabled or state.locked(now):
        return AttemptClaim(account, None)
    counted = record_failure(state, ctx.support.throttle, now)
    await conn.execute(
        update(users).where(users.c.name == name).values(throttle=throttle_to_text(counted))
    )
    return AttemptClaim(account, counted)
