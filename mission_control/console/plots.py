"""Server-side SVG plots: time-series lines, stacked hourly bars, and small usage bars.

Pure functions from numbers to `Markup` (an SVG element ready to embed in HTML). Guarantees:
- the output is well-formed XML; every text is escaped;
- colours come from CSS classes (``s0``..``s5``, ``ok``/``warn``/``crit``), never from inline
  ``style`` attributes, so the console's Content-Security-Policy can forbid inline styles;
- a line breaks where samples are missing for longer than `gap` (a silent cluster shows as a
  hole, not as a straight line across it);
- the y axis is ticked at round steps (1, 2, 2.5 or 5 x 10^k: `nice_scale`), labelled exactly
  (3.75 reads "3.75", never "3.8"), with its unit on the ticks or as an axis title;
- alert thresholds are drawn as dashed lines, one per distinct value (`thresholds`);
- an empty series renders an empty frame with a "no data" note, never an error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from markupsafe import Markup, escape

# The same buckets as the database's averages (`service.fleet.history.resource_history`).
from mission_control.service.rules.resources import bucket_width as bucket_width

Point = tuple[datetime, float]

_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 22, 26
_Y_TICKS = 4  # about this many steps up the y axis


@dataclass(frozen=True)
class Series:
    """One named line (or bar stack) of (time, value) points, in time order."""

    label: str
    points: Sequence[Point]


@dataclass(frozen=True)
class Threshold:
    """A horizontal line at `value`: an alert threshold, of one series (its colour) or of all
    series that share it (`series` None)."""

    value: float
    label: str
    series: int | None = None


@dataclass(frozen=True)
class Frame:
    """The plotting area: maps times and values to pixel coordinates."""

    start: datetime
    end: datetime
    y_max: float
    width: int
    height: int

    @property
    def inner_width(self) -> float:
        return self.width - _LEFT - _RIGHT

    @property
    def inner_height(self) -> float:
        return self.height - _TOP - _BOTTOM

    def x(self, at: datetime) -> float:
        span = (self.end - self.start).total_seconds() or 1.0
        return _LEFT + (at - self.start).total_seconds() / span * self.inner_width

    def y(self, value: float) -> float:
        clamped = min(max(value, 0.0), self.y_max)
        return _TOP + self.inner_height * (1 - clamped / self.y_max)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is >= value (1 for anything <= 0)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0):
        if step * power >= value * (1 - 1e-12):
            return step * power
    return 10.0 * power


def nice_scale(value: float, ticks: int = _Y_TICKS) -> tuple[float, float]:
    """(top of the axis, step between ticks) for data up to `value`: the step is a
    `nice_ceiling` of value / ticks and the top the first multiple of it >= value, so
    3.75 gets (4, 1) and 37.5 gets (40, 10)."""
    step = nice_ceiling(value / ticks)
    return max(step * math.ceil(value / step * (1 - 1e-12)), step), step


def tick_label(value: float) -> str:
    """A tick value, exactly, thousands separated: 3.75 -> '3.75', 12500 -> '12,500'."""
    text = f"{value:,.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def thresholds(limits: Sequence[tuple[str, float]], unit: str = " %") -> list[Threshold]:
    """One `Threshold` per distinct value of `limits` ((series label, value) in series order):
    shared by every series, it is labelled "alert at 85 %"; else it names its series and takes
    the colour of the first one ("CPU alert at 90 %")."""
    by_value: dict[float, list[int]] = {}
    for index, (_, value) in enumerate(limits):
        by_value.setdefault(value, []).append(index)
    found = []
    for value, indexes in sorted(by_value.items()):
        text = f"alert at {tick_label(value)}{unit}"
        if len(indexes) == len(limits):
            found.append(Threshold(value, text))
            continue
        names = ", ".join(limits[i][0] for i in indexes)
        found.append(Threshold(value, f"{names} {text}", indexes[0] if len(indexes) == 1 else None))
    return found


def downsample(
    points: Sequence[Point], start: datetime, end: datetime, buckets: int
) -> list[Point]:
    """Average `points` (from `start` on) into buckets of `bucket_width` seconds (empty ones
    are dropped), each placed at its mean time: a week of 2-minute samples draws as a few
    hundred points. `service.fleet.history.resource_history` does the same in the database."""
    if buckets < 1 or not points:
        return []
    width = bucket_width(start, end, buckets)
    sums: dict[int, tuple[float, float, int]] = {}
    for at, value in points:
        offset = (at - start).total_seconds()
        if offset < 0:
            continue
        index = int(offset // width)
        t, v, n = sums.get(index, (0.0, 0.0, 0))
        sums[index] = (t + offset, v + value, n + 1)
    return [(start + timedelta(seconds=t / n), v / n) for _, (t, v, n) in sorted(sums.items())]


def _fmt(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _ticks(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """Midnights (UTC) for spans of two days or more, else every 6 hours, else every hour."""
    span = end - start
    if span >= timedelta(days=2):
        step, label = timedelta(days=1), "%b %d"
    elif span >= timedelta(hours=12):
        step, label = timedelta(hours=6), "%H:%M"
    else:
        step, label = timedelta(hours=1), "%H:%M"
    base = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if step == timedelta(days=1):
        base = base.replace(hour=0)
    elif step == timedelta(hours=6):
        base = base.replace(hour=base.hour - base.hour % 6)
    ticks = []
    at = base
    while at <= end:
        if at >= start:
            ticks.append((at, at.strftime(label)))
        at += step
    return ticks


def _axes(frame: Frame, step: float, y_unit: str, y_title: str = "") -> list[str]:
    parts = []
    if y_title:
        parts.append(f'<text class="axis-title" x="4" y="{_TOP - 10}">{escape(y_title)}</text>')
    for i in range(round(frame.y_max / step) + 1):
        value = step * i
        y = frame.y(value)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" y1="{y:.1f}" x2="{frame.width - _RIGHT}" '
            f'y2="{y:.1f}"/>'
            f'<text class="tick" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(tick_label(value))}{escape(y_unit)}</text>"
        )
    bottom = frame.height - _BOTTOM
    for at, label in _ticks(frame.start, frame.end):
        x = frame.x(at)
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{bottom}"/>'
            f'<text class="tick" x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    return parts


def _threshold_lines(frame: Frame, limits: Sequence[Threshold]) -> list[str]:
    parts = []
    right = frame.width - _RIGHT
    for limit in limits:
        if not 0 <= limit.value <= frame.y_max:
            continue
        colour = "" if limit.series is None else f" s{limit.series}"
        y = frame.y(limit.value)
        parts.append(
            f'<line class="threshold{colour}" x1="{_LEFT}" y1="{y:.1f}" x2="{right}" '
            f'y2="{y:.1f}"/><text class="threshold-label{colour}" x="{right - 4}" '
            f'y="{y - 4:.1f}" text-anchor="end">{escape(limit.label)}</text>'
        )
    return parts


def _open(frame: Frame, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" role="img" '
        f'viewBox="0 0 {frame.width} {frame.height}" width="{frame.width}" '
        f'height="{frame.height}" aria-label="{escape(label)}"><title>{escape(label)}</title>'
    )


def _no_data(frame: Frame) -> str:
    return (
        f'<text class="nodata" x="{_LEFT + frame.inner_width / 2:.1f}" '
        f'y="{_TOP + frame.inner_height / 2:.1f}" text-anchor="middle">no data yet</text>'
    )


def _runs(points: Sequence[Point], gap: timedelta) -> list[list[Point]]:
    runs: list[list[Point]] = []
    previous: datetime | None = None
    for at, value in points:
        if previous is None or at - previous > gap:
            runs.append([])
        runs[-1].append((at, value))
        previous = at
    return runs


def line_chart(
    series: Sequence[Series],
    *,
    start: datetime,
    end: datetime,
    label: str,
    y_max: float = 100.0,
    y_unit: str = "%",
    gap: timedelta = timedelta(minutes=15),
    limits: Sequence[Threshold] = (),
    width: int = 720,
    height: int = 220,
) -> Markup:
    """Lines for each series (class ``s<i>``) over [start, end], y from 0 to `y_max` (rounded
    up to a nice scale), with dashed `limits`."""
    top, step = nice_scale(y_max)
    frame = Frame(start, end, top, width, height)
    parts = [_open(frame, label), *_axes(frame, step, y_unit), *_threshold_lines(frame, limits)]
    if not any(s.points for s in series):
        parts.append(_no_data(frame))
    for index, one in enumerate(series):
        for run in _runs(one.points, gap):
            if len(run) == 1:
                at, value = run[0]
                parts.append(
                    f'<circle class="dot s{index}" cx="{frame.x(at):.1f}" '
                    f'cy="{frame.y(value):.1f}" r="1.5"/>'
                )
                continue
            coords = " ".join(f"{frame.x(at):.1f},{frame.y(v):.1f}" for at, v in run)
            parts.append(f'<polyline class="line s{index}" points="{coords}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    stacks: Sequence[Series],
    *,
    start: datetime,
    end: datetime,
    label: str,
    slot: timedelta = timedelta(hours=1),
    y_unit: str = "",
    y_title: str = "",
    width: int = 720,
    height: int = 220,
) -> Markup:
    """Stacked bars, one per `slot` starting at each point's time; series i has class ``s<i>``
    and stacks on top of the series before it. `y_title` names the y axis's unit."""
    totals: dict[datetime, float] = {}
    for one in stacks:
        for at, value in one.points:
            totals[at] = totals.get(at, 0.0) + max(value, 0.0)
    top, step = nice_scale(max(totals.values(), default=0.0))
    frame = Frame(start, end, top, width, height)
    parts = [_open(frame, label), *_axes(frame, step, y_unit, y_title)]
    if not totals:
        parts.append(_no_data(frame))
    bar_width = max(frame.x(start + slot) - frame.x(start) - 1.0, 1.0)
    base: dict[datetime, float] = {}
    for index, one in enumerate(stacks):
        for at, value in one.points:
            if at < start or at >= end or value <= 0:
                continue
            below = base.get(at, 0.0)
            top = below + value
            base[at] = top
            y_top, y_bottom = frame.y(top), frame.y(below)
            parts.append(
                f'<rect class="bar s{index}" x="{frame.x(at):.1f}" y="{y_top:.1f}" '
                f'width="{bar_width:.1f}" height="{max(y_bottom - y_top, 0.5):.1f}">'
                f"<title>{escape(one.label)} {at:%b %d %H:%M}: {escape(_fmt(value))}"
                f"{escape(y_unit)}</title></rect>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def usage_bar(fraction: float | None, *, warn: float, critical: float, width: int = 80) -> Markup:
    """A small horizontal gauge: class ``ok``, ``warn`` (>= warn) or ``crit`` (>= critical)."""
    if fraction is None:
        return Markup("")
    filled = min(max(fraction, 0.0), 1.0)
    level = "crit" if filled >= critical else "warn" if filled >= warn else "ok"
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gauge" width="{width}" height="8" '
        f'viewBox="0 0 {width} 8" aria-hidden="true"><rect class="track" width="{width}" '
        f'height="8" rx="2"/><rect class="fill {level}" width="{filled * width:.1f}" height="8" '
        f'rx="2"/></svg>'
    )


def sparkline(values: Sequence[float], *, label: str, width: int = 160, height: int = 28) -> Markup:
    """A small trend line of `values` (oldest first) scaled from 0 to their maximum; empty
    with fewer than two values. Each point carries its value as a tooltip."""
    if len(values) < 2:
        return Markup("")
    top = max(values) or 1.0
    step = (width - 4) / (len(values) - 1)
    points = [(2 + i * step, height - 2 - (v / top) * (height - 4)) for i, v in enumerate(values)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dots = "".join(
        f'<circle class="s0" cx="{x:.1f}" cy="{y:.1f}" r="2"><title>{escape(_fmt(v))} s</title>'
        "</circle>"
        for (x, y), v in zip(points, values, strict=True)
    )
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sparkline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}"><polyline class="line s0" fill="none" points="{line}"/>'
        f"{dots}</svg>"
    )
