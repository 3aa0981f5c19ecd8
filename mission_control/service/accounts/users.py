"""Staff accounts in the `users` table: creation, listing, disabling, and login bookkeeping.

Guarantees:
- `add_user` stores nothing unless the password passes the strength rule; the argon2id hash runs
  in a worker thread, never on the event loop.
- `claim_login` advances the last accepted TOTP step with a conditional UPDATE (`WHERE
  last_totp_step IS NULL OR last_totp_step < :step`): of two concurrent logins with the same
  code, exactly one wins.
- TOTP secrets are stored sealed with the secrets key (`ctx.secrets`, AES-256-GCM bound to the
  user name); `load_account` opens them, and `seal_totp_secrets` seals the plaintext ones written
  before sealing existed (the server runs it at start).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from contract.audit.events import Actor, AuditEvent
from contract.messages import StaffRole
from mission_control.db.schema import users
from mission_control.errors import AlreadyExists, NotFound, SecretsKeyMissing
from mission_control.service.accounts import audit_log
from mission_control.service.context import ServiceContext
from mission_control.service.refusals import InvalidInput
from mission_control.staff.auth import AUDIT_SCOPE, StaffAccount
from mission_control.staff.passwords import WeakPassword, hash_password
from mission_control.staff.secretbox import PREFIX as SEALED_PREFIX
from mission_control.staff.secretbox import SealedSecretUnreadable
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


def _totp_context(name: str) -> str:
    return f"totp:{name}"


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
    sealed = ctx.secrets.box(ctx.engine.url).seal(secret, _totp_context(name))
    now = ctx.clock()
    event = AuditEvent(now, by, "staff.user.created", AUDIT_SCOPE, name, {"role": role.value})
    try:
        async with ctx.engine.begin() as conn:
            await conn.execute(
                insert(users).values(
                    name=name,
                    role=role.value,
                    password_hash=password_hash,
                    totp_secret=sealed,
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


async def load_account(
    ctx: ServiceContext, conn: AsyncConnection, name: str
) -> StaffAccount | None:
    """The account `name` with its TOTP secret opened; None when there is no such user."""
    row = (await conn.execute(select(users).where(users.c.name == name))).first()
    if row is None:
        return None
    box = ctx.secrets.box(ctx.engine.url)
    return StaffAccount(
        username=row.name,
        role=StaffRole(row.role),
        password_hash=row.password_hash,
        totp_secret=box.open(row.totp_secret, _totp_context(row.name)),
        last_totp_step=row.last_totp_step,
        disabled=bool(row.disabled),
    )


async def seal_totp_secrets(ctx: ServiceContext) -> int:
    """Seal every TOTP secret still stored in the clear; how many were sealed. Safe to run
    concurrently (each row is replaced only if it still holds the plaintext read).

    Raises SecretsKeyMissing when there is no key, or when the key does not open a secret
    sealed before (another key): a server that cannot read them must not start."""
    box = ctx.secrets.box(ctx.engine.url)
    sealed = users.c.totp_secret.like(SEALED_PREFIX + "%")
    async with ctx.engine.begin() as conn:
        probe = (
            await conn.execute(select(users.c.name, users.c.totp_secret).where(sealed).limit(1))
        ).first()
        if probe is not None:
            try:
                box.open(probe.totp_secret, _totp_context(probe.name))
            except SealedSecretUnreadable:
                raise SecretsKeyMissing(
                    "the secrets key does not open the TOTP secrets in the database: give the "
                    "key they were sealed with"
                ) from None
        rows = (await conn.execute(select(users.c.name, users.c.totp_secret).where(~sealed))).all()
        for row in rows:
            await conn.execute(
                update(users)
                .where(users.c.name == row.name, users.c.totp_secret == row.totp_secret)
                .values(totp_secret=box.seal(row.totp_secret, _totp_context(row.name)))
            )
    return len(rows)


async def claim_login(conn: AsyncConnection, account: StaffAccount) -> bool:
    """Store an accepted login (TOTP step, upgraded hash) if no other login has used this or a
    later step meanwhile; False when it lost that race."""
    step = account.last_totp_step
    assert step is not None
    result = await conn.execute(
        update(users)
        .where(
            users.c.name == account.username,
            or_(users.c.last_totp_step.is_(None), users.c.last_totp_step < step),
        )
        .values(last_totp_step=step, password_hash=account.password_hash)
    )
    return result.rowcount == 1
