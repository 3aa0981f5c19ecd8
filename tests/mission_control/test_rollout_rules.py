"""The fleet rollout state machine, pure: selectors, wave sizes and each step's decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mission_control.service.rules.rollouts import (
    ClusterProgress,
    ClusterRecord,
    RolloutSnapshot,
    RolloutSpecError,
    RolloutState,
    parse_selector,
    parse_waves,
    step,
    wave_sizes,
)

T0 = datetime(2030, 6, 1, tzinfo=UTC)
V = "1.5.0"
KNOWN = [
    ClusterRecord("id-c", "c", "US"),
    ClusterRecord("id-a", "a", "EU"),
    ClusterRecord("id-b", "b", "EU"),
]


def test_selectors_pick_in_name_order() -> None:
    assert [c.name for c in parse_selector("all").pick(KNOWN)] == ["a", "b", "c"]
    assert [c.name for c in parse_selector("geography=EU").pick(KNOWN)] == ["a", "b"]
    assert [c.name for c in parse_selector("c,a").pick(KNOWN)] == ["a", "c"]
    with pytest.raises(RolloutSpecError, match="no cluster named zz"):
        parse_selector("a,zz").pick(KNOWN)
    for bad in ("", "geography=", "a,,b", "a b"):
        with pytest.raises(RolloutSpecError):
            parse_selector(bad)


def test_waves_are_cumulative_rounded_up_and_reach_everyone() -> None:
    assert wave_sizes(parse_waves("1,10%,50%,100%"), 40) == (1, 4, 20, 40)
    assert wave_sizes(parse_waves("1,10%,50%,100%"), 3) == (1, 2, 3)
    assert wave_sizes(parse_waves("1,2,3"), 3) == (1, 2, 3)
    assert wave_sizes(parse_waves("2"), 5) == (2, 5)
    assert wave_sizes(parse_waves("50%,10"), 4) == (2, 4)
    for bad in ("", "0", "1,,2", "101%", "0%", "x", "-1", "1.5"):
        with pytest.raises(RolloutSpecError):
            parse_waves(bad)
    with pytest.raises(RolloutSpecError, match="empty"):
        wave_sizes(parse_waves("1"), 0)


@given(
    st.lists(
        st.one_of(st.integers(1, 50).map(str), st.integers(1, 100).map(lambda p: f"{p}%")),
        min_size=1,
        max_size=6,
    ),
    st.integers(1, 200),
)
def test_wave_sizes_grow_strictly_and_end_at_the_selection(steps: list[str], n: int) -> None:
    sizes = wave_sizes(tuple(steps), n)
    assert sizes[-1] == n and sizes[0] >= 1
    assert all(b > a for a, b in zip(sizes, sizes[1:], strict=False))


def _snapshot(n: int = 3, sizes: tuple[int, ...] = (1, 2, 3)) -> RolloutSnapshot:
    clusters = tuple(ClusterProgress(f"id-{i}", f"c{i}", None, ("1.4.0",), True) for i in range(n))
    return RolloutSnapshot(V, RolloutState.ACTIVE, 0, sizes, clusters, timedelta(hours=1))


def _report(s: RolloutSnapshot, i: int, **changes: object) -> RolloutSnapshot:
    clusters = list(s.clusters)
    clusters[i] = replace(clusters[i], **changes)  # type: ignore[arg-type]
    return replace(s, clusters=tuple(clusters))


def _apply(s: RolloutSnapshot, now: datetime) -> RolloutSnapshot:
    """What the sweep records of a step."""
    d = step(s, now)
    clusters = tuple(
        replace(
            c,
            offered_at=now if c.id in d.offer else c.offered_at,
            finished=c.finished or c.id in d.finished,
        )
        for c in s.clusters
    )
    return replace(s, state=d.state, wave=d.wave, clusters=clusters)


def test_a_wave_starts_only_when_the_last_finished_healthy() -> None:
    s = _snapshot()
    first = step(s, T0)
    assert first.offer == ("id-0",) and "wave 1 of 3: offering" in first.reason
    s = _apply(s, T0)
    assert step(s, T0).offer == () and "waiting for c0" in step(s, T0).reason
    s = _report(s, 0, versions=(V, V, V), healthy=False)  # V everywhere but not healthy
    assert step(s, T0).offer == ()
    s = _report(s, 0, healthy=True)
    d = step(s, T0)
    assert d.wave == 1 and d.offer == ("id-1",) and "wave 2 of 3 starts" in d.reason
    s = _apply(s, T0)
    s = _report(s, 1, versions=(V,))
    s = _apply(_apply(s, T0), T0)
    assert s.wave == 2 and s.clusters[2].offered_at == T0
    s = _report(s, 2, versions=(V, V))
    d = step(s, T0)
    assert d.state is RolloutState.COMPLETED and "completed: 3 cluster(s)" in d.reason


def test_a_refusal_or_a_missed_deadline_pauses() -> None:
    s = _apply(_snapshot(), T0)
    refused = _report(s, 0, refused_at=T0 + timedelta(minutes=5))
    d = step(refused, T0 + timedelta(minutes=6))
    assert d.state is RolloutState.PAUSED and d.offer == ()
    assert d.failed == (("id-0", "c0 refused or rolled back 1.5.0"),)
    # a refusal from before the offer is not this rollout's
    old = _report(s, 0, refused_at=T0 - timedelta(days=1))
    assert step(old, T0 + timedelta(minutes=6)).state is RolloutState.ACTIVE
    late = step(s, T0 + timedelta(hours=2))
    assert late.state is RolloutState.PAUSED
    assert "did not reach 1.5.0 healthy in time (has 1.4.0)" in late.reason


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.booleans(), st.booleans(), st.integers(0, 200)),
        max_size=30,
    )
)
def test_waves_never_shrink_or_skip_and_a_paused_rollout_offers_nothing(
    events: list[tuple[int, bool, bool, int]],
) -> None:
    s = _snapshot(4, (1, 2, 4))
    now = T0
    for i, reached, refused, minutes in events:
        now += timedelta(minutes=minutes)
        s = _report(
            s,
            i,
            versions=(V,) if reached else ("1.4.0",),
            refused_at=now if refused else None,
        )
        d = step(s, now)
        assert s.wave <= d.wave <= s.wave + 1
        if s.state is not RolloutState.ACTIVE:
            assert d.offer == () and d.state is s.state
        if d.wave > s.wave:  # every cluster of the waves before finished healthy
            assert all(c.reached(V) or c.finished for c in s.clusters[: s.sizes[s.wave]])
        offered_wave = set(d.offer) <= {c.id for c in s.clusters[: s.sizes[d.wave]]}
        assert offered_wave
        s = _apply(s, now)
