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

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from mission_control.service.accounts.directory_admission import admit
from mission_control.service.accounts.staff import LoginResult, begin_attempt, throttled_login
from mission_control.service.context import ServiceContext
from mission_control.staff.directory import LdapDirectory


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
    if attempt.waits_until is not None:
        return await throttled_login(
            ctx, username, attempt.source, attempt.now, attempt.waits_until
        )
    answer = await asyncio.to_thread(ask_directory, directory, username, password)
    return await admit(
        ctx,
        attempt,
        username,
        answer.groups,
        answer.reason,
        directory.roles,
        code,
        method="ldap",
        accepted="directory password accepted",
    )
