"""One staff login attempt, decided purely: password, then TOTP.

`login` returns a `LoginOutcome`: whether the attempt is accepted, the one line to show (generic
on failure, so it never tells which factor was wrong, nor whether the name exists), the exact
reason for the audit log, the updated account to store (last TOTP step, upgraded hash) and the
audit event to append. The caller stores the account and the event in one transaction; it
throttles attempts before calling (`mission_control.staff.throttle`).

Guarantees: every attempt costs one argon2 verification, whether the name is unknown, the
account disabled or its stored hash unusable (verified against a dummy hash then), so the time
an answer takes does not tell them apart; a TOTP code is never accepted twice (the accepted step
is stored); every attempt yields an audit event naming the username.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from argon2 import PasswordHasher

from contract.audit.canonical import JsonValue
from contract.audit.events import Actor, ActorKind, AuditEvent
from contract.messages import StaffRole
from mission_control.staff.passwords import DEFAULT_HASHER, needs_rehash, verify_password
from mission_control.staff.totp import verify_totp

AUDIT_SCOPE = "mission-control"
REFUSED = "invalid username, password or code"


@dataclass(frozen=True)
class StaffAccount:
    username: str
    role: StaffRole
    password_hash: str
    #: The TOTP secret in the clear (the database holds it sealed).
    totp_secret: str
    last_totp_step: int | None = None
    disabled: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", StaffRole(self.role))


@dataclass(frozen=True)
class LoginOutcome:
    accepted: bool
    message: str
    reason: str
    account: StaffAccount | None
    event: AuditEvent


_dummy_hashes: dict[tuple[int, int, int], str] = {}


def dummy_hash(hasher: PasswordHasher) -> str:
    """A hash with `hasher`'s parameters that no password matches in practice, made once."""
    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = hasher.hash("not-a-real-account-password")
    return _dummy_hashes[key]


def _outcome(
    username: str,
    now: datetime,
    account: StaffAccount | None,
    *,
    accepted: bool,
    reason: str,
    message: str = REFUSED,
) -> LoginOutcome:
    detail: dict[str, JsonValue] = {"reason": reason, "known_user": account is not None}
    event = AuditEvent(
        at=now,
        actor=Actor(username, ActorKind.STAFF),
        action="staff.login" if accepted else "staff.login.failed",
        cluster=AUDIT_SCOPE,
        subject=username,
        detail=detail,
    )
    return LoginOutcome(accepted, message, reason, account, event)


def login(
    account: StaffAccount | None,
    username: str,
    password: str,
    code: str,
    now: datetime,
    *,
    hasher: PasswordHasher = DEFAULT_HASHER,
) -> LoginOutcome:
    """Decide one login attempt for `username` (whose stored `account` may be None)."""
    usable = account is not None and not account.disabled and not _unusable_hash(account)
    stored = account.password_hash if usable and account is not None else dummy_hash(hasher)
    password_ok = verify_password(stored, password, hasher=hasher) and usable
    if account is None:
        return _outcome(username, now, None, accepted=False, reason="unknown user")
    if account.disabled:
        return _outcome(username, now, account, accepted=False, reason="account disabled")
    if not password_ok:
        return _outcome(username, now, account, accepted=False, reason="wrong password")
    totp = verify_totp(account.totp_secret, code, account.last_totp_step, now)
    if totp.step is None:
        reason = f"TOTP refused: {totp.reason}"
        return _outcome(username, now, account, accepted=False, reason=reason)
    updated = replace(account, last_totp_step=totp.step)
    if needs_rehash(account.password_hash, hasher=hasher):
        updated = replace(updated, password_hash=hasher.hash(password))
    return _outcome(
        username,
        now,
        updated,
        accepted=True,
        reason="password and TOTP accepted",
        message="welcome",
    )


def _unusable_hash(account: StaffAccount) -> bool:
    """True when the stored hash is no argon2 hash at all (an account that cannot log in, such
    as those migration 0002 made for legacy token owners): verified against the dummy then."""
    return not account.password_hash.startswith("$argon2")
