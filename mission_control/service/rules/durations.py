"""Durations as people read them: the largest one or two units ("3 min", "2 h 5 min").

Alert texts use it ("no health check for 9 min"), and the console shows ages with it, so both
say the same thing. Pure; never raises on any timedelta.
"""

from __future__ import annotations

from datetime import timedelta


def duration(delta: timedelta) -> str:
    """The largest one or two units: '45 s', '3 min', '2 h 5 min', '4 d 3 h'."""
    seconds = int(abs(delta).total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
