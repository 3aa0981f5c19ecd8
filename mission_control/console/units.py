"""Numbers as people read them: binary sizes (GiB), percentages, ages ("3 min ago").

Pure functions, used as Jinja filters. Guarantees: never raise on any finite input, `None`
renders as an em dash, sizes use IEC units (KiB = 1024 B) with at most 3 significant digits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

# Re-exported as a Jinja filter: the console and alert texts read durations alike.
from mission_control.service.rules.durations import duration as duration

DASH = "—"
_IEC = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def size(value: float | None) -> str:
    """1536 -> '1.5 KiB'; 32 * 2**30 -> '32 GiB'."""
    if value is None:
        return DASH
    amount = float(value)
    unit = 0
    while abs(amount) >= 1024 and unit < len(_IEC) - 1:
        amount /= 1024
        unit += 1
    if unit == 0:
        return f"{amount:.0f} B"
    text = f"{amount:.1f}" if abs(amount) < 100 else f"{amount:.0f}"
    return f"{text.removesuffix('.0')} {_IEC[unit]}"


def percent(fraction: float | None, digits: int = 0) -> str:
    """0.4567 -> '46 %' (a fraction in, a percentage out)."""
    if fraction is None:
        return DASH
    return f"{fraction * 100:.{digits}f} %"


def number(value: float | None) -> str:
    """12345.0 -> '12,345'; 2.5 -> '2.5'."""
    if value is None:
        return DASH
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def ago(moment: datetime | None, now: datetime) -> str:
    """'3 min ago', 'just now', 'in 2 h' (a moment in the future), or a dash for None."""
    if moment is None:
        return DASH
    delta = now - moment
    if abs(delta) < timedelta(seconds=5):
        return "just now"
    if delta < timedelta(0):
        return f"in {duration(delta)}"
    return f"{duration(delta)} ago"


def timestamp(moment: datetime | None) -> str:
    """'2030-06-01 12:00 UTC' (minutes; the console always shows UTC)."""
    if moment is None:
        return DASH
    return moment.strftime("%Y-%m-%d %H:%M UTC")
