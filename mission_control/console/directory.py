"""Who may log in: the `StaffDirectory` protocol the console authenticates through.

`verify(username, password, totp_code, source=address)` returns the `StaffIdentity` of an
accepted login or one line saying why not (generic on purpose: it should not tell which factor
was wrong). `source` is the client's address, for throttling by (source, name). The
directory owns password hashing, TOTP replay protection and throttling; the console owns only
the session that follows.

The directory is built once the database is open, by a factory taking the `ServiceContext`.
`MISSION_CONTROL_CONSOLE_STAFF_DIRECTORY=module:factory` names one; without it the console
refuses every login with a clear line (`NoStaffDirectory`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol

from mission_control.service.accounts.staff import login
from mission_control.service.context import ServiceContext
from mission_control.staff.identity import StaffIdentity


class StaffDirectory(Protocol):
    async def verify(
        self, username: str, password: str, totp_code: str, *, source: str | None
    ) -> StaffIdentity | str:
        """The identity of an accepted login, or the one-line refusal to show. `source` is the
        client's address, for throttling by (source, name)."""
        ...


DirectoryFactory = Callable[[ServiceContext], StaffDirectory]


class NoStaffDirectory:
    """Refuses every login: no account store is configured on this server."""

    async def verify(
        self, username: str, password: str, totp_code: str, *, source: str | None
    ) -> StaffIdentity | str:
        return "console logins are not configured on this server (no staff directory)"


def no_directory(_ctx: ServiceContext) -> StaffDirectory:
    return NoStaffDirectory()


class AccountDirectory:
    """The staff accounts of this Mission Control (`mission-control users add`): argon2
    password, TOTP never accepted twice, throttling and the audit entry, all in `staff.login`."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    async def verify(
        self, username: str, password: str, totp_code: str, *, source: str | None
    ) -> StaffIdentity | str:
        result = await login(self._ctx, username, password, totp_code, source=source)
        return result.identity if result.identity is not None else result.message


def account_directory(ctx: ServiceContext) -> StaffDirectory:
    return AccountDirectory(ctx)


class DirectoryNotFound(ValueError):
    """The configured `module:factory` cannot be imported or is not callable."""


def load_factory(spec: str) -> DirectoryFactory:
    """The factory named by ``module:attribute``; `DirectoryNotFound` (one line) otherwise."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise DirectoryNotFound(f"staff directory {spec!r}: expected module:factory")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise DirectoryNotFound(f"staff directory {spec!r}: {error}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise DirectoryNotFound(f"staff directory {spec!r}: {attribute} is not a callable")
    return factory  # type: ignore[no-any-return]
