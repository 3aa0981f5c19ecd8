"""Staff login through the customer's LDAP directory (`ldap3`): bind as the person, read their
groups, map them to a role (`mission_control.staff.directory`).

Guarantees:
- Throttled and audited exactly as a local login (`staff.login`): the attempt is counted per
  (source, name) and per source before anything is checked, every evaluated attempt is an audit
  entry with its exact reason, and every refusal is the same line (401 `login_refused`).
- The directory decides: a wrong password, a person in no mapped group or an unreachable
  directory is refused. The role is the directory's at every login; the local account of the
  same name is created (it cannot log in locally: no password) or its role brought in line, so
  tokens act with the role the directory gave last.
- A second factor stays required for support roles: the built-in TOTP of the local account of
  the same name (enrolled with `mission-control users add`); a support person without one is
  refused. Operators and admins sign in with the directory's password alone.
- An empty password is refused before the directory is asked (an LDAP bind with an empty
  password is an anonymous bind, which many servers accept).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from datetime import datetime

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn
from sqlalchemy import insert, update

from contract.audit.canonical import JsonValue
from contract.audit.events import Actor, ActorKind, AuditEvent
from contract.messages import StaffRole
from mission_control.db.schema import users
from mission_control.service.accounts import audit_log, login_throttle
from mission_control.service.accounts.staff import LoginResult, begin_attempt, throttled_login
from mission_control.service.context import ServiceContext
from mission_control.staff import auth
from mission_control.staff.directory import LdapDirectory, role_for
from mission_control.staff.identity import StaffIdentity
from mission_control.staff.totp import verify_totp

SECOND_FACTOR_ROLES = frozenset({StaffRole.SUPPORT_L2, StaffRole.SUPPORT_L3})
#: What the local account of a directory person holds instead of a password hash.
NO_LOCAL_PASSWORD = "!directory"


@dataclass(frozen=True)
class DirectoryAnswer:
    """The person's groups when the directory accepted the password, else why not."""

    groups: tuple[str, ...] | None
    reason: str = ""


def ask_directory(directory: LdapDirectory, username: str, password: str) -> DirectoryAnswer:
    """Bind as `username` over TLS and read their groups (blocking: run it in a thread)."""
    if not password:
        return DirectoryAnswer(None, "empty password")
    tls = ldap3.Tls(
        ca_certs_file=str(directory.ca_file) if directory.ca_file else None,
        validate=ssl.CERT_REQUIRED,
        version=ssl.PROTOCOL_TLS_CLIENT,
    )
    server = ldap3.Server(
        directory.url,
        use_ssl=directory.url.startswith("ldaps://"),
        tls=tls,
        connect_timeout=directory.timeout_s,
    )
    dn = directory.user_dn.format(username=escape_rdn(username))
    conn = ldap3.Connection(server, user=dn, password=password, receive_timeout=directory.timeout_s)
    try:
        conn.open()
        if directory.start_tls and not conn.start_tls():
            return DirectoryAnswer(None, "directory unavailable: StartTLS refused")
        if not conn.bind():
            return DirectoryAnswer(None, "wrong password or unknown person (directory)")
        attribute = directory.group_name_attribute
        conn.search(
            directory.group_base,
            directory.group_filter.format(dn=escape_filter_chars(dn)),
            attributes=[attribute],
        )
        groups = tuple(str(v) for entry in conn.entries for v in entry[attribute].values)
        return DirectoryAnswer(groups)
    except (LDAPException, OSError, ssl.SSLError) as e:
        return DirectoryAnswer(None, f"directory unavailable: {type(e).__name__}: {e}"[:300])
    finally:
        with contextlib.suppress(LDAPException, OSError):  # a broken TLS handshake: gone
            conn.unbind()


def _event(
    username: str, now: datetime, accepted: bool, detail: dict[str, JsonValue]
) -> AuditEvent:
    return AuditEvent(
        now,
        Actor(username, ActorKind.STAFF, via="ldap"),
        "staff.login" if accepted else "staff.login.failed",
        auth.AUDIT_SCOPE,
        username,
        {"method": "ldap", **detail},
    )


async def login_ldap(
    ctx: ServiceContext,
    directory: LdapDirectory,
    username: str,
    password: str,
    code: str,
    *,
    source: str | None,
) -> LoginResult:
    """Check `username`'s password with the directory and, for support roles, their TOTP
    code: the identity (with the directory's role), or the one refusal line."""
    attempt = await begin_attempt(ctx, username, source)
    now, key, account = attempt.now, attempt.source, attempt.account
    if attempt.waits_until is not None:
        return await throttled_login(ctx, username, key, now, attempt.waits_until)
    answer = await asyncio.to_thread(ask_directory, directory, username, password)
    role = role_for(answer.groups or (), directory.roles)
    groups: list[JsonValue] = list(answer.groups or ())
    reason = answer.reason
    step: int | None = None
    if answer.groups is not None and role is None:
        reason = "in no group mapped to a role"
    elif account is not None and account.disabled:
        reason = "account disabled"
    elif role in SECOND_FACTOR_ROLES:
        if account is None or not account.totp_secret:
            reason = "support role needs a second factor: no TOTP enrolled (users add)"
        else:
            totp = verify_totp(account.totp_secret, code, account.last_totp_step, now)
            step, reason = (
                totp.step,
                "" if totp.step is not None else f"TOTP refused: {totp.reason}",
            )
    async with ctx.engine.begin() as conn:
        if role is None or reason:
            detail: dict[str, JsonValue] = {"reason": reason, "groups": groups}
            await audit_log.record(conn, ctx, [_event(username, now, False, detail)])
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
                detail = {"reason": "TOTP refused: code already used", "groups": groups}
                await audit_log.record(conn, ctx, [_event(username, now, False, detail)])
                return LoginResult(None, auth.REFUSED)
        await login_throttle.forget(conn, key, username)
        detail = {"reason": "directory password accepted", "groups": groups, "role": role.value}
        await audit_log.record(conn, ctx, [_event(username, now, True, detail)])
    return LoginResult(StaffIdentity(username, role), "welcome")
