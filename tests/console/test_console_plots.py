"""Server-side SVG plots: well-formed, scaled, escaped, styled by class only."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from mission_control.console.plots import (
    Series,
    Threshold,
    bar_chart,
    bucket_width,
    downsample,
    line_chart,
    nice_ceiling,
    nice_scale,
    thresholds,
    tick_label,
    usage_bar,
)

SVG = "{http://www.w3.org/2000/svg}"
START = datetime(2030, 6, 1, tzinfo=UTC)
END = START + timedelta(days=7)


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def every(root: ET.Element, tag: str) -> list[ET.Element]:
    return list(root.iter(SVG + tag))


def test_a_line_spans_the_frame_and_scales_values() -> None:
    points = [(START, 0.0), (START + timedelta(days=3.5), 50.0), (END, 100.0)]
    root = parse(
        line_chart([Series("CPU", points)], start=START, end=END, label="cpu", gap=END - START)
    )
    (line,) = every(root, "polyline")
    coords = [tuple(map(float, p.split(","))) for p in line.attrib["points"].split()]
    xs, ys = [c[0] for c in coords], [c[1] for c in coords]
    assert xs == sorted(xs) and xs[0] < xs[1] < xs[2]
    assert ys[0] > ys[1] > ys[2]  # higher values draw higher (smaller y)
    assert abs((ys[0] + ys[2]) / 2 - ys[1]) < 0.2
    assert "s0" in line.attrib["class"]


def test_missing_samples_break_the_line() -> None:
    early = [(START + timedelta(minutes=2 * i), 10.0) for i in range(10)]
    late = [(START + timedelta(hours=5, minutes=2 * i), 20.0) for i in range(10)]
    root = parse(line_chart([Series("CPU", early + late)], start=START, end=END, label="x"))
    assert len(every(root, "polyline")) == 2


def test_a_lonely_sample_is_a_dot() -> None:
    root = parse(line_chart([Series("CPU", [(START, 5.0)])], start=START, end=END, label="x"))
    assert len(every(root, "circle")) == 1 and not every(root, "polyline")


def test_no_data_is_said_not_failed() -> None:
    root = parse(line_chart([Series("CPU", [])], start=START, end=END, label="x"))
    assert any(t.text == "no data yet" for t in every(root, "text"))
    bars = parse(bar_chart([], start=START, end=END, label="y"))
    assert any(t.text == "no data yet" for t in every(bars, "text"))


def test_days_are_ticked_over_a_week() -> None:
    root = parse(line_chart([], start=START, end=END, label="x"))
    labels = [t.text for t in every(root, "text") if t.text and t.text.startswith("Jun")]
    assert labels == [f"Jun {d:02d}" for d in range(1, 9)]


def test_text_is_escaped_and_no_inline_styles() -> None:
    markup = str(
        bar_chart(
            [Series("<script>", [(START, 3.0)])],
            start=START,
            end=END,
            label='a "quoted" <label>',
        )
    )
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    assert "style=" not in markup
    parse(markup)


def test_bars_stack_per_slot() -> None:
    hour = START + timedelta(hours=5)
    root = parse(
        bar_chart(
            [Series("prod", [(hour, 6.0)]), Series("dr", [(hour, 2.0)])],
            start=START,
            end=START + timedelta(days=1),
            label="x",
        )
    )
    prod, dr = every(root, "rect")
    assert prod.attrib["x"] == dr.attrib["x"]
    # dr sits on top of prod: its bottom is prod's top
    assert float(dr.attrib["y"]) + float(dr.attrib["height"]) == pytest.approx(
        float(prod.attrib["y"]), abs=0.2
    )
    assert float(prod.attrib["height"]) == pytest.approx(3 * float(dr.attrib["height"]), rel=0.02)
    ticks = [t.text for t in every(root, "text") if t.attrib.get("text-anchor") == "end"]
    assert ticks == ["0", "2", "4", "6", "8"]  # 6 + 2 = 8, in steps of 2


@pytest.mark.parametrize(
    ("value", "top", "step"),
    [
        (3.75, 4, 1),
        (5, 6, 2),
        (9, 10, 2.5),
        (37.5, 40, 10),
        (8, 8, 2),
        (100, 100, 25),
        (0, 1, 1),
        (0.3, 0.3, 0.1),
    ],
)
def test_the_y_axis_steps_are_round(value: float, top: float, step: float) -> None:
    assert nice_scale(value) == pytest.approx((top, step))


def test_y_ticks_read_exactly_and_carry_their_unit() -> None:
    hour = START + timedelta(hours=5)
    bars = bar_chart(
        [Series("prod", [(hour, 3.75)])],
        start=START,
        end=START + timedelta(days=1),
        label="x",
        y_title="host-unit hours",
    )
    root = parse(bars)
    ticks = [t.text for t in every(root, "text") if "tick" in t.attrib.get("class", "")]
    assert ticks[:5] == ["0", "1", "2", "3", "4"]
    assert [t.text for t in every(root, "text") if t.attrib.get("class") == "axis-title"] == [
        "host-unit hours"
    ]
    assert (
        tick_label(3.75) == "3.75" and tick_label(1.25) == "1.25" and tick_label(12500) == "12,500"
    )
    lines = parse(line_chart([], start=START, end=END, label="x"))
    assert [t.text for t in every(lines, "text")][:5] == ["0%", "25%", "50%", "75%", "100%"]


def test_thresholds_are_drawn_once_per_value_in_the_series_colour() -> None:
    shared = thresholds([("CPU", 85.0), ("Memory", 85.0), ("Disk", 85.0)])
    assert shared == [Threshold(85.0, "alert at 85 %")]
    mixed = thresholds([("CPU", 90.0), ("Memory", 85.0), ("Disk", 85.0)])
    assert mixed == [
        Threshold(85.0, "Memory, Disk alert at 85 %"),
        Threshold(90.0, "CPU alert at 90 %", series=0),
    ]
    root = parse(line_chart([], start=START, end=END, label="x", limits=mixed))
    drawn = [e for e in every(root, "line") if "threshold" in e.attrib["class"]]
    assert [e.attrib["class"] for e in drawn] == ["threshold", "threshold s0"]
    assert float(drawn[1].attrib["y1"]) < float(drawn[0].attrib["y1"])  # 90 % draws higher
    labels = [t.text for t in every(root, "text") if "threshold-label" in t.attrib["class"]]
    assert labels == ["Memory, Disk alert at 85 %", "CPU alert at 90 %"]


@pytest.mark.parametrize(
    ("value", "nice"), [(0, 1), (0.7, 1), (8, 10), (11, 20), (23, 25), (26, 50), (100, 100)]
)
def test_nice_ceiling(value: float, nice: float) -> None:
    assert nice_ceiling(value) == nice


def test_downsample_averages_into_buckets() -> None:
    points = [(START + timedelta(minutes=2 * i), float(i % 2)) for i in range(5040)]
    reduced = downsample(points, START, END, 360)
    assert len(reduced) == 360
    assert all(abs(v - 0.5) < 0.1 for _, v in reduced)
    assert [t for t, _ in reduced] == sorted(t for t, _ in reduced)
    assert downsample([], START, END, 10) == []
    assert downsample([(START - timedelta(days=1), 1.0)], START, END, 10) == []


def test_usage_bar_levels() -> None:
    assert 'class="fill ok"' in usage_bar(0.3, warn=0.7, critical=0.85)
    assert 'class="fill warn"' in usage_bar(0.75, warn=0.7, critical=0.85)
    assert 'class="fill crit"' in usage_bar(0.9, warn=0.7, critical=0.85)
    full = parse(usage_bar(1.7, warn=0.7, critical=0.85, width=80))
    assert float(every(full, "rect")[1].attrib["width"]) == 80
    assert usage_bar(None, warn=0.7, critical=0.85) == ""


@pytest.mark.parametrize("buckets", [1, 7, 100, 360, 5040])
def test_buckets_cover_both_ends_without_an_extra_one(buckets: int) -> None:
    width = bucket_width(START, END, buckets)
    assert int((END - START).total_seconds()) // width < buckets
    assert len(downsample([(START, 1.0), (END, 2.0)], START, END, buckets)) == min(2, buckets)
