"""How runs, sizes and times read in the `managed backup` text output (pure, no imports of
the backup library, so the CLI starts fast)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def when_text(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def size_text(n: Any) -> str:
    value = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def run_line(s: dict[str, Any]) -> str:
    took = f"{s['duration']:.1f}s" if isinstance(s.get("duration"), float) else "-"
    line = f"backup {s['id']} {s['status']}: {size_text(s['bytes'])} in {took}"
    return line + (f": {s['reason']}" if s.get("reason") else "")
