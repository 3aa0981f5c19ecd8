"""The window sampler that bounds audit writes caused by unauthenticated callers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mission_control.service.rules.sampling import WindowSampler

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_one_admitted_per_key_and_window_with_the_count_of_the_rest() -> None:
    sampler = WindowSampler(window=timedelta(minutes=1))
    assert sampler.admit("10.0.0.1", T0) == 0
    assert [sampler.admit("10.0.0.1", T0 + timedelta(seconds=s)) for s in (1, 30, 59)] == [
        None,
        None,
        None,
    ]
    assert sampler.admit("10.0.0.2", T0 + timedelta(seconds=2)) == 0  # keys are separate
    assert sampler.admit("10.0.0.1", T0 + timedelta(seconds=60)) == 3
    assert sampler.admit("10.0.0.1", T0 + timedelta(seconds=61)) is None


def test_memory_is_bounded_by_forgetting_the_oldest_key() -> None:
    sampler = WindowSampler(max_keys=2)
    sampler.admit("a", T0)
    sampler.admit("b", T0)
    sampler.admit("c", T0)  # forgets "a"
    assert sampler.admit("a", T0) == 0  # admitted again: it was forgotten
    assert sampler.admit("c", T0) is None
