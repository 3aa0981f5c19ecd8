"""Console sessions: created at login, found by cookie, expired when idle, ended at logout.

The console holds the cookie; this module holds the sessions (`console_sessions`).

Guarantees:
- The cookie carries 256 random bits; only its SHA-256 digest is stored, so a database leak
  does not hand out live sessions. Each login creates a fresh session (no fixation).
- A session is refused once idle for longer than `idle_timeout` or older than `max_age`
  (`verdict` is pure, judged on the injected clock) and is deleted when found so.
- `last_seen_at` is written at most once per `touch_interval`, so browsing does not turn every
  page view into a write; idle expiry is therefore exact to within that interval.
- Each session has its own CSRF token (see `csrf`), fixed for its lifetime.
- The session follows its account (`users`) at every request: `find_session` reads the user's
  current role and disabled flag in the same indexed lookup, so a disabled (or removed) account
  loses its sessions at once (`Verdict.DISABLED`) and a role change applies to the next page.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contract.audit.events import AuditEvent
from contract.messages import StaffRole
from mission_control.db.schema import console_sessions, users
from mission_control.service.accounts import audit_log
from mission_control.service.accounts.bearer import digest
from mission_control.service.context import ServiceContext
from mission_control.staff.auth import AUDIT_SCOPE
from mission_control.staff.identity import StaffIdentity


@dataclass(frozen=True)
class SessionPolicy:
    idle_timeout: timedelta = timedelta(minutes=30)
    max_age: timedelta = timedelta(hours=12)
    touch_interval: timedelta = timedelta(minutes=1)


@dataclass(frozen=True)
class ConsoleSession:
    id_hash: str
    user: str
    role: StaffRole
    created_at: datetime
    last_seen_at: datetime
    csrf_token: str
    # False when the account is disabled or gone: the session must end.
    account_enabled: bool = True

    @property
    def identity(self) -> StaffIdentity:
        return StaffIdentity(user=self.user, role=self.role)


class Verdict(StrEnum):
    ACTIVE = "active"
    IDLE = "idle"
    TOO_OLD = "too_old"
    DISABLED = "disabled"


def verdict(session: ConsoleSession, now: datetime, policy: SessionPolicy) -> Verdict:
    """Whether `session` may still be used at `now`."""
    if not session.account_enabled:
        return Verdict.DISABLED
    if now - session.created_at > policy.max_age:
        return Verdict.TOO_OLD
    if now - session.last_seen_at > policy.idle_timeout:
        return Verdict.IDLE
    return Verdict.ACTIVE


def needs_touch(session: ConsoleSession, now: datetime, policy: SessionPolicy) -> bool:
    return now - session.last_seen_at >= policy.touch_interval


async def open_session(
    engine: AsyncEngine, identity: StaffIdentity, now: datetime
) -> tuple[str, ConsoleSession]:
    """A new session for `identity`: the cookie value (give it to the browser) and the record."""
    cookie = secrets.token_urlsafe(32)
    session = ConsoleSession(
        id_hash=digest(cookie),
        user=identity.user,
        role=identity.role,
        created_at=now,
        last_seen_at=now,
        csrf_token=secrets.token_urlsafe(32),
    )
    async with engine.begin() as conn:
        await conn.execute(
            insert(console_sessions).values(
                id_hash=session.id_hash,
                user_name=session.user,
                role=session.role,
                created_at=session.created_at,
                last_seen_at=session.last_seen_at,
                csrf_token=session.csrf_token,
            )
        )
    return cookie, session


# One lookup by primary key on each side: the session, and its account's current state.
_FIND = select(
    console_sessions,
    users.c.role.label("current_role"),
    users.c.disabled.label("account_disabled"),
).select_from(console_sessions.outerjoin(users, users.c.name == console_sessions.c.user_name))


async def find_session(engine: AsyncEngine, cookie: str) -> ConsoleSession | None:
    """The session this cookie opens, whatever its age (judge it with `verdict`), with its
    account's current role; `account_enabled` is False when the account is disabled or gone."""
    if not cookie or len(cookie) > 128:
        return None
    async with engine.connect() as conn:
        row = (
            await conn.execute(_FIND.where(console_sessions.c.id_hash == digest(cookie)))
        ).first()
    if row is None:
        return None
    enabled = row.current_role is not None and not row.account_disabled
    return ConsoleSession(
        id_hash=row.id_hash,
        user=row.user_name,
        role=StaffRole(row.current_role if enabled else row.role),
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        csrf_token=row.csrf_token,
        account_enabled=enabled,
    )


async def touch(engine: AsyncEngine, session: ConsoleSession, now: datetime) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(console_sessions)
            .where(console_sessions.c.id_hash == session.id_hash)
            .values(last_seen_at=now)
        )


async def close_session(conn: AsyncConnection, session: ConsoleSession) -> None:
    """Delete `session` in the caller's transaction (logout audits in the same one)."""
    await conn.execute(
        delete(console_sessions).where(console_sessions.c.id_hash == session.id_hash)
    )


async def end_session(ctx: ServiceContext, session: ConsoleSession) -> None:
    """Delete a session that may no longer be used (idle, too old, its account disabled)."""
    async with ctx.engine.begin() as conn:
        await close_session(conn, session)


async def log_out(ctx: ServiceContext, session: ConsoleSession) -> None:
    """Delete the session and write its ``staff.logout`` audit entry, in one transaction."""
    event = AuditEvent(
        ctx.clock(),
        session.identity.actor,
        "staff.logout",
        AUDIT_SCOPE,
        session.user,
        {"client": "console"},
    )
    async with ctx.engine.begin() as conn:
        await close_session(conn, session)
        await audit_log.record(conn, ctx, [event])


async def prune_sessions(engine: AsyncEngine, now: datetime, policy: SessionPolicy) -> int:
    """Delete every session that can no longer be used; returns how many."""
    async with engine.begin() as conn:
        result = await conn.execute(
            delete(console_sessions).where(
                or_(
                    console_sessions.c.last_seen_at < now - policy.idle_timeout,
                    console_sessions.c.created_at < now - policy.max_age,
                )
            )
        )
    return int(result.rowcount)
