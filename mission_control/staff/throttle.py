"""Login throttle: growing delays per (source address, user name), a looser bound per source.

Pure: an `AttemptRecord` goes in, a new one comes out; the caller stores it under its key.

- Keyed by who asks and for what, never by the account alone: failures from one address for one
  name delay that address's next attempts at that name, and nobody else's, so an anonymous
  caller can slow itself down but cannot lock a staff member out (an administrator still can:
  `mission-control users disable`). The per-source record bounds one address trying many names.
- Unknown names are throttled exactly as known ones: the records never look at the account, so
  neither the answer nor its timing says whether a name exists.
- After `free_failures` failures, each further failure makes the key wait `base_delay * 2**k`
  (k = failures beyond the free ones, minus one), capped at `max_delay`. While a key waits,
  attempts are refused without checking anything and are not counted.
- A record is forgotten after `forgive_after` without failures; a successful login forgets its
  (source, name) record.

Does not: stop a caller with many addresses from trying one name from each (each address gets
its free failures and then its own delays), which is why a slow password hash and TOTP remain
the real protection.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Backoff:
    free_failures: int
    base_delay: timedelta
    max_delay: timedelta
    forgive_after: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.free_failures < 0:
            raise ValueError("free_failures cannot be negative")
        if min(self.base_delay, self.forgive_after) <= timedelta(0):
            raise ValueError("throttle durations must be longer than zero")
        if self.max_delay < self.base_delay:
            raise ValueError("max_delay must be at least base_delay")

    def delay_after(self, failures: int) -> timedelta:
        """How long a key waits after its `failures`-th failure (zero while some are free)."""
        beyond = failures - self.free_failures
        if beyond <= 0:
            return timedelta(0)
        if beyond > 32:
            return self.max_delay
        return min(self.base_delay * (1 << (beyond - 1)), self.max_delay)


@dataclass(frozen=True)
class ThrottlePolicy:
    #: One address trying one name: three free tries, then 1 s, 2 s, 4 s ... up to 15 min.
    per_name: Backoff = field(
        default_factory=lambda: Backoff(3, timedelta(seconds=1), timedelta(minutes=15))
    )
    #: One address trying any names: looser, it may serve several people (a NAT, an office).
    per_source: Backoff = field(
        default_factory=lambda: Backoff(30, timedelta(seconds=1), timedelta(minutes=15))
    )


@dataclass(frozen=True)
class AttemptRecord:
    failures: int = 0
    blocked_until: datetime | None = None
    last_failure: datetime | None = None

    def current(self, backoff: Backoff, now: datetime) -> AttemptRecord:
        """This record, or a fresh one when it has been forgiven by quiet time."""
        if self.last_failure is not None and now - self.last_failure >= backoff.forgive_after:
            return AttemptRecord()
        return self

    def blocked(self, now: datetime) -> bool:
        return self.blocked_until is not None and now < self.blocked_until


def record_failure(record: AttemptRecord, backoff: Backoff, now: datetime) -> AttemptRecord:
    """The record after one more failure at `now` (unchanged while it waits)."""
    record = record.current(backoff, now)
    if record.blocked(now):
        return record
    failures = record.failures + 1
    delay = backoff.delay_after(failures)
    return AttemptRecord(failures, now + delay if delay else None, now)


def source_key(remote: str | None) -> str:
    """The source an attempt is counted against: the IPv4 address, or the /64 of an IPv6 one
    (one host usually holds a whole /64); "unknown" when the transport gives none."""
    if not remote:
        return "unknown"
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return remote[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def client_address(
    remote: str | None, forwarded_for: str | None, trusted_proxies: Collection[str]
) -> str | None:
    """Who sent a request: the peer's address, or, when the peer is one of `trusted_proxies`
    (the TLS proxy in front of `serve`), the last address in `X-Forwarded-For` that is not a
    trusted proxy itself. A header from any other peer is ignored: anyone can write one."""
    if remote is None or remote not in trusted_proxies or not forwarded_for:
        return remote
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        if hop and hop not in trusted_proxies:
            return hop
    return remote
