"""The soak's checkers on small hand-written histories: each invariant holds on a good one and
is caught, with the lines that prove it, on one that breaks it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from soak_checkers import (
    audit_complete,
    backups_sound,
    epochs_grow,
    exactly_once_in_order,
    first_violation,
    leader_recovers,
    mc_epoch_fencing,
    nothing_left_behind,
    single_leader,
    summary,
)
from soak_history import Event, parse


def history(*rows: tuple[Any, ...]) -> list[Event]:
    """Rows of (t, process, op, outcome, value) as the history file would hold them."""
    lines = [
        json.dumps({"t": t, "process": p, "op": op, "outcome": o, "value": v})
        for t, p, op, o, v in rows
    ]
    return parse(lines)


def write(t: float, zxid: int, leader: str, epoch: int) -> tuple[Any, ...]:
    return (
        t,
        "observer",
        "health-write",
        "info",
        {"zxid": zxid, "leader": leader, "epoch": epoch, "at": t},
    )


def deliver(
    t0: float,
    t: float,
    mid: str,
    epoch: int,
    status: int = 200,
    duplicate: bool = False,
    kind: str = "health",
) -> tuple[Any, ...]:
    value = {
        "kind": kind,
        "message_id": mid,
        "epoch": epoch,
        "status": status,
        "duplicate": duplicate,
        "t0": t0,
    }
    return (t, "mc-proxy", "deliver", "ok" if status < 300 else "fail", value)


def queued(t: float, seq: int, mid: str, kind: str = "health") -> tuple[Any, ...]:
    return (
        t,
        "observer",
        "outbox",
        "info",
        {"znode": f"m-{seq:010d}", "seq": seq, "message_id": mid, "kind": kind},
    )


def final_outbox(
    pending: list[str] | None = None, dead: list[str] | None = None
) -> tuple[Any, ...]:
    return (99.0, "final", "outbox", "info", {"pending": pending or [], "dead": dead or []})


# --- single leader -----------------------------------------------------------------------------


def test_single_leader_accepts_a_handover() -> None:
    h = history(
        write(1, 10, "n1", 1), write(2, 12, "n1", 1), write(3, 15, "n2", 2), write(4, 15, "n2", 2)
    )
    verdict = single_leader(h)
    assert verdict.ok and verdict.checks == 3  # the repeated zxid is one write


def test_single_leader_catches_a_deposed_leader_writing_on() -> None:
    # Seen out of order by the observer; ZooKeeper's order (zxid) shows n1 wrote after n2 took over.
    h = history(
        write(1, 10, "n1", 1), write(2, 15, "n2", 2), write(2.5, 14, "n3", 2), write(3, 17, "n1", 1)
    )
    verdict = single_leader(h)
    assert verdict.violation is not None
    assert "epoch 2 written by both" in verdict.violation.message
    h = history(write(1, 10, "n1", 1), write(2, 15, "n2", 2), write(3, 17, "n1", 1))
    verdict = single_leader(h)
    assert verdict.violation is not None
    assert "two nodes acting as leader" in verdict.violation.message
    assert [e.line for e in verdict.violation.evidence] == [2, 3]


def test_epochs_only_grow() -> None:
    ok = history(
        *[(i, "observer", "epoch", "info", {"zxid": 10 + i, "epoch": i}) for i in range(1, 4)]
    )
    assert epochs_grow(ok).ok and epochs_grow(ok).checks == 3
    bad = history(
        (1, "observer", "epoch", "info", {"zxid": 10, "epoch": 3}),
        (2, "observer", "epoch", "info", {"zxid": 11, "epoch": 3}),
    )
    violation = epochs_grow(bad).violation
    assert violation is not None and "from 3 to 3" in violation.message


# --- Mission Control's epoch fencing -------------------------------------------------------------


def test_mc_epoch_fencing_allows_overlapping_requests_and_refused_ones() -> None:
    h = history(
        deliver(1.0, 1.1, "a", 2),
        deliver(1.05, 1.2, "b", 1),  # sent before a was answered: no order between them
        deliver(2.0, 2.1, "c", 1, status=409),  # refused: stale
        deliver(3.0, 3.1, "d", 3),
    )
    assert mc_epoch_fencing(h).ok


def test_mc_epoch_fencing_catches_an_older_epoch_applied_later() -> None:
    h = history(deliver(1.0, 1.1, "a", 2), deliver(2.0, 2.1, "b", 1))
    violation = mc_epoch_fencing(h).violation
    assert violation is not None and "epoch 1 after applying one with epoch 2" in violation.message
    assert [e.line for e in violation.evidence] == [1, 2]


# --- exactly once, in order ----------------------------------------------------------------------


def test_exactly_once_accepts_a_resend_answered_as_duplicate() -> None:
    h = history(
        queued(0.5, 1, "a"),
        queued(0.6, 2, "b"),
        deliver(1.0, 1.1, "a", 1),
        deliver(1.2, 1.3, "b", 1, status=502),  # Mission Control applied it; the reply was lost
        deliver(2.0, 2.1, "b", 2, duplicate=True),
        queued(2.5, 3, "l1", kind="license"),
        queued(2.6, 4, "l2", kind="license"),  # l1 superseded while Mission Control was away
        deliver(3.0, 3.1, "l2", 2, kind="license"),
        final_outbox(),
        (99.5, "final", "mc-applied", "info", {"message_ids": ["a", "b", "l2"]}),
    )
    verdict = exactly_once_in_order(h)
    assert verdict.ok, verdict.violation
    assert "1 license checks superseded" in verdict.notes[0]


def test_exactly_once_catches_a_message_applied_twice() -> None:
    h = history(queued(0.5, 1, "a"), deliver(1.0, 1.1, "a", 1), deliver(2.0, 2.1, "a", 2))
    violation = exactly_once_in_order(h).violation
    assert violation is not None and "applied 2 times" in violation.message


def test_exactly_once_catches_a_lost_message() -> None:
    h = history(queued(0.5, 1, "a"), queued(0.6, 2, "b"), deliver(1.0, 1.1, "b", 1), final_outbox())
    violation = exactly_once_in_order(h).violation
    assert (
        violation is not None
        and "message a (health) was queued, never applied" in violation.message
    )


def test_exactly_once_catches_a_message_still_queued() -> None:
    h = history(queued(0.5, 1, "a"), final_outbox(pending=["a"]))
    violation = exactly_once_in_order(h).violation
    assert violation is not None and "still queued" in violation.message


def test_exactly_once_catches_a_duplicate_answer_for_a_message_never_applied() -> None:
    h = history(queued(0.5, 1, "a"), deliver(1.0, 1.1, "a", 1, duplicate=True))
    violation = exactly_once_in_order(h).violation
    assert violation is not None and "never applied" in violation.message


def test_in_order_catches_a_later_message_applied_first() -> None:
    h = history(
        queued(0.5, 1, "a"),
        queued(0.6, 2, "b"),
        deliver(1.0, 1.1, "b", 1),
        deliver(2.0, 2.1, "a", 1),
        final_outbox(),
    )
    violation = exactly_once_in_order(h).violation
    assert violation is not None and "applied before message" in violation.message


def test_exactly_once_catches_what_mission_control_stored_without_saying() -> None:
    h = history(
        queued(0.5, 1, "a"),
        deliver(1.0, 1.1, "a", 1),
        final_outbox(),
        (99.5, "final", "mc-applied", "info", {"message_ids": ["a", "ghost"]}),
    )
    violation = exactly_once_in_order(h).violation
    assert violation is not None and "never answered as applied" in violation.message
    h = history(
        queued(0.5, 1, "a"),
        deliver(1.0, 1.1, "a", 1),
        final_outbox(),
        (99.5, "final", "mc-applied", "info", {"message_ids": []}),
    )
    violation = exactly_once_in_order(h).violation
    assert violation is not None and "not stored" in violation.message


# --- backups, audit, recovery, leftovers ---------------------------------------------------


def backup_list(*runs: tuple[str, str]) -> tuple[Any, ...]:
    return (
        90.0,
        "final",
        "backup-list",
        "info",
        {"runs": [{"id": i, "status": s} for i, s in runs]},
    )


def test_backups_sound() -> None:
    good = history(
        (10.0, "workload", "backup", "ok", {"id": "b1"}),
        (20.0, "workload", "backup", "fail", {"id": "b2"}),
        backup_list(("b1", "ok"), ("b2", "failed"), ("b3", "ok")),
        (91.0, "final", "backup-check", "ok", {"id": "b1", "wiped": False}),
        (92.0, "final", "backup-check", "info", {"id": "b3", "wiped": True}),
    )
    verdict = backups_sound(good)
    assert verdict.ok and verdict.checks == 2
    assert "1 listed ok, lost" in verdict.notes[0]
    checked_at_once = history(
        (10.0, "workload", "backup", "ok", {"id": "b3"}),
        (11.0, "workload", "backup-check", "ok", {"id": "b3"}),
        backup_list(("b3", "ok")),
        (92.0, "final", "backup-check", "info", {"id": "b3", "wiped": True}),
    )
    verdict = backups_sound(checked_at_once)
    assert verdict.ok and verdict.checks == 1 and "0 listed ok, lost" in verdict.notes[0]
    listed_ok = history(
        (20.0, "workload", "backup", "fail", {"id": "b2"}), backup_list(("b2", "ok"))
    )
    violation = backups_sound(listed_ok).violation
    assert violation is not None and "b2 failed but is listed ok" in violation.message
    unreadable = history(
        backup_list(("b1", "ok")),
        (
            91.0,
            "final",
            "backup-check",
            "fail",
            {"id": "b1", "wiped": False, "detail": "verify: bad frame"},
        ),
    )
    violation = backups_sound(unreadable).violation
    assert violation is not None and "verify: bad frame" in violation.message


def started_list(*runs: tuple[str, str, float]) -> tuple[Any, ...]:
    """`final backup-list` with each run's (id, status, started)."""
    rows = [{"id": i, "status": s, "started": t} for i, s, t in runs]
    return (90.0, "final", "backup-list", "info", {"runs": rows})


#: A `backup run` that failed printing no id (20-50 s), then one that ended ok (60-70 s).
FAILED_THEN_OK = (
    (20.0, "workload", "backup", "invoke", {}),
    (50.0, "workload", "backup", "fail", {"id": None, "detail": ["timed out after 150 s"]}),
    (60.0, "workload", "backup", "invoke", {}),
    (70.0, "workload", "backup", "ok", {"id": "b3"}),
)


def test_backups_sound_catches_the_run_of_a_failed_backup_without_id_listed_ok_unverified() -> None:
    # b2 started while `backup run` waited, which then failed without saying which run it was:
    # b2 is listed ok, so it must verify; the harness never checked it.
    unchecked = history(
        *FAILED_THEN_OK,
        started_list(("b1", "ok", 10.0), ("b2", "ok", 30.0), ("b3", "ok", 61.0)),
        (91.0, "final", "backup-check", "ok", {"id": "b1", "wiped": False}),
        (92.0, "final", "backup-check", "ok", {"id": "b3", "wiped": False}),
    )
    violation = backups_sound(unchecked).violation
    assert violation is not None
    assert "backup b2 started for a `backup run` that failed without an id" in violation.message
    assert "never checked" in violation.message
    assert [e.line for e in violation.evidence] == [1, 2, 5]
    # Taken up after the command gave up (before the next one): still that run; it fails.
    late = history(
        *FAILED_THEN_OK,
        started_list(("b2", "ok", 55.0), ("b3", "ok", 61.0)),
        (91.0, "final", "backup-check", "fail", {"id": "b2", "wiped": False, "detail": "bad"}),
        (92.0, "final", "backup-check", "ok", {"id": "b3", "wiped": False}),
    )
    violation = backups_sound(late).violation
    assert violation is not None and "b2 started for" in violation.message
    assert violation.message.endswith("does not verify: bad")


def test_backups_sound_accepts_the_run_of_a_failed_backup_without_id_once_it_verifies() -> None:
    verified_at_once = history(
        *FAILED_THEN_OK[:2],
        (51.0, "workload", "backup-check", "ok", {"id": "b2"}),
        *FAILED_THEN_OK[2:],
        started_list(("b2", "ok", 30.0), ("b3", "ok", 61.0), ("b4", "failed", 45.0)),
        (91.0, "final", "backup-check", "info", {"id": "b2", "wiped": True}),
        (92.0, "final", "backup-check", "ok", {"id": "b3", "wiped": False}),
    )
    verdict = backups_sound(verified_at_once)
    assert verdict.ok, verdict.violation
    # b2 and b4 matched to the failed run (b4 listed failed: as it should be), b2 and b3 checked.
    assert verdict.checks == 4
    assert "2 run(s) matched by time" in verdict.notes[1]
    verified_at_end = history(
        *FAILED_THEN_OK,
        started_list(("b2", "ok", 30.0), ("b3", "ok", 61.0)),
        (91.0, "final", "backup-check", "ok", {"id": "b2", "wiped": False}),
        (92.0, "final", "backup-check", "ok", {"id": "b3", "wiped": False}),
    )
    assert backups_sound(verified_at_end).ok


def test_audit_complete() -> None:
    decisions = {
        "decisions": [
            {"request": "r1", "decision": "approved"},
            {"request": "r1", "decision": "revoked"},
        ]
    }
    good = history(
        (1.0, "workload", "support-approve", "ok", {"request": "r1"}),
        (2.0, "workload", "support-revoke", "ok", {"request": "r1"}),
        (3.0, "workload", "support-deny", "fail", {"request": "r2"}),  # failed: nothing to record
        (90.0, "final", "audit-verify", "ok", {}),
        (91.0, "final", "audit-log", "info", decisions),
    )
    assert audit_complete(good).ok and audit_complete(good).checks == 3
    lost = history(
        (1.0, "workload", "support-deny", "ok", {"request": "r2"}),
        (91.0, "final", "audit-log", "info", decisions),
    )
    violation = audit_complete(lost).violation
    assert violation is not None and "r2 was denied" in violation.message
    broken = history((90.0, "final", "audit-verify", "fail", {"detail": "entry 7 altered"}))
    assert audit_complete(broken).violation is not None


@pytest.mark.parametrize(("after", "ok"), [(5.0, True), (12.0, False)])
def test_leader_recovers_within_the_bound(after: float, ok: bool) -> None:
    h = history(
        (100.0, "nemesis", "heal-all", "ok", {"healed": ["start n1"]}),
        write(99.0, 9, "n1", 1),
        write(100.0 + after, 10, "n2", 2),
    )
    verdict = leader_recovers(h, 9.0)
    assert verdict.ok is ok
    never = history(
        (100.0, "nemesis", "heal-all", "ok", {"healed": ["start n1"]}), write(99.0, 9, "n1", 1)
    )
    violation = leader_recovers(never, 9.0).violation
    assert violation is not None and "no fenced write after it" in violation.message


def test_leader_recovers_counts_from_the_last_heal_that_healed_something() -> None:
    h = history(
        (100.0, "nemesis", "fault", "ok", {"kind": "start-zk", "target": "zk1", "heals": True}),
        write(120.0, 10, "n2", 2),
        (119.0, "nemesis", "heal-all", "ok", {"healed": []}),  # nothing was still open
    )
    violation = leader_recovers(h, 9.0).violation
    assert violation is not None and "20.0 s" in violation.message


def test_nothing_left_behind() -> None:
    assert nothing_left_behind(history((1.0, "final", "leftovers", "info", {"alive": []}))).ok
    left = history((1.0, "final", "leftovers", "info", {"alive": [{"pid": 42, "name": "zk3"}]}))
    assert nothing_left_behind(left).violation is not None


def test_first_violation_and_summary() -> None:
    h = history(
        (1.0, "nemesis", "fault", "ok", {"kind": "kill-node", "target": "n1", "heals": False}),
        write(1.5, 9, "n1", 1),
        (2.0, "nemesis", "fault", "ok", {"kind": "restart-node", "target": "n1", "heals": True}),
        write(3.0, 11, "n2", 2),
        (3.5, "workload", "backup", "ok", {"id": "b1"}),
        write(4.0, 12, "n1", 1),  # n1 deposed, writes on
        (5.0, "final", "leftovers", "info", {"alive": [{"pid": 1}]}),
    )
    verdicts = [single_leader(h), nothing_left_behind(h)]
    first = first_violation(verdicts)
    assert first is not None and first.invariant == "single leader"
    assert "4:" in first.describe() and "6:" in first.describe()
    s = summary(h, verdicts)
    assert s["faults"] == {"cut": 0, "kill-node": 1, "restart-node": 1}
    assert s["cut_skipped"] is None
    assert s["operations"] == {"backup": {"ok": 1}}
    assert s["recovery_s"]["count"] == 1 and s["recovery_s"]["median"] == 1.0
    assert [v["ok"] for v in s["invariants"]] == [False, False]


def test_summary_says_why_no_link_was_cut() -> None:
    reason = "network namespaces need root"
    h = history(
        (0.5, "stack", "sites", "info", {"cut_skipped": reason}),
        (1.0, "nemesis", "fault", "ok", {"kind": "kill-node", "target": "n1", "heals": False}),
    )
    s = summary(h, [])
    assert s["faults"]["cut"] == 0 and s["cut_skipped"] == reason
    cut = history(
        (0.5, "stack", "sites", "info", {"cut_skipped": None}),
        (1.0, "nemesis", "fault", "ok", {"kind": "cut", "target": "a", "heals": False}),
        (2.0, "nemesis", "fault", "ok", {"kind": "heal-cut", "target": "a", "heals": True}),
    )
    s = summary(cut, [])
    assert s["faults"] == {"cut": 1, "heal-cut": 1} and s["cut_skipped"] is None
