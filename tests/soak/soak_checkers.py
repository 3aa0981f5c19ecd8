"""Invariants of a soak, checked on its recorded history (pure functions, no I/O).

Each checker takes the whole history and returns a `Verdict`: how many individual checks it
made and the first violation, with the history lines that prove it. The events each reads:

- `observer health-write`  {zxid, leader, epoch, at}: a leader's fenced write of the health
  summary, seen in ZooKeeper with the transaction id that wrote it (`mzxid`). ZooKeeper orders
  every write, so these are the leaders' own acts in their true order.
- `observer epoch`         {zxid, epoch}: the epoch znode as read.
- `observer outbox`        {znode, seq, message_id, kind}: a message seen queued.
- `mc-proxy deliver`       {kind, message_id, epoch, status, duplicate, t0}: one request that
  reached Mission Control (t0 sent, t answered); status 2xx and not `duplicate` = applied.
- `nemesis fault`          {kind, target, heals}: a fault injected or healed (`heals` true).
- `workload <op>`          invoke / ok / fail with the operation's value.
- `final ...`              what the harness read after the last fault: backup checks, the audit
  log and its verification, Mission Control's applied messages, the outbox left, leftovers.

What the observer does not see (a write overwritten between two of its reads) cannot be
judged; what it sees is judged exactly. See docs/reliability.md.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from soak_history import Event

#: Statuses with which Mission Control applied (or deduplicated) a message.
OK_STATUSES = range(200, 300)


@dataclass(frozen=True)
class Violation:
    invariant: str
    message: str
    evidence: tuple[Event, ...]

    def describe(self) -> str:
        lines = "\n".join(f"  {e}" for e in self.evidence)
        return f"invariant violated: {self.invariant}: {self.message}\n{lines}"


@dataclass(frozen=True)
class Verdict:
    invariant: str
    checks: int
    violation: Violation | None = None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.violation is None


@dataclass
class _Tally:
    invariant: str
    checks: int = 0
    notes: list[str] = field(default_factory=list)

    def fail(self, message: str, *evidence: Event) -> Verdict:
        return Verdict(
            self.invariant,
            self.checks,
            Violation(self.invariant, message, _distinct(evidence)),
            tuple(self.notes),
        )

    def done(self) -> Verdict:
        return Verdict(self.invariant, self.checks, None, tuple(self.notes))


def _distinct(events: Iterable[Event]) -> tuple[Event, ...]:
    """Evidence in history order, each line once."""
    return tuple(sorted({e.line: e for e in events}.values(), key=lambda e: e.line))


def _of(history: Iterable[Event], process: str, op: str, outcome: str | None = None) -> list[Event]:
    return [
        e
        for e in history
        if e.process == process and e.op == op and (outcome is None or e.outcome == outcome)
    ]


def _by_zxid(events: Iterable[Event]) -> list[Event]:
    """One event per ZooKeeper transaction, in transaction order."""
    seen: dict[int, Event] = {}
    for e in events:
        seen.setdefault(int(e.value["zxid"]), e)
    return [seen[z] for z in sorted(seen)]


def single_leader(history: Sequence[Event]) -> Verdict:
    """At no instant do two nodes act as leader: in ZooKeeper's order of their fenced writes,
    each epoch is written by one node only and no write comes with an epoch older than one
    written before it (which a deposed leader's unfenced write would)."""
    tally = _Tally("single leader")
    writer: dict[int, Event] = {}
    newest: Event | None = None
    for e in _by_zxid(_of(history, "observer", "health-write")):
        tally.checks += 1
        epoch, leader = int(e.value["epoch"]), str(e.value["leader"])
        first = writer.setdefault(epoch, e)
        if str(first.value["leader"]) != leader:
            return tally.fail(
                f"epoch {epoch} written by both {first.value['leader']} and {leader}", first, e
            )
        if newest is not None and epoch < int(newest.value["epoch"]):
            return tally.fail(
                f"{leader} wrote with epoch {epoch} after {newest.value['leader']} had written "
                f"with epoch {newest.value['epoch']}: two nodes acting as leader",
                newest,
                e,
            )
        newest = e
    return tally.done()


def epochs_grow(history: Sequence[Event]) -> Verdict:
    """The epoch znode only grows, in ZooKeeper's transaction order."""
    tally = _Tally("epochs only grow")
    previous: Event | None = None
    for e in _by_zxid(_of(history, "observer", "epoch")):
        tally.checks += 1
        if previous is not None and int(e.value["epoch"]) <= int(previous.value["epoch"]):
            return tally.fail(
                f"epoch went from {previous.value['epoch']} to {e.value['epoch']}", previous, e
            )
        previous = e
    return tally.done()


def _applied(e: Event) -> bool:
    return int(e.value.get("status") or 0) in OK_STATUSES and not e.value.get("duplicate")


def mc_epoch_fencing(history: Sequence[Event]) -> Verdict:
    """Mission Control never applies a message whose epoch is older than one it applied
    before: for every two applied messages A and B of one cluster, if A was answered before B
    was sent, B's epoch is at least A's."""
    tally = _Tally("Mission Control refuses older epochs")
    applied = [e for e in _of(history, "mc-proxy", "deliver") if _applied(e)]
    by_answer = sorted(applied, key=lambda e: e.t)
    by_send = sorted(applied, key=lambda e: float(e.value["t0"]))
    best: Event | None = None
    i = 0
    for b in by_send:
        while i < len(by_answer) and by_answer[i].t < float(b.value["t0"]):
            a = by_answer[i]
            if best is None or int(a.value["epoch"]) > int(best.value["epoch"]):
                best = a
            i += 1
        tally.checks += 1
        if best is not None and int(b.value["epoch"]) < int(best.value["epoch"]):
            return tally.fail(
                f"applied a {b.value['kind']} message with epoch {b.value['epoch']} after "
                f"applying one with epoch {best.value['epoch']}",
                best,
                b,
            )
    return tally.done()


def exactly_once_in_order(history: Sequence[Event]) -> Verdict:
    """Every queued message is applied by Mission Control exactly once (resends answered as
    duplicates are fine), none is left queued at the end, and Mission Control applies them in
    the order they were queued. Superseded license checks (only the newest waits) and
    messages set aside as refused are accounted for, not counted as lost."""
    tally = _Tally("outbox delivered exactly once, in order")
    deliveries = [e for e in _of(history, "mc-proxy", "deliver") if e.value.get("message_id")]
    sends: dict[str, list[Event]] = defaultdict(list)
    for e in deliveries:
        sends[str(e.value["message_id"])].append(e)
    # When Mission Control applied each answered message: the answer that says so, or, for a
    # message only ever answered as a duplicate, the failed delivery before (reply lost).
    applied: dict[str, Event] = {}
    for mid, events in sends.items():
        answers = [e for e in events if int(e.value.get("status") or 0) in OK_STATUSES]
        if not answers:
            continue
        tally.checks += 1
        fresh = [e for e in answers if not e.value.get("duplicate")]
        if len(fresh) > 1:
            return tally.fail(f"message {mid} was applied {len(fresh)} times", *fresh)
        if fresh:
            applied[mid] = fresh[0]
            continue
        lost = [e for e in events if e not in answers and e.t <= answers[0].t]
        if not lost:
            return tally.fail(
                f"message {mid} was answered as a duplicate but never applied", *answers
            )
        applied[mid] = lost[-1]
    queued: dict[str, Event] = {}
    for e in _of(history, "observer", "outbox"):
        queued.setdefault(str(e.value["message_id"]), e)
    final = _of(history, "final", "outbox")
    dead: set[str] = set()
    if final:
        left = final[-1]
        dead = {str(m) for m in left.value.get("dead", [])}
        tally.checks += 1
        if left.value.get("pending"):
            return tally.fail(
                f"{len(left.value['pending'])} message(s) still queued after the soak", left
            )
    newest_license = max(
        (int(e.value["seq"]) for e in queued.values() if e.value["kind"] == "license"),
        default=-1,
    )
    superseded = 0
    for mid, q in queued.items():
        tally.checks += 1
        if mid in applied or mid in dead:
            continue
        if q.value["kind"] == "license" and int(q.value["seq"]) < newest_license:
            superseded += 1
            continue
        if final:
            return tally.fail(
                f"message {mid} ({q.value['kind']}) was queued, never applied", q, *sends[mid]
            )
    # Order: a message is never applied before one queued earlier was even sent.
    ordered = sorted(
        ((int(q.value["seq"]), applied[mid], q) for mid, q in queued.items() if mid in applied),
        key=lambda x: x[0],
    )
    latest_send: tuple[float, Event, Event] | None = None
    for _seq, a, q in ordered:
        tally.checks += 1
        if latest_send is not None and a.t < latest_send[0]:
            return tally.fail(
                f"message {a.value['message_id']} (queued later) was applied before message "
                f"{latest_send[1].value['message_id']} (queued earlier) was sent",
                latest_send[2],
                latest_send[1],
                q,
                a,
            )
        t0 = float(a.value["t0"])
        if latest_send is None or t0 > latest_send[0]:
            latest_send = (t0, a, q)
    mc = _of(history, "final", "mc-applied")
    if mc:
        stored = {str(m) for m in mc[-1].value.get("message_ids", [])}
        for mid, a in applied.items():
            if a.value.get("kind") == "heartbeat":
                continue
            tally.checks += 1
            if mid not in stored:
                return tally.fail(f"message {mid} was answered as applied, not stored", a)
        tally.checks += 1
        unanswered = stored - set(applied)
        if unanswered:
            sample = sorted(unanswered)[:3]
            return tally.fail(
                f"Mission Control stored {len(unanswered)} message(s) it never answered as "
                f"applied, e.g. {sample}",
                mc[-1],
            )
    tally.notes.append(
        f"{len(queued)} messages seen queued, {superseded} license checks superseded"
    )
    tally.notes.append(f"{len(dead)} set aside")
    return tally.done()


def runs_started_within(
    runs: Iterable[Mapping[str, Any]], start: float, end: float
) -> list[Mapping[str, Any]]:
    """The listed backup runs (`backup list --json` rows) that started in [start, end)."""
    return [r for r in runs if start <= float(r.get("started") or -1) < end]


def _failed_without_id(history: Sequence[Event]) -> list[tuple[Event, Event, float]]:
    """Each workload `backup` that failed printing no id: its invoke, its end, and until when
    a run started for its request (the next `backup` invoke, else the end of the history:
    the workload runs one at a time and the schedule is off, so a run started in between
    served this request or an earlier one that failed too)."""
    invokes = [e for e in _of(history, "workload", "backup", "invoke")]
    found = []
    for ended in _of(history, "workload", "backup", "fail"):
        if ended.value.get("id"):
            continue
        began = max((e for e in invokes if e.line < ended.line), key=lambda e: e.line, default=None)
        later = [e.t for e in invokes if e.line > ended.line]
        if began is not None:
            found.append((began, ended, min(later, default=float("inf"))))
    return found


def backups_sound(history: Sequence[Event]) -> Verdict:
    """Every backup listed ok verifies and restores bit-exact; no run seen failing is listed
    ok. A failed `backup run` that printed no id (it timed out or crashed) is matched by time:
    a run listed ok that started after its invoke and before the next one must be that one
    (or an earlier failed one's), and must have passed a check (right after it, or at the
    end). A listed backup whose S3 endpoint was restarted after it (moto keeps objects in
    memory, so the restart is a lost disk) cannot be read at the end: it counts as checked if
    the check made right after it ran passed, else it is counted apart."""
    tally = _Tally("backups listed ok verify and restore bit-exact")
    listed = _of(history, "final", "backup-list")
    if not listed:
        return tally.done()
    runs = listed[-1].value.get("runs", [])
    statuses = {str(r["id"]): str(r["status"]) for r in runs}
    for e in _of(history, "workload", "backup", "fail"):
        rid = e.value.get("id")
        if rid:
            tally.checks += 1
            if statuses.get(str(rid)) == "ok":
                return tally.fail(f"backup {rid} failed but is listed ok", e, listed[-1])
    # Checked right after it ran (faults may have been going on then: only a pass counts).
    at_once = {str(e.value.get("id")): e for e in _of(history, "workload", "backup-check", "ok")}
    at_end = {str(e.value.get("id")): e for e in _of(history, "final", "backup-check")}
    matched, lost = 0, set()
    for began, ended, until in _failed_without_id(history):
        for run in runs_started_within(runs, began.t, until):
            rid = str(run["id"])
            tally.checks += 1
            matched += 1
            check = at_end.get(rid)
            if run["status"] != "ok" or rid in at_once or (check and check.outcome == "ok"):
                continue
            if check is not None and check.value.get("wiped"):
                continue  # counted apart below, as every backup lost with its endpoint
            why = check.value.get("detail") if check is not None else "never checked"
            return tally.fail(
                f"backup {rid} started for a `backup run` that failed without an id and is "
                f"listed ok, but it does not verify: {why}",
                *[x for x in (began, ended, listed[-1], check) if x is not None],
            )
    for e in at_end.values():
        if e.value.get("wiped"):
            if str(e.value.get("id")) in at_once:
                tally.checks += 1
            else:
                lost.add(str(e.value.get("id")))
            continue
        tally.checks += 1
        if e.outcome != "ok":
            return tally.fail(f"backup {e.value.get('id')} listed ok: {e.value.get('detail')}", e)
    tally.notes.append(
        f"{len(lost)} listed ok, lost with a restarted S3 endpoint before a check could pass"
    )
    tally.notes.append(f"{matched} run(s) matched by time to a failed run that printed no id")
    return tally.done()


#: Audit actions that record an operator's decision on a support request.
DECISIONS = {
    "support-approve": "approved",
    "support-deny": "denied",
    "support-revoke": "revoked",
}


def audit_complete(history: Sequence[Event]) -> Verdict:
    """The audit chain verifies, and every approval, denial and revocation the operator made
    (its command succeeded) is in the audit log."""
    tally = _Tally("audit chain verifies, no decision lost")
    verified = _of(history, "final", "audit-verify")
    if verified:
        tally.checks += 1
        if verified[-1].outcome != "ok":
            return tally.fail("the audit chain does not verify", verified[-1])
    logs = _of(history, "final", "audit-log")
    if not logs:
        return tally.done()
    seen = {(str(x["request"]), str(x["decision"])) for x in logs[-1].value.get("decisions", [])}
    for op, decision in DECISIONS.items():
        for e in _of(history, "workload", op, "ok"):
            tally.checks += 1
            if (str(e.value["request"]), decision) not in seen:
                return tally.fail(
                    f"request {e.value['request']} was {decision}, the audit log does not say so",
                    e,
                    logs[-1],
                )
    return tally.done()


def leader_recovers(history: Sequence[Event], bound: float) -> Verdict:
    """After the last fault is healed, a leader acts (a fenced write made after the heal is
    seen) within `bound` seconds (session timeout + 5 s)."""
    tally = _Tally(f"a leader acts within {bound:g} s of the last fault")
    heals = [e for e in _of(history, "nemesis", "fault", "ok") if e.value.get("heals")]
    heals += [e for e in _of(history, "nemesis", "heal-all", "ok") if e.value.get("healed")]
    if not heals:
        return tally.done()
    heal = max(heals, key=lambda e: e.t)
    tally.checks += 1
    after = recovery_after(history, heal.t)
    if after is None or after[0] > bound:
        evidence = [heal] + ([after[1]] if after else [])
        took = "no fenced write after it" if after is None else f"{after[0]:.1f} s"
        return tally.fail(f"after the last heal: {took}", *evidence)
    return tally.done()


def recovery_after(history: Sequence[Event], since: float) -> tuple[float, Event] | None:
    """Seconds from `since` until a fenced write made after it was seen, and that write."""
    for e in _of(history, "observer", "health-write"):
        if float(e.value["at"]) >= since:
            return e.t - since, e
    return None


def nothing_left_behind(history: Sequence[Event]) -> Verdict:
    tally = _Tally("no process left behind")
    for e in _of(history, "final", "leftovers"):
        tally.checks += 1
        if e.value.get("alive"):
            return tally.fail(f"still running: {e.value['alive']}", e)
    return tally.done()


def all_verdicts(history: Sequence[Event], recovery_bound: float) -> list[Verdict]:
    checkers: list[Callable[[Sequence[Event]], Verdict]] = [
        single_leader,
        epochs_grow,
        mc_epoch_fencing,
        exactly_once_in_order,
        backups_sound,
        audit_complete,
        lambda h: leader_recovers(h, recovery_bound),
        nothing_left_behind,
    ]
    return [check(history) for check in checkers]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def summary(history: Sequence[Event], verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """Faults by kind, operations by outcome, recovery times, and each invariant's checks."""
    faults = Counter(str(e.value["kind"]) for e in _of(history, "nemesis", "fault", "ok"))
    skipped = [e.value.get("cut_skipped") for e in _of(history, "stack", "sites")]
    faults.setdefault("cut", 0)  # said even when none was cut (and why, if none could be)
    ops: dict[str, Counter[str]] = defaultdict(Counter)
    for e in history:
        if e.process == "workload" and e.outcome in ("ok", "fail"):
            ops[e.op][e.outcome] += 1
    deliveries = Counter(
        f"{e.value.get('kind')} {e.value.get('status')}"
        + (" duplicate" if e.value.get("duplicate") else "")
        for e in _of(history, "mc-proxy", "deliver")
    )
    recoveries = []
    for e in _of(history, "nemesis", "fault", "ok"):
        if e.value.get("heals"):
            after = recovery_after(history, e.t)
            if after is not None:
                recoveries.append(after[0])
    times = {
        "count": len(recoveries),
        "median": round(statistics.median(recoveries), 2) if recoveries else None,
        "p99": round(percentile(recoveries, 0.99), 2) if recoveries else None,
        "max": round(max(recoveries), 2) if recoveries else None,
    }
    return {
        "faults": dict(sorted(faults.items())),
        "cut_skipped": next((str(r) for r in skipped if r), None),
        "operations": {op: dict(c) for op, c in sorted(ops.items())},
        "deliveries": dict(sorted(deliveries.items())),
        "recovery_s": times,
        "invariants": [
            {"invariant": v.invariant, "checks": v.checks, "ok": v.ok, "notes": list(v.notes)}
            for v in verdicts
        ],
    }


def first_violation(verdicts: Sequence[Verdict]) -> Violation | None:
    """The violation whose evidence comes first in the history."""
    found = [v.violation for v in verdicts if v.violation is not None]
    return min(found, key=lambda v: max((e.line for e in v.evidence), default=0), default=None)
