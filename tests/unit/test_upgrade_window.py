"""The maintenance window (pure: parsing, "is now inside", the next opening) and the leader's
decisions about offered releases; the clock is always given, no servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cluster.upgrade.offers import why_not_install, why_not_look
from cluster.upgrade.plan import NodeStep, Plan
from cluster.upgrade.window import DAYS, Window, WindowError, parse

SUNDAY_3AM = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)  # a Sunday
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
windows = st.builds(
    Window,
    st.frozensets(st.integers(0, 6), min_size=1),
    st.integers(0, 1439),
    st.integers(0, 1439),
)


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("Sun 02:00-04:00", "Sun 02:00-04:00"),
        ("sat,SUNDAY 1:00-5:00", "Sat,Sun 01:00-05:00"),
        ("Mon-Fri 22:00-02:00", "Mon,Tue,Wed,Thu,Fri 22:00-02:00"),
        ("Fri-Mon 02:00-24:00", "Mon,Fri,Sat,Sun 02:00-00:00"),
        ("daily 00:00-24:00", "daily 00:00-24:00"),
    ],
)
def test_specs_parse_to_a_canonical_form(spec: str, canonical: str) -> None:
    assert str(parse(spec)) == canonical
    assert parse(canonical) == parse(spec)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("Sun", "write DAYS HH:MM-HH:MM in UTC"),
        ("", "is not a window"),
        ("Sun 02:00-02:00", "ends when it starts"),
        ("Xyz 01:00-02:00", "'Xyz' is not a day"),
        ("Sun 25:00-26:00", "not a time of day"),
        ("Sun 02:60-03:00", "not a time of day"),
        ("Sun 24:00-01:00", "not a time of day"),
        (",Sun 01:00-02:00", "an empty day"),
    ],
)
def test_a_bad_spec_is_one_line_saying_why(spec: str, says: str) -> None:
    with pytest.raises(WindowError) as e:
        parse(spec)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_inside_is_from_the_start_up_to_but_not_at_the_end_in_utc() -> None:
    w = parse("Sun 02:00-04:00")
    assert w.contains(SUNDAY_3AM)
    assert w.contains(SUNDAY_3AM.replace(hour=2))
    assert not w.contains(SUNDAY_3AM.replace(hour=4))
    assert not w.contains(SUNDAY_3AM - timedelta(minutes=61))
    assert not w.contains(SUNDAY_3AM + timedelta(days=1))
    # 03:00 in UTC+05:00 is 22:00 UTC on Saturday: outside
    assert not w.contains(SUNDAY_3AM.replace(tzinfo=timezone(timedelta(hours=5))))
    with pytest.raises(ValueError):
        w.contains(SUNDAY_3AM.replace(tzinfo=None))


def test_a_window_past_midnight_ends_on_the_next_day_even_past_the_week() -> None:
    w = parse("Sun 23:00-01:00")
    monday_half_past_midnight = SUNDAY_3AM + timedelta(hours=21, minutes=30)
    assert monday_half_past_midnight.weekday() == 0
    assert w.contains(monday_half_past_midnight)
    assert not w.contains(monday_half_past_midnight + timedelta(hours=1))


@given(windows)
def test_canonical_form_parses_back_to_the_same_window(w: Window) -> None:
    if w.start == w.end and w.start != 0:
        return  # a whole day is spelt 00:00-24:00 only
    assert parse(str(w)) == w


@given(instants, st.integers(1, 1440))
def test_a_window_opened_at_an_instant_contains_it_and_not_its_end(
    now: datetime, minutes: int
) -> None:
    day = DAYS[now.weekday()]
    start = now.hour * 60 + now.minute
    end = (start + minutes) % 1440
    if end == start and start != 0:
        return  # not expressible
    spec = f"{day} {start // 60:02d}:{start % 60:02d}-" + (
        "24:00" if end == start else f"{end // 60:02d}:{end % 60:02d}"
    )
    w = parse(spec)
    assert w.contains(now)
    closes = now.replace(second=0, microsecond=0) + timedelta(minutes=minutes)
    assert not w.contains(closes)
    assert w.next_opening(now + timedelta(minutes=1)) > now


@given(instants, windows)
def test_next_opening_is_inside_and_not_before_now(now: datetime, w: Window) -> None:
    opens = w.next_opening(now)
    assert opens >= now.replace(second=0, microsecond=0)
    assert opens - now < timedelta(days=7, minutes=1)
    assert w.contains(opens)


def _plan(version: str, state: str) -> Plan:
    return Plan("p", version, "mission-control:", ("a",), {"a": NodeStep()}, 0.0, "x", state)


def test_the_leader_looks_only_inside_the_window_without_maintenance_or_a_running_plan() -> None:
    w = parse("Sun 02:00-04:00")
    assert why_not_look(w, False, None, SUNDAY_3AM) is None
    assert "no maintenance window" in str(why_not_look(None, False, None, SUNDAY_3AM))
    assert why_not_look(w, True, None, SUNDAY_3AM) == "maintenance is on"
    assert "is running" in str(why_not_look(w, False, _plan("2.0", "running"), SUNDAY_3AM))
    outside = why_not_look(w, False, _plan("2.0", "done"), SUNDAY_3AM + timedelta(hours=2))
    assert outside == "outside the window Sun 02:00-04:00 (next opens 2026-12-13 02:00 UTC)"


def test_an_offer_is_installed_once_and_only_when_newer() -> None:
    assert why_not_install("2.0", "1.0", None, set()) is None
    assert why_not_install(None, "1.0", None, set()) == "no release is offered"
    assert "not newer" in str(why_not_install("1.0", "1.0", None, set()))
    assert "planned already (failed)" in str(
        why_not_install("2.0", "1.0", _plan("2.0", "failed"), set())
    )
    assert why_not_install("2.0", "1.0", _plan("1.5", "done"), set()) is None
    assert "refused" in str(why_not_install("2.0", "1.0", None, {"2.0"}))
