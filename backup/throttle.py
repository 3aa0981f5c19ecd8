"""Bandwidth limiting: a thread-safe token bucket, and parsing of rates like `100MiB/s`.

Guarantees: over any interval longer than `burst / rate`, the bytes let through by `consume`
average at most `rate` per second, shared among all threads using the same bucket. A request
larger than the burst is allowed and paid for by waiting (debt), so no write is ever refused.
Clock and sleep are injected for tests.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from backup.errors import ConfigError

UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*(?:/s)?\s*$", re.IGNORECASE)


def parse_rate(text: str) -> int:
    """Bytes per second from e.g. `100MiB/s`, `5MB/s`, `1048576`."""
    match = RATE.match(text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in UNITS:
        raise ConfigError(f"bandwidth limit {text!r}: write e.g. 100MiB/s, 50MB/s or 1GiB/s")
    rate = int(float(match.group(1)) * UNITS[unit])
    if rate < 1024:
        raise ConfigError(f"bandwidth limit {text!r} is below 1KiB/s")
    return rate


class TokenBucket:
    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else rate / 4
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def consume(self, amount: int) -> float:
        """Take `amount` bytes' worth of tokens, sleeping as needed; return the time slept."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= amount
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait
