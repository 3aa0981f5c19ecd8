"""The soak: faults from a seeded nemesis while a workload runs, every operation recorded to a
JSON-lines history, and invariants checked on the history afterwards (Jepsen's method).

    .venv/bin/python tests/soak/soak.py [--seconds 600] [--seed N] [--dir DIR]
    .venv/bin/python tests/soak/soak.py --check DIR/history.jsonl   # judge a history again

`make soak` runs the first (SECONDS=600, SEED= to reproduce); `tests/soak/test_soak.py` runs a
short one inside `make test`. A failing run prints its seed and the first violated invariant
with the history lines that prove it, and exits 1. See docs/reliability.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
for extra in (HERE, ROOT / "tests" / "mission_control", ROOT / "tests", ROOT):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import asyncpg  # noqa: E402
from mc_postgres import fresh_database, postgres_server, run_async  # noqa: E402
from soak_backups import verify_and_restore  # noqa: E402
from soak_checkers import Verdict, all_verdicts, first_violation, summary  # noqa: E402
from soak_history import History, load  # noqa: E402
from soak_nemesis import Nemesis  # noqa: E402
from soak_observer import Observer  # noqa: E402
from soak_stack import CLUSTER, SESSION_TIMEOUT, ZK_AUTH, SoakStack  # noqa: E402
from soak_workload import Workload  # noqa: E402

RECOVERY_BOUND = SESSION_TIMEOUT + 5


@dataclass(frozen=True)
class SoakResult:
    seed: int
    history: Path
    verdicts: list[Verdict]
    summary: dict[str, Any]

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    def report(self) -> str:
        lines = [f"soak seed {self.seed}: history {self.history}"]
        s = self.summary
        lines.append("faults: " + ", ".join(f"{k} {v}" for k, v in s["faults"].items()))
        if s.get("cut_skipped"):
            lines.append(f"  cut skipped: {s['cut_skipped']}")
        for op, outcomes in s["operations"].items():
            lines.append(f"  {op}: " + ", ".join(f"{k} {v}" for k, v in outcomes.items()))
        lines.append("deliveries: " + ", ".join(f"{k}: {v}" for k, v in s["deliveries"].items()))
        r = s["recovery_s"]
        lines.append(
            f"recovery after a fault heals (s): n={r['count']} median {r['median']} "
            f"p99 {r['p99']} max {r['max']}"
        )
        for v in s["invariants"]:
            mark = "ok  " if v["ok"] else "FAIL"
            notes = f" ({'; '.join(v['notes'])})" if v["notes"] else ""
            lines.append(f"  {mark} {v['invariant']}: {v['checks']} checks{notes}")
        violation = first_violation(self.verdicts)
        if violation is not None:
            lines.append(f"FAILED with seed {self.seed} (reproduce: make soak SEED={self.seed})")
            lines.append(violation.describe())
        return "\n".join(lines)


def judge(history_path: Path, seed: int) -> SoakResult:
    history = load(history_path)
    verdicts = all_verdicts(history, RECOVERY_BOUND)
    return SoakResult(seed, history_path, verdicts, summary(history, verdicts))


@contextlib.contextmanager
def _database() -> Iterator[str]:
    with postgres_server() as base, fresh_database(base) as url:
        yield url


def run_soak(seconds: float, seed: int, base: Path, backup_every: float = 60.0) -> SoakResult:
    """Run the soak in `base` (a fresh directory) and judge its history. The environment
    this process had is restored afterwards (the stack sets the CA and S3 credentials)."""
    saved = dict(os.environ)
    try:
        return _run(seconds, seed, base, backup_every)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _run(seconds: float, seed: int, base: Path, backup_every: float) -> SoakResult:
    base.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault(
        "MISSION_CONTROL_SECRETS_KEY", base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    )
    history_path = base / "history.jsonl"
    history = History(history_path)
    history.record("soak", "start", "info", {"seed": seed, "seconds": seconds})
    with _database() as db_url:
        stack = SoakStack(base, history, db_url, seed)
        observer: Observer | None = None
        try:
            stack.start()
            assert stack.ensemble is not None
            observer = Observer(history, stack.hosts, ZK_AUTH, str(stack.ensemble.ca_file), CLUSTER)
            observer.start()
            _soak(stack, observer, history, seconds, seed, backup_every)
            _final(stack, observer, history)
        finally:
            if observer is not None:
                observer.stop()
            try:
                stack.close()
                # Read once nothing sends any more: every answer the proxy recorded is in.
                applied = _applied_at_mc(db_url)
                history.record("final", "mc-applied", "info", {"message_ids": applied})
                left = stack.leftovers()
                history.record("final", "leftovers", "info", {"alive": left})
                stack.kill_leftovers(left)
            finally:
                stack.destroy_sites()
                history.close()
    return judge(history_path, seed)


def _soak(
    stack: SoakStack,
    observer: Observer,
    history: History,
    seconds: float,
    seed: int,
    backup_every: float,
) -> None:
    stop = threading.Event()
    nemesis = Nemesis(stack, observer, history, seed, stop)
    workload = Workload(stack, history, seed, stop, seconds, backup_every)
    threads = [threading.Thread(target=nemesis.run, name="nemesis", daemon=True)]
    threads += workload.threads()
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    history.record("soak", "stop", "info", {})
    deadline = time.monotonic() + 240
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            history.record("soak", "thread-stuck", "fail", {"thread": t.name})
    nemesis.heal_all()


def _final(stack: SoakStack, observer: Observer, history: History) -> None:
    """After the last fault: let the cluster settle, then read what the checkers need."""
    if not stack.wait_leader(60):
        history.record("final", "leader", "fail", {"logs": stack.node_logs(5)})
    # The outbox drains once a leader delivers again (bounded: a stuck one stays visible).
    pending: list[str] = []
    dead: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            pending, dead = observer.pending()
            if not pending:
                break
        time.sleep(0.5)
    history.record("final", "outbox", "info", {"pending": pending, "dead": dead})
    _check_backups(stack, history)
    _check_audit(stack, history)


def _applied_at_mc(db_url: str) -> list[str]:
    async def read() -> list[str]:
        conn = await asyncpg.connect(db_url, timeout=10)
        try:
            rows = await conn.fetch(
                "SELECT m.message_id FROM messages m JOIN clusters c ON c.id = m.cluster_id "
                "WHERE c.name = $1",
                CLUSTER,
            )
        finally:
            await conn.close()
        return [str(r["message_id"]) for r in rows]

    applied: list[str] = run_async(read)
    return applied


def _check_backups(stack: SoakStack, history: History) -> None:
    done = stack.cli("backup", "list", "--json", timeout=60)
    if done.returncode != 0:
        history.record("final", "backup-list", "fail", {"error": done.stderr.strip()})
        return
    runs = json.loads(done.stdout)
    history.record("final", "backup-list", "info", {"runs": runs})
    kills = [e for e in load(history.path) if e.op == "fault" and e.value.get("kind") == "kill-s3"]
    for run in runs:
        if run["status"] != "ok":
            continue
        wiped = any(e.t >= float(run["started"]) for e in kills)
        value: dict[str, Any] = {"id": run["id"], "wiped": wiped}
        if wiped:
            history.record("final", "backup-check", "info", value)
            continue
        problem = verify_and_restore(stack, str(run["id"]))
        history.record(
            "final", "backup-check", "fail" if problem else "ok", {**value, "detail": problem}
        )


def _check_audit(stack: SoakStack, history: History) -> None:
    done = stack.cli("audit", "verify", "--offline", timeout=60)
    history.record(
        "final",
        "audit-verify",
        "ok" if done.returncode == 0 else "fail",
        {"detail": (done.stdout + done.stderr).strip()[-500:]},
    )
    log = stack.cli("audit", "log", "--json", timeout=60)
    if log.returncode != 0:
        history.record("final", "audit-log", "fail", {"error": log.stderr.strip()})
        return
    decisions = []
    for entry in json.loads(log.stdout):
        action = str(entry.get("action", ""))
        if action in ("support.approved", "support.denied", "support.revoked"):
            decisions.append({"request": entry.get("subject"), "decision": action.split(".")[1]})
    history.record("final", "audit-log", "info", {"decisions": decisions})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--backup-every", type=float, default=60)
    parser.add_argument("--dir", type=Path, default=None, help="state directory (kept)")
    parser.add_argument("--check", type=Path, default=None, help="only judge this history")
    parser.add_argument("--summary-json", type=Path, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    if args.check is not None:
        result = judge(args.check, seed)
    else:
        base = args.dir or Path(tempfile.mkdtemp(prefix=f"soak-{seed}-"))
        result = run_soak(args.seconds, seed, base, args.backup_every)
    print(result.report())
    if args.summary_json is not None:
        args.summary_json.write_text(json.dumps({"seed": seed, **result.summary}, indent=2))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
