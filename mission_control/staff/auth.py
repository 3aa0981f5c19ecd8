"""One staff login attempt, decided purely: throttle, password, then TOTP.

`login` returns a `LoginOutcome`: whether the attempt is accepted, the one line to show (generic
on failure, so it never tells which factor was wrong), the exact reason for the audit log, the
updated account to store (new throttle state, last TOTP step, upgraded hash) and the audit event
to append. The caller stores the account and the event in one transaction.

Guarantees: a locked account is refused before any secret is checked; an unknown username costs
the same argon2 work as a known one; a TOTP code is never accepted twice (the accepted step is
stored); every attempt, accepted or not, yields an audit event naming the username.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from argon2 import PasswordHasher

from contract.audit.canonical import JsonValue, format_time
from contract.audit.events import Actor, ActorKind, AuditEvent
from contract.messages import StaffRole
from mission_control.staff.passwords import DEFAULT_HASHER, needs_rehash, verify_password
from mission_control.staff.throttle import (
    ThrottlePolicy,
    ThrottleState,
    record_failure,
    record_success,
)
from mission_control.staff.totp import verify_totp

AUDIT_SCOPE = "mission-control"
REFUSED = "invalid username, password or code"


@dataclass(frozen=True)
class StaffAccount:
    username: str
    role: StaffRole
    password_hash: str
    totp_secret: str
    last_totp_step: int | None = None
    throttle: ThrottleState = field(default_factory=ThrottleState)
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


def _burn_hash_time(password: str, hasher: PasswordHasher) -> None:
    """Spend the time a real verification would, so unknown usernames are not revealed."""
    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = hasher.hash("not-a-real-account-password")
    verify_password(_dummy_hashes[key], password, hasher=hasher)


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
    if account is not None and account.throttle.locked_until is not None:
        detail["locked_until"] = format_time(account.throttle.locked_until)
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
    throttle: ThrottlePolicy | None = None,
    hasher: PasswordHasher = DEFAULT_HASHER,
) -> LoginOutcome:
    """Decide one login attempt for `username` (whose stored `account` may be None)."""
    policy = throttle or ThrottlePolicy()
    if account is None:
        _burn_hash_time(password, hasher)
        return _outcome(username, now, None, accepted=False, reason="unknown user")
    if account.disabled:
        return _outcome(username, now, account, accepted=False, reason="account disabled")
    until = account.throttle.locked_until
    if until is not None and account.throttle.locked(now):
        return _outcome(
            username,
            now,
            account,
            accepted=False,
            reason="locked after repeated failures",
            message=f"too many failed attempts; try again after {format_time(until)}",
        )

    def failed(reason: str) -> LoginOutcome:
        updated = replace(account, throttle=record_failure(account.throttle, policy, now))
        message = REFUSED
        locked_until = updated.throttle.locked_until
        if locked_until is not None and updated.throttle.locked(now):
            message = f"too many failed attempts; try again after {format_time(locked_until)}"
        return _outcome(username, now, updated, accepted=False, reason=reason, message=message)

    if not verify_password(account.password_hash, password, hasher=hasher):
        return failed("wrong password")
    totp = verify_totp(account.totp_secret, code, account.last_totp_step, now)
    if totp.step is None:
        return failed(f"TOTP refused: {totp.reason}")
    updated = replace(account, last_totp_step=totp.step, throttle=record_success(account.throttle))
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
