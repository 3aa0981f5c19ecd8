"""How this cluster reaches Mission Control: the `mission_control` key of its config.

`managed mc enroll` writes it (with the credential, in one transaction: `cluster.link.enrollment`);
the leader's exchange (`cluster.link.exchange`) reads it from every snapshot. Values that do not
parse (a hand-edited config) fall back to the defaults rather than stop the exchange.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

DAY = 86400.0
HOUR = 3600.0
DEFAULT_OUTAGE_LIMIT_DAYS = 14.0
MAX_OUTAGE_LIMIT_DAYS = 365.0
DEFAULT_RECENT_HOURS = 24.0
DEFAULT_HISTORY_DAYS = 30.0


def check_outage_limit_days(days: float) -> float:
    """`days` if it is a sane outage limit (more than 0, at most a year); ValueError otherwise."""
    if not (isinstance(days, int | float) and math.isfinite(days)):
        raise ValueError("the outage limit must be a number of days")
    if not 0 < days <= MAX_OUTAGE_LIMIT_DAYS:
        raise ValueError(
            f"the outage limit must be more than 0 and at most {MAX_OUTAGE_LIMIT_DAYS:g} days, "
            f"not {days:g}"
        )
    return float(days)


def _positive(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) and number > 0 else default


@dataclass(frozen=True)
class Intervals:
    """Seconds between the leader's messages of each kind."""

    health: float = 120.0
    license: float = 300.0
    consumption: float = HOUR
    heartbeat: float = 30.0

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Intervals:
        base = cls()
        return cls(
            **{
                k: _positive(d.get(k), getattr(base, k))
                for k in ("health", "license", "consumption", "heartbeat")
            }
        )


@dataclass(frozen=True)
class OutboxBound:
    """How many health checks wait in the outbox while Mission Control is unreachable.

    Every health check of the last `recent_hours` is kept; older ones are thinned to one per
    clock hour, for at most `history_days`. A license check is a question, so only the newest
    waits. Consumption, events, support and audit messages are never dropped.
    """

    recent_hours: float = DEFAULT_RECENT_HOURS
    history_days: float = DEFAULT_HISTORY_DAYS

    def health_recent(self, health_interval: float) -> int:
        """How many of the newest health checks are all kept (at least one)."""
        return max(1, math.ceil(self.recent_hours * HOUR / health_interval))

    @property
    def history_hours(self) -> int:
        return max(0, math.ceil(self.history_days * 24))

    def to_json(self) -> dict[str, float]:
        return {"recent_hours": self.recent_hours, "history_days": self.history_days}

    @classmethod
    def from_json(cls, d: Any) -> OutboxBound:
        d = d if isinstance(d, dict) else {}
        history = d.get("history_days", DEFAULT_HISTORY_DAYS)
        return cls(
            recent_hours=_positive(d.get("recent_hours"), DEFAULT_RECENT_HOURS),
            history_days=0.0 if history == 0 else _positive(history, DEFAULT_HISTORY_DAYS),
        )


@dataclass(frozen=True)
class Link:
    """How this cluster reaches Mission Control (the `mission_control` key of its config)."""

    url: str
    cluster_id: str
    ca_pem: str | None = None
    intervals: Intervals = field(default_factory=Intervals)
    outage_limit: float = DEFAULT_OUTAGE_LIMIT_DAYS * DAY
    enrolled_at: float | None = None
    outbox: OutboxBound = field(default_factory=OutboxBound)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Link | None:
        d = config.get("mission_control")
        if not isinstance(d, dict) or not d.get("url") or not d.get("cluster_id"):
            return None
        try:
            days = check_outage_limit_days(d.get("outage_limit_days", DEFAULT_OUTAGE_LIMIT_DAYS))
        except ValueError:
            days = DEFAULT_OUTAGE_LIMIT_DAYS
        enrolled_at = d.get("enrolled_at")
        return cls(
            url=str(d["url"]),
            cluster_id=str(d["cluster_id"]),
            ca_pem=d.get("ca_pem"),
            intervals=Intervals.from_json(d.get("intervals") or {}),
            outage_limit=days * DAY,
            enrolled_at=float(enrolled_at) if isinstance(enrolled_at, int | float) else None,
            outbox=OutboxBound.from_json(d.get("outbox")),
        )
