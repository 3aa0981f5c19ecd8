"""Login throttle: repeated failures lock an account for a time that doubles each lockout.

Pure: a `ThrottleState` goes in, a new one comes out; the caller stores it with the account.

- `max_failures` failures within `window` lock the account for `base_lockout`; each further
  lockout doubles it, up to `max_lockout`. The doubling level is forgotten after `forgive_after`
  without failures, or at the next successful login.
- While locked, attempts are refused without checking the password (no oracle, no extra cost),
  and they do not extend the lock, so an attacker cannot keep a user locked out forever by trying
  faster; the owner gets back in when the lock ends.
- Keyed by whatever the caller chooses (username; username and source address).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    base_lockout: timedelta = timedelta(minutes=1)
    max_lockout: timedelta = timedelta(hours=1)
    forgive_after: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if self.max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        if min(self.window, self.base_lockout, self.forgive_after) <= timedelta(0):
            raise ValueError("throttle durations must be longer than zero")
        if self.max_lockout < self.base_lockout:
            raise ValueError("max_lockout must be at least base_lockout")

    def lockout_for(self, level: int) -> timedelta:
        """Length of the lock after `level` earlier lockouts (doubling, capped)."""
        if level >= 32:
            return self.max_lockout
        return min(self.base_lockout * (1 << level), self.max_lockout)


@dataclass(frozen=True)
class ThrottleState:
    failures: tuple[datetime, ...] = ()
    lockouts: int = 0
    locked_until: datetime | None = None
    last_failure: datetime | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


def record_failure(state: ThrottleState, policy: ThrottlePolicy, now: datetime) -> ThrottleState:
    """The state after one more failed attempt at `now` (unchanged while locked)."""
    if state.locked(now):
        return state
    level = state.lockouts
    if state.last_failure is not None and now - state.last_failure >= policy.forgive_after:
        level = 0
    recent = tuple(t for t in state.failures if now - t < policy.window) + (now,)
    if len(recent) >= policy.max_failures:
        return ThrottleState(
            failures=(),
            lockouts=level + 1,
            locked_until=now + policy.lockout_for(level),
            last_failure=now,
        )
    return replace(state, failures=recent, lockouts=level, last_failure=now)


def record_success(state: ThrottleState) -> ThrottleState:
    """A successful login clears failures and the back-off level."""
    return ThrottleState()
