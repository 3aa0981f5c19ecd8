"""Audit hash chain: building, storage round trip, and detection of every kind of tampering."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.audit.canonical import CanonicalFormError, canonical_json, format_time, parse_time
from contract.audit.chain import (
    GENESIS_HASH,
    AuditEntry,
    AuditFormatError,
    Checkpoint,
    CheckpointSchedule,
    ProblemKind,
    append,
    verify_chain,
)
from contract.audit.events import Actor, ActorKind, AuditEvent

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ALICE = Actor("alice", ActorKind.ENGINEER, via="mission-control")
KEY = Ed25519PrivateKey.generate()
PUB = KEY.public_key()


def event(i: int) -> AuditEvent:
    return AuditEvent(
        at=T0 + timedelta(seconds=i),
        actor=ALICE,
        action="support.command",
        cluster="c1",
        subject=f"r{i}",
        detail={"n": i, "tags": ["a", "b"], "nested": {"ok": True, "none": None}},
    )


def build(n: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    for i in range(n):
        entries.append(append(entries[-1] if entries else None, event(i)))
    return entries


def checkpoint(entries: list[AuditEntry], seq: int, key: Ed25519PrivateKey = KEY) -> Checkpoint:
    return Checkpoint.sign(entries[seq - 1], T0 + timedelta(hours=1), key)


def test_append_links_and_numbers_entries() -> None:
    entries = build(3)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS_HASH
    assert entries[1].prev_hash == entries[0].hash
    assert all(e.hash == e.compute_hash() for e in entries)
    assert entries[0].actor.name == "alice"  # the human, with the service account in `via`


def test_intact_chain_verifies_and_reports_coverage() -> None:
    entries = build(10)
    result = verify_chain(entries, [checkpoint(entries, 6)], PUB)
    assert result.ok
    assert (result.entries, result.last_seq, result.anchored_seq, result.unanchored) == (
        10,
        10,
        6,
        4,
    )
    assert result.summary().startswith("ok: 10 entries")


def test_empty_log_verifies() -> None:
    assert verify_chain([], [], PUB).ok


def test_storage_round_trip_is_exact() -> None:
    entries = build(3)
    again = [AuditEntry.from_json(e.to_json()) for e in entries]
    assert again == entries
    assert verify_chain(again, [], PUB).ok
    cp = checkpoint(entries, 3)
    assert Checkpoint.from_json(cp.to_json()) == cp


def test_unreadable_records_raise_one_error() -> None:
    with pytest.raises(AuditFormatError):
        AuditEntry.from_json({"seq": 1})
    with pytest.raises(AuditFormatError):
        Checkpoint.from_json(
            {"seq": 1, "hash": "x", "at": "2025-01-01T00:00:00Z", "signature": "!"}
        )


@pytest.mark.parametrize("victim", [1, 4, 7])
def test_altered_entry_is_named(victim: int) -> None:
    entries = build(7)
    entries[victim - 1] = replace(entries[victim - 1], detail={"n": 999})
    result = verify_chain(entries, [], PUB)
    assert not result.ok
    assert result.problem is not None
    assert (result.problem.seq, result.problem.kind) == (victim, ProblemKind.ALTERED)
    assert result.summary() == f"entry {victim} altered: content does not match its hash"


def test_altered_actor_is_detected() -> None:
    entries = build(3)
    entries[1] = replace(entries[1], actor=Actor("mallory", ActorKind.ENGINEER))
    problem = verify_chain(entries, [], PUB).problem
    assert problem is not None and problem.seq == 2


@pytest.mark.parametrize("victim", [1, 3, 5])
def test_removed_entry_is_named(victim: int) -> None:
    entries = build(5)
    cps = [checkpoint(entries, 5)]  # without it, dropping the last entry would go unnoticed
    del entries[victim - 1]
    problem = verify_chain(entries, cps, PUB).problem
    assert problem is not None
    assert (problem.seq, problem.kind) == (victim, ProblemKind.REMOVED)


def test_removed_range_is_reported() -> None:
    entries = build(8)
    del entries[2:5]
    problem = verify_chain(entries, [], PUB).problem
    assert problem is not None
    assert problem.seq == 3 and "3..5" in problem.reason


def test_inserted_forged_entry_is_named() -> None:
    entries = build(5)
    # A forger appends a well-formed entry after entry 2 and keeps the old ones.
    forged = append(entries[1], event(100))
    tampered = entries[:2] + [forged] + entries[2:]
    problem = verify_chain(tampered, [], PUB).problem
    assert problem is not None
    assert (problem.seq, problem.kind) == (3, ProblemKind.INSERTED)


def test_entry_that_does_not_link_is_named() -> None:
    entries = build(4)
    relinked = replace(entries[2], prev_hash="f" * 64)
    entries[2] = replace(relinked, hash=relinked.compute_hash())
    problem = verify_chain(entries, [], PUB).problem
    assert problem is not None
    assert (problem.seq, problem.kind) == (3, ProblemKind.INSERTED)
    assert "does not link to entry 2" in problem.reason


def test_swapped_entries_are_detected() -> None:
    entries = build(4)
    entries[1], entries[2] = entries[2], entries[1]
    problem = verify_chain(entries, [], PUB).problem
    assert problem is not None and problem.seq == 2


def test_rewritten_and_rehashed_tail_is_caught_by_checkpoint() -> None:
    entries = build(10)
    cps = [checkpoint(entries, 3), checkpoint(entries, 8)]
    # The attacker edits entry 5 and recomputes every hash after it: the chain alone looks fine.
    rewritten = entries[:4]
    for e in entries[4:]:
        ev = e.event()
        if e.seq == 5:
            ev = replace(ev, detail={"n": -1})
        rewritten.append(append(rewritten[-1], ev))
    assert verify_chain(rewritten, [], PUB).ok
    result = verify_chain(rewritten, cps, PUB)
    assert result.problem is not None
    assert (result.problem.seq, result.problem.kind) == (4, ProblemKind.REWRITTEN)
    assert "4..8" in result.problem.reason
    assert result.anchored_seq == 3


def test_truncation_below_a_checkpoint_is_detected() -> None:
    entries = build(10)
    cps = [checkpoint(entries, 9)]
    problem = verify_chain(entries[:6], cps, PUB).problem
    assert problem is not None
    assert (problem.seq, problem.kind) == (7, ProblemKind.REMOVED)


def test_truncation_after_last_checkpoint_is_only_bounded() -> None:
    entries = build(10)
    result = verify_chain(entries[:8], [checkpoint(entries, 6)], PUB)
    # Documented limit: the unanchored tail can be cut undetected; the result says how much is.
    assert result.ok and result.anchored_seq == 6 and result.unanchored == 2


def test_forged_checkpoint_is_reported() -> None:
    entries = build(5)
    other = Ed25519PrivateKey.generate()
    good = checkpoint(entries, 2)
    forged = checkpoint(entries, 4, key=other)
    moved = replace(good, seq=3, hash=entries[2].hash)  # valid signature over other fields
    result = verify_chain(entries, [good, forged, moved], PUB)
    assert not result.ok and result.problem is None
    assert [p.seq for p in result.checkpoint_problems] == [3, 4]
    assert result.anchored_seq == 2
    assert "forged" in result.summary()


def test_checkpoint_verify_and_schedule() -> None:
    entries = build(5)
    cp = checkpoint(entries, 5)
    assert cp.verify(PUB)
    assert not replace(cp, at=cp.at + timedelta(seconds=1)).verify(PUB)
    schedule = CheckpointSchedule(every_entries=3, every=timedelta(minutes=10))
    assert not schedule.due(None, None, T0)
    assert schedule.due(None, entries[0], T0)
    last = Checkpoint.sign(entries[1], T0, KEY)
    assert not schedule.due(last, entries[1], T0 + timedelta(hours=1))  # nothing new
    assert not schedule.due(last, entries[2], T0 + timedelta(minutes=5))
    assert schedule.due(last, entries[4], T0 + timedelta(minutes=5))  # 3 new entries
    assert schedule.due(last, entries[2], T0 + timedelta(minutes=10))  # time elapsed


def test_canonical_forms() -> None:
    assert (
        canonical_json({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'.encode()
    )
    with pytest.raises(CanonicalFormError):
        canonical_json({"x": 1.5})
    with pytest.raises(CanonicalFormError):
        canonical_json({1: "x"})
    with pytest.raises(CanonicalFormError):
        format_time(datetime(2025, 1, 1))  # naive
    assert format_time(T0) == "2025-03-01T12:00:00.000000Z"
    assert parse_time(format_time(T0)) == T0
    with pytest.raises(CanonicalFormError):
        parse_time("yesterday")
    with pytest.raises(ValueError):
        AuditEvent(T0, ALICE, "x", "c1", "s", {"bad": 0.1})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        Actor(" ", ActorKind.OPERATOR)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=12),
    data=st.data(),
    edit=st.sampled_from(["alter", "delete", "duplicate"]),
)
def test_any_single_edit_is_found_at_its_position(n: int, data: st.DataObject, edit: str) -> None:
    entries = build(n)
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    tampered = list(entries)
    if edit == "alter":
        tampered[index] = replace(tampered[index], subject="changed")
    elif edit == "delete":
        del tampered[index]
    else:
        tampered.insert(index, tampered[index])
    result = verify_chain(tampered, [checkpoint(entries, n)], PUB)
    assert result.problem is not None
    assert result.problem.seq == index + 1
