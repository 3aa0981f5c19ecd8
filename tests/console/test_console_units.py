"""Units as the console shows them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contract.messages import AlertKind
from mission_control.console import units
from mission_control.console.render import ALERT_LABELS
from mission_control.service.rules.alerts import silence_alert

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (32 * 1024**3, "32 GiB"),
        (int(33.5 * 1024**3), "33.5 GiB"),
        (1000 * 1024**3, "1000 GiB"),
        (5 * 1024**4, "5 TiB"),
        (150 * 1024**2, "150 MiB"),
    ],
)
def test_sizes_use_iec_units(value: int | None, text: str) -> None:
    assert units.size(value) == text


def test_percent_and_number() -> None:
    assert units.percent(0.4567) == "46 %"
    assert units.percent(0.4567, 1) == "45.7 %"
    assert units.percent(None) == "—"
    assert units.number(12345.0) == "12,345"
    assert units.number(2.25) == "2.2"


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=2), "just now"),
        (timedelta(seconds=45), "45 s ago"),
        (timedelta(minutes=3, seconds=20), "3 min ago"),
        (timedelta(hours=2), "2 h ago"),
        (timedelta(hours=2, minutes=5), "2 h 5 min ago"),
        (timedelta(days=4, hours=3), "4 d 3 h ago"),
        (timedelta(days=-1), "in 1 d"),
    ],
)
def test_ages_read_like_speech(delta: timedelta, text: str) -> None:
    assert units.ago(NOW - delta, NOW) == text


def test_missing_times_are_dashes() -> None:
    assert units.ago(None, NOW) == "—"
    assert units.timestamp(None) == "—"
    assert units.timestamp(NOW) == "2030-06-01 12:00 UTC"


@pytest.mark.parametrize(
    ("silent_for", "text"),
    [
        (timedelta(minutes=7), "no health check for 7 min (expected every 120 s)"),
        (timedelta(hours=5, minutes=3), "no health check for 5 h 3 min (expected every 120 s)"),
        (timedelta(minutes=816480), "no health check for 567 d (expected every 120 s)"),
    ],
)
def test_the_silent_alert_reads_in_human_units(silent_for: timedelta, text: str) -> None:
    changes = silence_alert(NOW - silent_for, NOW, timedelta(minutes=2), 3)
    assert changes[AlertKind.CLUSTER_SILENT] == text


def test_every_alert_kind_has_a_console_label() -> None:
    assert set(ALERT_LABELS) == set(AlertKind)
