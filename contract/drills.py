"""How a restore drill's RTO trend reads, the same on the cluster (`managed backup drill list`)
and in Mission Control's console (pure)."""

from __future__ import annotations

from collections.abc import Sequence


def rto_trend(points: Sequence[float]) -> str:
    """The newest RTO (last of `points`, oldest first) against the median of those before it:
    "steady" within 10%, else slower or faster by how much."""
    if len(points) < 2:
        return "not enough drills yet"
    *before, last = points
    median = sorted(before)[len(before) // 2]
    if median <= 0 or abs(last - median) <= 0.1 * median:
        return "steady"
    return f"{'slower' if last > median else 'faster'}: {last / median:.2f}x the median before"
