"""The maintenance window: when the leader may install a release Mission Control offers.

A window is written `DAYS HH:MM-HH:MM`, in **UTC** (as backup schedules are): `Sun 02:00-04:00`,
`Sat,Sun 01:00-05:00`, `Mon-Fri 22:00-02:00` (an end before the start runs past midnight into
the next day), `daily 03:00-04:00`; `24:00` ends at midnight. Day names are English, three
letters or whole, any case.

Pure: `parse` and `Window.contains` take text and an instant (the clock is the caller's) and do
no I/O. Guarantees: a spec that does not parse is `WindowError` with one line saying why;
`str(parse(s))` is the canonical form, and it parses back to the same window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_MINUTES = 24 * 60
WEEK_MINUTES = 7 * DAY_MINUTES
_SPEC = re.compile(r"^\s*(\S+)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class WindowError(ValueError):
    """A window spec that does not parse; the message is one line."""


@dataclass(frozen=True)
class Window:
    """Days (0 = Monday) on which the window opens, and its start and end (minutes after
    midnight UTC; an end at or before the start is on the next day)."""

    days: frozenset[int]
    start: int
    end: int

    @property
    def minutes(self) -> int:
        """How long the window stays open."""
        return (self.end - self.start) % DAY_MINUTES or DAY_MINUTES

    def contains(self, now: datetime) -> bool:
        """True when `now` (an aware datetime; read in UTC) is inside the window."""
        if now.tzinfo is None:
            raise ValueError("a window is checked against an aware time (UTC)")
        utc = now.astimezone(UTC)
        at = utc.weekday() * DAY_MINUTES + utc.hour * 60 + utc.minute + utc.second / 60
        for day in self.days:
            opens = day * DAY_MINUTES + self.start
            since = (at - opens) % WEEK_MINUTES
            if since < self.minutes:
                return True
        return False

    def next_opening(self, now: datetime) -> datetime:
        """When the window next opens after `now` (now's minute start if it opens then)."""
        if now.tzinfo is None:
            raise ValueError("a window is checked against an aware time (UTC)")
        utc = now.astimezone(UTC).replace(second=0, microsecond=0)
        midnight = utc.replace(hour=0, minute=0)
        candidates = []
        for ahead in range(8):
            date = midnight + timedelta(days=ahead)
            if date.weekday() in self.days:
                opens = date + timedelta(minutes=self.start)
                if opens >= utc:
                    candidates.append(opens)
        return min(candidates)

    def __str__(self) -> str:
        days = (
            "daily" if len(self.days) == 7 else ",".join(DAYS[d].title() for d in sorted(self.days))
        )
        end = "24:00" if self.end == self.start else _clock(self.end)  # a whole day
        return f"{days} {_clock(self.start)}-{end}"


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _day(name: str) -> int:
    low = name.lower()
    if low in DAYS:
        return DAYS.index(low)
    if low in _FULL:
        return _FULL.index(low)
    raise WindowError(f"{name!r} is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)")


def _days(text: str) -> frozenset[int]:
    if text.lower() == "daily":
        return frozenset(range(7))
    found: set[int] = set()
    for part in text.split(","):
        first, sep, last = part.partition("-")
        if not first:
            raise WindowError(f"{text!r}: an empty day")
        if not sep:
            found.add(_day(first))
            continue
        a, b = _day(first), _day(last)
        found.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(found)


def _minutes(hours: str, minutes: str, end: bool) -> int:
    h, m = int(hours), int(minutes)
    if m > 59 or h > 24 or (h == 24 and (m or not end)):
        latest = "24:00" if end else "23:59"
        raise WindowError(f"{hours}:{minutes} is not a time of day (00:00 to {latest})")
    return h * 60 + m


def parse(spec: str) -> Window:
    """The window `spec` describes (see the module docstring); WindowError otherwise."""
    got = _SPEC.match(spec)
    if got is None:
        raise WindowError(
            f'{spec!r} is not a window: write DAYS HH:MM-HH:MM in UTC, e.g. "Sun 02:00-04:00"'
        )
    days = _days(got.group(1))
    start = _minutes(got.group(2), got.group(3), end=False)
    end = _minutes(got.group(4), got.group(5), end=True) % DAY_MINUTES
    if start == end and got.group(4) != "24":
        raise WindowError(f"{spec!r}: the window ends when it starts")
    return Window(days, start, end)
