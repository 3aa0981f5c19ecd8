"""What happens once a customer's directory (LDAP or OpenID Connect) has said who a person is:
the role from their groups, the second factor for support roles, the local account, the audit.

Guarantees (the same for every directory method):
- A person in no mapped group is refused; the role is the directory's at every login; the
  local account of the same name is created (no local password: it cannot log in locally) or
  its role brought in line, so tokens act with the role the directory gave last.
- A support role needs a second factor: the built-in TOTP of the local account of the same
  name, unless the method vouches for one (`provider_factor`: an OIDC `amr` the settings trust).
  A TOTP code is claimed in the same transaction: never accepted twice.
- A local admin account with its own password (the break-glass account) is never entered, nor
  its role changed, through a directory: a directory person of the same name is refused.
- Every evaluated attempt is one audit entry (`staff.login` / `staff.login.failed`) with the
  method, the groups and the exact reason; every refusal is the same line to the person.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import insert, update

from contract.audit.canonical import JsonValue
from contract.audit.events import Actor, ActorKind, AuditEvent
from contract.messages import StaffRole
from mission_control.db.schema import users
from mission_control.service.accounts import audit_log, login_throttle
from mission_control.service.accounts.staff import Attempt, LoginResult
from mission_control.service.context import ServiceContext
from mission_control.staff import auth
from mission_control.staff.directory import role_for
from mission_control.staff.identity import StaffIdentity
from mission_control.staff.totp import verify_totp

SECOND_FACTOR_ROLES = frozenset({StaffRole.SUPPORT_L2, StaffRole.SUPPORT_L3})
#: What the local account of a directory person holds instead of a password hash.
NO_LOCAL_PASSWORD = "!directory"


def _event(
    username: str, method: str, now: datetime, accepted: bool, detail: dict[str, JsonValue]
) -> AuditEvent:
    return AuditEvent(
        now,
        Actor(username, ActorKind.STAFF, via=method),
        "staff.login" if accepted else "staff.login.failed",
        auth.AUDIT_SCOPE,
        username,
        {"method": method, **detail},
    )


def needs_totp(role: StaffRole | None, provider_factor: bool) -> bool:
    """Whether this person must still type the built-in TOTP code."""
    return role in SECOND_FACTOR_ROLES and not provider_factor


async def admit(
    ctx: ServiceContext,
    attempt: Attempt,
    username: str,
    groups: tuple[str, ...] | None,
    reason: str,
    roles: Mapping[str, StaffRole],
    code: str,
    *,
    method: str,
    provider_factor: bool = False,
    accepted: str = "identity accepted",
    extra: Mapping[str, JsonValue] | None = None,
) -> LoginResult:
    """The identity (with the directory's role) or the one refusal line; `groups` None means
    the directory refused the person (`reason` says why)."""
    now, key, account = attempt.now, attempt.source, attempt.account
    role = role_for(groups or (), roles)
    listed: list[JsonValue] = list(groups or ())
    step: int | None = None
    if groups is not None and role is None:
        reason = "in no group mapped to a role"
    elif account is not None and account.disabled:
        reason = "account disabled"
    elif (
        account is not None
        and account.role == StaffRole.ADMIN
        and account.password_hash != NO_LOCAL_PASSWORD
    ):
        reason = "the name of a local admin account (break-glass): signs in only locally"
    elif needs_totp(role, provider_factor):
        if account is None or not account.totp_secret:
            reason = "support role needs a second factor: no TOTP enrolled (users add)"
        else:
            totp = verify_totp(account.totp_secret, code, account.last_totp_step, now)
            step, reason = (
                totp.step,
                "" if totp.step is not None else f"TOTP refused: {totp.reason}",
            )
    base: dict[str, JsonValue] = {"groups": listed, **(extra or {})}
    async with ctx.engine.begin() as conn:
        if role is None or reason:
            detail: dict[str, JsonValue] = {"reason": reason, **base}
            await audit_log.record(conn, ctx, [_event(username, method, now, False, detail)])
            return LoginResult(None, auth.REFUSED)
        if account is None:
            await conn.execute(
                insert(users).values(
                    name=username,
                    role=role.value,
                    password_hash=NO_LOCAL_PASSWORD,
                    totp_secret="",
                    created_at=now,
                    disabled=False,
                )
            )
        else:
            values: dict[str, object] = {"role": role.value}
            where = [users.c.name == username]
            if step is not None:  # the code is claimed: never accepted twice
                values["last_totp_step"] = step
                last = users.c.last_totp_step
                where.append(last.is_(None) | (last < step))
            done = await conn.execute(update(users).where(*where).values(**values))
            if done.rowcount != 1:
                detail = {"reason": "TOTP refused: code already used", **base}
                await audit_log.record(conn, ctx, [_event(username, method, now, False, detail)])
                return LoginResult(None, auth.REFUSED)
        await login_throttle.forget(conn, key, username)
        factor = "provider" if provider_factor and role in SECOND_FACTOR_ROLES else ""
        detail = {
            "reason": accepted,
            "role": role.value,
            **({"second_factor": factor} if factor else {}),
            **base,
        }
        await audit_log.record(conn, ctx, [_event(username, method, now, True, detail)])
    return LoginResult(StaffIdentity(username, role), "welcome")
