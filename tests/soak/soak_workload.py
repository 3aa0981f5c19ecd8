"""The workload: what operators, engineers and the cluster do while the nemesis works.

Three threads, each recording `invoke` and then `ok` or `fail` for every operation:
- backups: `managed backup run --wait` every `backup_every` seconds, each one that ends ok
  verified and restored at once (`backup-check`), and so is each run listed ok that started
  since a `backup run` that failed printing no id (it timed out or crashed);
- support: an engineer asks for access at Mission Control (staff API), the operator approves
  (then revokes) or denies it with `managed support`, and now and then changes the support
  settings (`managed support mode approval --max-grant ...`, a config change);
- membership: a sixth node joins and runs a third of the way in, leaves two thirds in (each
  retried for a while: one made during a ZooKeeper fault fails).
Health checks, license checks, consumption reports and heartbeats are the leader's own work
(short intervals, set at enrollment); the recording proxy records each of them.
"""

from __future__ import annotations

import json
import random
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from soak_backups import verify_and_restore
from soak_checkers import runs_started_within
from soak_history import History
from soak_stack import SoakStack

BACKUP_LINE = re.compile(r"backup (\S+) (ok|failed)")
#: How long a node's join or leave is retried (seconds), and the pause between attempts.
MEMBERSHIP_RETRY = 45.0
RETRY_PAUSE = 2.0


class Workload:
    def __init__(
        self,
        stack: SoakStack,
        history: History,
        seed: int,
        stop: threading.Event,
        seconds: float,
        backup_every: float,
    ) -> None:
        self.stack = stack
        self.history = history
        self.random = random.Random(seed + 1)
        self.stop = stop
        self.seconds = seconds
        self.backup_every = backup_every
        self.started = time.monotonic()

    def threads(self) -> list[threading.Thread]:
        return [
            threading.Thread(target=self._guard(self._backups), name="backups", daemon=True),
            threading.Thread(target=self._guard(self._support), name="support", daemon=True),
            threading.Thread(target=self._guard(self._membership), name="membership", daemon=True),
        ]

    def _guard(self, work: Any) -> Any:
        def run() -> None:
            try:
                work()
            except Exception as e:  # recorded: a crashed workload thread must show in the history
                self.history.record("workload", "crash", "fail", {"error": repr(e)})

        return run

    def _op(
        self, op: str, value: dict[str, Any], argv: tuple[str, ...], timeout: float = 60
    ) -> bool:
        self.history.record("workload", op, "invoke", value)
        done = self.stack.cli(*argv, timeout=timeout)
        ok = done.returncode == 0
        detail = (done.stdout if ok else done.stderr).strip().splitlines()
        self.history.record(
            "workload",
            op,
            "ok" if ok else "fail",
            {**value, "detail": detail[-1] if detail else ""},
        )
        return ok

    # --- backups ------------------------------------------------------------------------------

    def _backups(self) -> None:
        while not self.stop.wait(self.random.uniform(0.8, 1.2) * self.backup_every):
            began = time.time()
            self.history.record("workload", "backup", "invoke", {})
            done = self.stack.cli("backup", "run", "--wait", "--timeout", "120", timeout=150)
            text = (done.stdout + done.stderr).strip()
            found = BACKUP_LINE.search(text)
            value = {"id": found.group(1) if found else None, "detail": text.splitlines()[-1:]}
            ok = done.returncode == 0
            self.history.record("workload", "backup", "ok" if ok else "fail", value)
            if ok and found:
                self._check_at_once(found.group(1))
            elif not found:  # timed out or crashed: whatever run it started, check it now
                for rid in self._listed_ok_since(began):
                    self._check_at_once(rid)

    def _check_at_once(self, rid: str) -> None:
        """Verify and restore backup `rid` now, while its objects surely exist: an S3 endpoint
        killed later comes back empty (moto keeps objects in memory), and the final check
        cannot read it."""
        check: dict[str, str | None] = {"id": rid}
        self.history.record("workload", "backup-check", "invoke", check)
        problem = verify_and_restore(self.stack, rid)
        check["detail"] = problem
        self.history.record("workload", "backup-check", "fail" if problem else "ok", check)

    def _listed_ok_since(self, began: float) -> list[str]:
        """Runs listed ok that started since `began` (none if the list cannot be read now)."""
        done = self.stack.cli("backup", "list", "--json", timeout=60)
        if done.returncode != 0:
            return []
        runs = runs_started_within(json.loads(done.stdout), began, float("inf"))
        return [str(r["id"]) for r in runs if r.get("status") == "ok"]

    # --- support ------------------------------------------------------------------------------

    def _staff(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        mc = self.stack.mc
        assert mc is not None
        request = urllib.request.Request(
            f"{mc.url}/api/v1{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.stack.engineer_token}",
            },
        )
        context = ssl.create_default_context(cafile=str(mc.ca_file))
        try:
            with urllib.request.urlopen(request, context=context, timeout=15) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, None
        except OSError as e:
            return 0, repr(e)

    def _pending_on_cluster(self, rid: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stop.is_set():
            done = self.stack.cli("support", "requests", "--json", timeout=20)
            if done.returncode == 0:
                try:
                    rows = json.loads(done.stdout)
                except ValueError:
                    rows = []
                if any(r.get("id") == rid and r.get("state") == "pending" for r in rows):
                    return True
            self.stop.wait(1)
        return False

    def _support(self) -> None:
        grants = ("4h", "8h")
        n = 0
        while not self.stop.wait(self.random.uniform(4, 10)):
            n += 1
            if n % 3 == 0:
                grant = grants[n % 2]
                self._op(
                    "config-change",
                    {"max_grant": grant},
                    ("support", "mode", "approval", "--max-grant", grant),
                )
                continue
            body = {
                "cluster": "soak",
                "reason": f"soak ticket {n}",
                "role": "viewer",
                "duration": "1h",
            }
            self.history.record("workload", "support-request", "invoke", {"n": n})
            code, reply = self._staff("POST", "/access-requests", body)
            rid = reply.get("id") if isinstance(reply, dict) else None
            outcome = "ok" if code in (200, 201) and rid else "fail"
            self.history.record(
                "workload", "support-request", outcome, {"status": code, "request": rid}
            )
            if rid is None or not self._pending_on_cluster(rid, 30):
                continue
            operator = ("--operator", "soak-operator")
            if self.random.random() < 0.3:
                self._op(
                    "support-deny",
                    {"request": rid},
                    ("support", "deny", rid, "--reason", "not now", *operator),
                )
                continue
            if self._op(
                "support-approve", {"request": rid}, ("support", "approve", rid, *operator)
            ):
                self.stop.wait(self.random.uniform(1, 4))
                self._op(
                    "support-revoke",
                    {"request": rid},
                    ("support", "revoke", rid, "--yes", "--reason", "done", *operator),
                )

    # --- membership ---------------------------------------------------------------------------

    def _membership(self) -> None:
        """The sixth node joins a third of the way in and leaves two thirds in. The join and
        the leave are each retried for up to `MEMBERSHIP_RETRY` seconds (one made during a
        ZooKeeper fault fails), every attempt recorded; the join is not tried again once the
        soak stops, but a node that joined is stopped and leaves even if the soak stops first."""
        if self.stop.wait(self.seconds / 3):
            return
        assert self.stack.sites is not None
        address = self.stack.sites.node_address("n6")
        self.stack.addresses["n6"] = address
        join = ("node", "join", "n6", "--datacenter", "dc1", "--api-address", address)
        if not self._retried("node-join", {"node": "n6"}, join, until_stop=True):
            return
        self.stack.start_node("n6")
        self.stop.wait(self.seconds / 3)
        self.stack.nodes["n6"].stop(timeout=15)
        self._retried("node-leave", {"node": "n6"}, ("node", "leave", "n6"))

    def _retried(
        self, op: str, value: dict[str, Any], argv: tuple[str, ...], until_stop: bool = False
    ) -> bool:
        """`_op` until it succeeds, at most `MEMBERSHIP_RETRY` seconds (an attempt started
        before then runs to its own timeout) and, with `until_stop`, only while the soak runs;
        True if one succeeded."""
        deadline = time.monotonic() + MEMBERSHIP_RETRY
        while not self._op(op, value, argv, timeout=30):
            if time.monotonic() + RETRY_PAUSE >= deadline or (until_stop and self.stop.is_set()):
                return False
            time.sleep(RETRY_PAUSE)  # a pause between attempts, not a synchronisation
        return True
