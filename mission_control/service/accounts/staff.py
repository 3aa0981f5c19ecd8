"""Staff sessions and API tokens: login (password + TOTP), token issue, authentication, logout.

Guarantees:
- A token belongs to an existing user (`users`), is shown once and stored as a SHA-256 digest
  (`mission_control.staff.tokens`); it acts with its owner's CURRENT role, looked up at each use,
  so disabling or demoting a user takes effect at once. Revoked or expired tokens are refused.
- `login` needs the password (argon2id) and a TOTP code never accepted before (the accepted
  step is claimed with a conditional UPDATE, so two concurrent logins with one code cannot both
  win); failures are throttled per (source address, name), never per account alone. Every
  attempt, token issue and logout is in the audit log (throttled attempts: one entry per source
  and minute).
- Tokens issued before staff accounts existed (``mcs.`` prefix) keep working.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contract.audit.canonical import JsonValue, format_time
from contract.audit.events import Actor, ActorKind, AuditEvent
from contract.messages import StaffRole
from mission_control.db.schema import staff_tokens, users
from mission_control.errors import InvalidCredential, NotFound
from mission_control.service.accounts import audit_log, login_throttle
from mission_control.service.accounts import users as user_store
from mission_control.service.context import ServiceContext
from mission_control.service.refusals import InvalidState
from mission_control.staff import auth
from mission_control.staff.auth import StaffAccount
from mission_control.staff.identity import StaffIdentity
from mission_control.staff.throttle import source_key
from mission_control.staff.tokens import PREFIX, issue_token, token_digest

LEGACY_PREFIX = "mcs."
TokenKind = Literal["api", "session"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoginResult:
    """`identity` when the login is accepted; otherwise `message`, the one line to show."""

    identity: StaffIdentity | None
    message: str
    #: Set when the attempt was refused unchecked: this source waits until then.
    waits_until: datetime | None = None

    @property
    def throttled(self) -> bool:
        return self.waits_until is not None


@dataclass(frozen=True)
class IssuedStaffToken:
    token: str
    user: str
    role: StaffRole
    expires_at: datetime | None


async def create_staff_token(
    ctx: ServiceContext,
    user: str,
    *,
    by: Actor,
    kind: TokenKind = "api",
    expires_at: datetime | None = None,
    expect_role: str | None = None,
) -> IssuedStaffToken:
    """A new token for the existing, enabled `user`, with the user's role; returned once.

    `expect_role`, when given, must be the user's role (a check for scripts)."""
    now = ctx.clock()
    issued = issue_token(user, now, label=kind)
    async with ctx.engine.begin() as conn:
        row = (
            await conn.execute(select(users.c.role, users.c.disabled).where(users.c.name == user))
        ).first()
        if row is None:
            raise NotFound(f"no staff user named {user!r}: create it with `users add` first")
        if row.disabled:
            raise InvalidState(f"staff user {user!r} is disabled")
        if expect_role is not None and expect_role != row.role:
            raise InvalidState(f"staff user {user!r} has role {row.role}, not {expect_role}")
        await conn.execute(
            insert(staff_tokens).values(
                token_hash=issued.record.digest,
                user_name=user,
                role=row.role,
                created_at=now,
                expires_at=expires_at,
                kind=kind,
                hint=issued.record.hint,
            )
        )
        detail: dict[str, JsonValue] = {
            "kind": kind,
            "hint": issued.record.hint,
            "role": row.role,
            "expires_at": format_time(expires_at) if expires_at else None,
        }
        event = AuditEvent(now, by, "staff.token.issued", auth.AUDIT_SCOPE, user, detail)
        await audit_log.record(conn, ctx, [event])
    return IssuedStaffToken(issued.plaintext, user, StaffRole(row.role), expires_at)


def _looks_like_staff_token(token: str) -> bool:
    return token.startswith((PREFIX, LEGACY_PREFIX))


async def authenticate_staff(
    ctx: ServiceContext, token: str, *, remote: str | None = None
) -> StaffIdentity:
    """Who holds this token; InvalidCredential if it is unknown, revoked, expired, or its
    owner is disabled. A refused token is audited (`staff.token.refused`): its owner when the
    token was ever issued, else the token's id (a digest prefix, never the token) and `remote`.
    """
    if not _looks_like_staff_token(token):
        raise InvalidCredential("not a staff token")
    now = ctx.clock()
    query = (
        select(users.c.name, users.c.role)
        .select_from(staff_tokens.join(users, users.c.name == staff_tokens.c.user_name))
        .where(
            staff_tokens.c.token_hash == token_digest(token),
            staff_tokens.c.revoked_at.is_(None),
            or_(staff_tokens.c.expires_at.is_(None), staff_tokens.c.expires_at > now),
            users.c.disabled.is_(False),
        )
    )
    async with ctx.engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        await _token_refused(ctx, token, now, remote)
        raise InvalidCredential("unknown, revoked or expired staff token")
    return StaffIdentity(user=row.name, role=StaffRole(row.role))


async def _token_refused(
    ctx: ServiceContext, token: str, now: datetime, remote: str | None
) -> None:
    digest = token_digest(token)
    async with ctx.engine.connect() as conn:
        known = (
            await conn.execute(
                select(
                    staff_tokens.c.user_name,
                    staff_tokens.c.hint,
                    staff_tokens.c.revoked_at,
                    staff_tokens.c.expires_at,
                ).where(staff_tokens.c.token_hash == digest)
            )
        ).first()
    repeated = 0
    if known is None:
        # Anyone can send made-up tokens: bound the audit writes they cause (one entry per
        # address and minute, counting the rest); an issued token always names its owner.
        admitted = ctx.token_refusals.admit(remote or "unknown", now)
        if admitted is None:
            log.info("refused unknown staff token %s from %s", digest[:12], remote)
            return
        repeated, reason = admitted, "unknown token"
    elif known.revoked_at is not None:
        reason = "revoked token"
    elif known.expires_at is not None and known.expires_at <= now:
        reason = "expired token"
    else:
        reason = "owner disabled"
    detail: dict[str, JsonValue] = {
        "reason": reason,
        "token_id": digest[:12],
        "hint": known.hint if known is not None else None,
        "remote": remote,
    }
    if repeated:
        detail["refused_since_last_entry"] = repeated
    name = known.user_name if known is not None else "unknown"
    actor = Actor(name, ActorKind.STAFF, via="mission-control api")
    event = AuditEvent(now, actor, "staff.token.refused", auth.AUDIT_SCOPE, name, detail)
    async with ctx.engine.begin() as conn:
        await audit_log.record(conn, ctx, [event])


async def logout(ctx: ServiceContext, token: str, identity: StaffIdentity) -> None:
    """Revoke the token the caller presented (idempotent)."""
    now = ctx.clock()
    async with ctx.engine.begin() as conn:
        await conn.execute(
            update(staff_tokens)
            .where(staff_tokens.c.token_hash == token_digest(token))
            .where(staff_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        event = AuditEvent(now, identity.actor, "staff.logout", auth.AUDIT_SCOPE, identity.user)
        await audit_log.record(conn, ctx, [event])


async def revoke_leaked_token(
    conn: AsyncConnection,
    ctx: ServiceContext,
    token_hash: str,
    now: datetime,
    *,
    by: Actor,
    where: dict[str, JsonValue],
) -> bool:
    """Revoke the staff token whose digest is `token_hash`, reported leaked, inside `conn`'s
    transaction; audited (`staff.token.leaked`, naming its owner). False when no token has it."""
    owner = await conn.scalar(
        select(staff_tokens.c.user_name).where(staff_tokens.c.token_hash == token_hash)
    )
    if owner is None:
        return False
    await conn.execute(
        update(staff_tokens)
        .where(staff_tokens.c.token_hash == token_hash, staff_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    detail: dict[str, JsonValue] = {"token_id": token_hash[:12], **where}
    event = AuditEvent(now, by, "staff.token.leaked", auth.AUDIT_SCOPE, owner, detail)
    await audit_log.record(conn, ctx, [event])
    log.warning("staff token %s of %s reported leaked: revoked", token_hash[:12], owner)
    return True


def _failed_event(username: str, now: datetime, reason: str) -> AuditEvent:
    return AuditEvent(
        now,
        Actor(username, ActorKind.STAFF),
        "staff.login.failed",
        auth.AUDIT_SCOPE,
        username,
        {"reason": reason, "known_user": True},
    )


async def throttled_login(
    ctx: ServiceContext, username: str, source: str, now: datetime, until: datetime
) -> LoginResult:
    # Anyone can keep trying: bound the audit writes (one entry per source and minute).
    repeated = ctx.login_refusals.admit(source, now)
    if repeated is None:
        log.info("throttled a login attempt at %r from %s", username, source)
    else:
        detail: dict[str, JsonValue] = {
            "reason": "throttled after repeated failures",
            "source": source,
            "waits_until": format_time(until),
        }
        if repeated:
            detail["throttled_since_last_entry"] = repeated
        actor = Actor(username, ActorKind.STAFF)
        event = AuditEvent(now, actor, "staff.login.failed", auth.AUDIT_SCOPE, username, detail)
        async with ctx.engine.begin() as conn:
            await audit_log.record(conn, ctx, [event])
    message = f"too many failed attempts; try again after {format_time(until)}"
    return LoginResult(None, message, waits_until=until)


@dataclass(frozen=True)
class Attempt:
    """A login attempt, counted: when, from where (throttle key), the stored account if any,
    and until when this source must wait (None: go on and check)."""

    now: datetime
    source: str
    account: StaffAccount | None
    waits_until: datetime | None


async def begin_attempt(ctx: ServiceContext, username: str, source: str | None) -> Attempt:
    """Count the attempt (`login_throttle.claim`) before any secret is checked, whatever the
    method, and read the account."""
    now = ctx.clock()
    key = source_key(source)
    async with ctx.engine.begin() as conn:
        claim = await login_throttle.claim(ctx, conn, key, username, now)
        account = await user_store.load_account(ctx, conn, username)
    return Attempt(now, key, account, claim.waits_until)


async def login(
    ctx: ServiceContext, username: str, password: str, code: str, *, source: str | None
) -> LoginResult:
    """Check password and TOTP code for `username`, tried from `source` (the client's address):
    the identity, or one refusal line.

    The attempt is counted (`login_throttle.claim`, per source and name and per source) before
    any secret is checked; while those records wait, the attempt is refused at once (throttled).
    A success forgets the (source, name) record. Unknown names, disabled accounts and wrong
    factors get the same line at the same cost; the audit log gets the exact reason."""
    attempt = await begin_attempt(ctx, username, source)
    now, key, account = attempt.now, attempt.source, attempt.account
    if attempt.waits_until is not None:
        return await throttled_login(ctx, username, key, now, attempt.waits_until)
    outcome = await asyncio.to_thread(
        auth.login, account, username, password, code, now, hasher=ctx.support.hasher
    )
    event = outcome.event
    async with ctx.engine.begin() as conn:
        if outcome.accepted and outcome.account is not None:
            if await user_store.claim_login(conn, outcome.account):
                await login_throttle.forget(conn, key, username)
                await audit_log.record(conn, ctx, [event])
                return LoginResult(StaffIdentity(username, outcome.account.role), outcome.message)
            # Another login used this code (or a later one) between our read and our write.
            event = _failed_event(username, now, "TOTP refused: code already used")
        await audit_log.record(conn, ctx, [event])
    return LoginResult(None, auth.REFUSED)


@dataclass(frozen=True)
class TokenSummary:
    """A staff token as listed (never the token itself)."""

    id: int
    user: str
    kind: str
    hint: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


async def list_tokens(ctx: ServiceContext, user: str | None = None) -> list[TokenSummary]:
    """Every token ever issued (optionally of one user), oldest first."""
    query = select(staff_tokens).order_by(staff_tokens.c.id)
    if user is not None:
        query = query.where(staff_tokens.c.user_name == user)
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        TokenSummary(r.id, r.user_name, r.kind, r.hint, r.created_at, r.expires_at, r.revoked_at)
        for r in rows
    ]


async def revoke_token(ctx: ServiceContext, token_id: int, *, by: Actor) -> TokenSummary:
    """Revoke token `token_id` now (audited, naming who); revoking it again changes nothing."""
    now = ctx.clock()
    async with ctx.engine.begin() as conn:
        row = (
            await conn.execute(
                select(staff_tokens).where(staff_tokens.c.id == token_id).with_for_update()
            )
        ).first()
        if row is None:
            raise NotFound(f"no staff token {token_id}: see `tokens list`")
        revoked_at = row.revoked_at
        if revoked_at is None:
            revoked_at = now
            await conn.execute(
                update(staff_tokens).where(staff_tokens.c.id == token_id).values(revoked_at=now)
            )
            detail: dict[str, JsonValue] = {"token": token_id, "hint": row.hint, "kind": row.kind}
            event = AuditEvent(
                now, by, "staff.token.revoked", auth.AUDIT_SCOPE, row.user_name, detail
            )
            await audit_log.record(conn, ctx, [event])
    return TokenSummary(
        row.id, row.user_name, row.kind, row.hint, row.created_at, row.expires_at, revoked_at
    )
