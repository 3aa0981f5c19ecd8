"""Rolling-upgrade benchmark against a real 3-server ZooKeeper ensemble and 3 real node processes.

Each round, in one run and in this order (nothing else of the benchmark runs meanwhile):
  (1) baseline: three graceful restarts, one node at a time, the leader last (SIGTERM, wait for
      the process to exit, start it again with the same command, wait until it is live again
      and a node is acting): T_restart;
  (2) a plain install of the round's release: `python -m venv --without-pip` then
      `pip --python VENV install --no-index --find-links WHEELS --no-cache-dir
      managed-orchestrator[node]==V` into a temp dir, once alone and then three at once
      (the nodes install at the same time on this one machine);
  (3) a 3-node rolling upgrade to a new signed release (`managed upgrade apply --bundle`, the
      project's wheel at a bumped version and the same dependency wheels, as in
      tests/cluster/test_release_rollout.py), timed from `apply` to the plan's "done"
      (T_upgrade) and, separately, the roll alone: from the first node entering "restarting"
      to "done" (the installs, all nodes at once, come before it). Each node's install is timed
      from the plan's start to its "installed" report in ZooKeeper (it verifies the bundle
      too). Every node's `/leader` is probed every 50 ms through (1) and (3): the longest
      stretch without a 200 is the window without an acting leader.
Then it finalizes the upgrade (not timed). Goals: roll / T_restart <= 1.5; longest window
without a leader <= 1 s (median and max over the upgrades).

Usage: python benchmarks/upgrade.py [--upgrades N] [--session S]
       (N >= 1, default 5; S: the nodes' ZooKeeper session in seconds, >= 2, default 4)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from clusterkit import TIMING, ZK_AUTH, ClusterUnderTest, http_get  # noqa: E402
from failover import acting  # noqa: E402
from releasekit import Vendor  # noqa: E402
from wheelhouse import copy_all, dependency_wheels, project_wheel  # noqa: E402

from cluster import zk  # noqa: E402
from cluster.dev.processes import wait_until  # noqa: E402
from cluster.dev.zookeeper import Ensemble  # noqa: E402
from cluster.upgrade import install  # noqa: E402
from cluster.upgrade.plan import DONE, FINISHED, RESTARTING, RUNNING, Plan  # noqa: E402
from cluster.upgrade.rollout import read_plan, read_reports  # noqa: E402
from cluster.version import VERSION  # noqa: E402
from cluster.zk import ZooKeeper  # noqa: E402
from cluster.zk.client import CA_ENV  # noqa: E402

ROLL_GOAL = 1.5  # the roll against three graceful restarts
GAP_GOAL = 1.0  # seconds without an acting leader
PLAN_TIMEOUT = 600.0  # apply -> done, at most
RESTART_TIMEOUT = 90  # per node, the plan's `--timeout`


@dataclass
class Round:
    """One round's figures (seconds)."""

    restarts: list[float] = field(default_factory=list)  # each node's, the leader last
    restart_gap: float = 0.0
    plain: float = 0.0
    plain_three: list[float] = field(default_factory=list)
    upgrade: float = 0.0
    roll: float = 0.0
    node_restarts: list[float] = field(default_factory=list)  # "restarting" -> "done", in order
    gap: float = 0.0
    installs: list[float] = field(default_factory=list)


class LeaderGaps:
    """Asks every node's `/leader` every 50 ms (as the rolling-upgrade test's probe); `stop()`
    returns the longest stretch without any 200, an unfinished one at the end included."""

    def __init__(self, cluster: ClusterUnderTest) -> None:
        self.urls = [f"http://{a}/leader" for a in cluster.addresses.values()]
        self.longest = 0.0
        self._last_ok = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            now = time.monotonic()
            if any(http_get(url, timeout=0.2)[0] == 200 for url in self.urls):
                self.longest = max(self.longest, now - self._last_ok)
                self._last_ok = now

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(5)
        return max(self.longest, time.monotonic() - self._last_ok)


def _settled(cluster: ClusterUnderTest, client: ZooKeeper, node: str) -> bool:
    snap = zk.read_snapshot(client, cluster.paths)
    return snap.live_member(node) is not None and acting(client, cluster.paths, None) is not None


def graceful_restarts(
    cluster: ClusterUnderTest, client: ZooKeeper, timing: dict[str, str]
) -> list[float]:
    """Restart every node in turn, the leader last, as an operator would; each one's time."""
    snap = zk.read_snapshot(client, cluster.paths)
    assert snap.leader is not None
    order = sorted(n for n in cluster.processes if n != snap.leader.node) + [snap.leader.node]
    took = []
    for node in order:
        t0 = time.monotonic()
        cluster.processes[node].signal(15)
        cluster.processes[node].popen.wait(30)
        cluster.run(node, timing=timing)
        ok = wait_until(partial(_settled, cluster, client, node), 60, 0.02)
        assert ok, f"{node} did not come back\n{cluster.logs()}"
        took.append(time.monotonic() - t0)
    return took


def plain_install(
    wheels: Path, version: str, into: Path, children: list[subprocess.Popen[bytes]]
) -> float:
    """venv + pip, as `install.install` runs them, of the same wheels; the wall time."""
    venv = into / f"venv-{uuid.uuid4().hex[:8]}"
    steps = install.install_commands(venv, wheels, version)
    t0 = time.monotonic()
    for argv in steps:
        p = subprocess.Popen(
            argv, env=install.pip_env(), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        children.append(p)
        _, err = p.communicate(timeout=install.PIP_TIMEOUT)
        assert p.returncode == 0, err.decode(errors="replace")[-2000:]
    return time.monotonic() - t0


def plain_installs(count: int, run: Callable[[], float]) -> list[float]:
    """`count` plain installs at once; each one's wall time."""
    pool = ThreadPoolExecutor(count)
    try:
        return list(pool.map(lambda _: run(), range(count)))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # on Ctrl-C, main() kills the children


@dataclass
class Watched:
    """What polling the stored plan every 0.1 s saw of one upgrade (monotonic times)."""

    entered: dict[tuple[str, str], float] = field(default_factory=dict)  # (node, state): first seen
    done: float = 0.0
    installed: dict[str, float] = field(default_factory=dict)  # seconds from the plan's start

    def first_restart(self) -> float:
        return min(t for (_, state), t in self.entered.items() if state == RESTARTING)

    def node_restarts(self, order: tuple[str, ...]) -> list[float]:
        """Each node's "restarting" -> "done", in the plan's order."""
        return [self.entered[(n, DONE)] - self.entered[(n, RESTARTING)] for n in order]


def watch_plan(client: ZooKeeper, cluster: ClusterUnderTest, version: str) -> tuple[Plan, Watched]:
    seen = Watched()
    deadline = time.monotonic() + PLAN_TIMEOUT
    while time.monotonic() < deadline:
        got = read_plan(client, cluster.paths)
        now, wall = time.monotonic(), time.time()
        plan: Plan | None = got[0] if got else None
        if plan is not None and plan.version == version:
            for node, report in read_reports(client, cluster.paths).items():
                ours = report.plan == plan.id and report.state == "installed"
                if ours and node not in seen.installed:
                    seen.installed[node] = wall - plan.started
            for node, step in plan.nodes.items():
                seen.entered.setdefault((node, step.state), now)
            if plan.state == FINISHED:
                seen.done = now
                return plan, seen
            if plan.state != RUNNING:
                raise SystemExit(
                    f"upgrade to {version} {plan.state}: {plan.reason}\n{cluster.logs()}"
                )
        time.sleep(0.1)
    raise SystemExit(f"upgrade to {version} not done in {PLAN_TIMEOUT:.0f} s\n{cluster.logs()}")


def rolling_upgrade(
    cluster: ClusterUnderTest, client: ZooKeeper, bundle: Path, version: str, r: Round
) -> None:
    """`upgrade apply` -> plan done, with the leader probe; then finalize (not timed)."""
    pids = {n: p.pid for n, p in cluster.processes.items()}
    probe = LeaderGaps(cluster)
    try:
        t0 = time.monotonic()
        done = cluster.cli(
            "upgrade",
            "apply",
            "--bundle",
            str(bundle),
            "--timeout",
            str(RESTART_TIMEOUT),
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        plan, seen = watch_plan(client, cluster, version)
    finally:
        r.gap = probe.stop()
    r.upgrade, r.roll = seen.done - t0, seen.done - seen.first_restart()
    r.node_restarts = seen.node_restarts(plan.order)
    r.installs = [seen.installed[n] for n in sorted(seen.installed)]
    versions = {m.node: m.version for m in zk.read_snapshot(client, cluster.paths).live}
    assert versions == dict.fromkeys(pids, version), versions
    assert {n: p.pid for n, p in cluster.processes.items()} == pids  # re-exec'ed, same PIDs
    done = cluster.cli("upgrade", "finalize")
    assert done.returncode == 0, done.stderr
    data = [cluster.base / "data" / n / "versions" for n in pids]
    assert wait_until(lambda: not any((d / "previous").is_symlink() for d in data), 30)


def one_round(
    cluster: ClusterUnderTest,
    client: ZooKeeper,
    timing: dict[str, str],
    vendor: Vendor,
    deps: list[Path],
    version: str,
    children: list[subprocess.Popen[bytes]],
) -> Round:
    r = Round()
    probe = LeaderGaps(cluster)
    try:
        r.restarts = graceful_restarts(cluster, client, timing)
    finally:
        r.restart_gap = probe.stop()
    work = cluster.base / "plain" / version
    wheels = copy_all([project_wheel(work / "new", version), *deps], work / "wheels")
    run = partial(plain_install, work / "wheels", version, work, children)
    r.plain = run()
    r.plain_three = plain_installs(3, run)
    bundle = vendor.bundle(version, files=wheels)
    rolling_upgrade(cluster, client, bundle, version, r)
    return r


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def seconds(xs: list[float], digits: int = 1) -> str:
    return " ".join(f"{x:.{digits}f}" for x in xs)


def report(rounds: list[Round], session: float, loads: list[tuple[float, ...]]) -> None:
    print(f"upgrades: {len(rounds)}   nodes: 3   session timeout: {session:g} s")
    print("load average (1/5/15 min): " + "   then ".join(seconds(list(x), 2) for x in loads))
    print()
    print("seconds; restarts: the three graceful restarts; gap: the longest window without a 200")
    print(
        "from any node's /leader; roll: first restart -> done, then each node's restarting -> done"
    )
    print(
        "round restarts   gap plain  plain x3       upgrade  installs         roll"
        + " " * 20
        + "gap"
    )
    for i, r in enumerate(rounds, 1):
        print(
            f"{i:>5} {sum(r.restarts):8.1f} {r.restart_gap:5.2f} {r.plain:5.1f}  "
            f"{seconds(r.plain_three):<15}{r.upgrade:7.1f}  {seconds(r.installs):<15} "
            f"{r.roll:5.1f} {'(' + seconds(r.node_restarts) + ')':<16} {r.gap:5.2f}"
        )
    restart = med([sum(r.restarts) for r in rounds])
    upgrade, roll = med([r.upgrade for r in rounds]), med([r.roll for r in rounds])
    in_restarts = med([sum(r.node_restarts) for r in rounds])
    one_restart = med([x for r in rounds for x in r.restarts])
    one_roll = med([x for r in rounds for x in r.node_restarts])
    gaps = [r.gap for r in rounds]
    node = med([x for r in rounds for x in r.installs])
    plain, three = med([r.plain for r in rounds]), med([x for r in rounds for x in r.plain_three])
    rows = [
        ("three graceful restarts (T_restart)", f"{restart:.1f} s", ""),
        (
            "rolling upgrade, apply -> done",
            f"{upgrade:.1f} s",
            f"{upgrade / restart:.2f} x T_restart",
        ),
        (
            "the roll: first restart -> done",
            f"{roll:.1f} s",
            f"{roll / restart:.2f} x T_restart; goal <= {ROLL_GOAL:g} x: "
            + ("met" if roll / restart <= ROLL_GOAL else "NOT met"),
        ),
        ("  of it, nodes restarting -> done", f"{in_restarts:.1f} s", "summed over the 3 nodes"),
        ("one node: graceful restart", f"{one_restart:.2f} s", "median over nodes and rounds"),
        ("one node: restarting -> done", f"{one_roll:.2f} s", "(the plan's looks: every 0.5 s)"),
        (
            "longest window without a leader",
            f"{med(gaps):.2f} s",
            f"max {max(gaps):.2f} s; goal <= {GAP_GOAL:g} s: "
            + ("met" if max(gaps) <= GAP_GOAL else "NOT met"),
        ),
        ("  the same, during the restarts", f"{med([r.restart_gap for r in rounds]):.2f} s", ""),
        ("node install: plan start -> installed", f"{node:.1f} s", "3 nodes at once, + verify"),
        ("plain venv + pip install, alone", f"{plain:.1f} s", f"node / plain {node / plain:.2f}"),
        (
            "plain venv + pip install, 3 at once",
            f"{three:.1f} s",
            f"node / plain {node / three:.2f}",
        ),
    ]
    print()
    print("medians over the rounds:")
    for label, value, note in rows:
        print(f"  {label:<38} {value:>8}   {note}".rstrip())


def session_seconds(text: str) -> float:
    value = float(text)
    # loop_interval + 2 * retry_timeout <= session timeout (cluster/config.py), with TIMING's
    if value < 2:
        raise argparse.ArgumentTypeError("must be at least 2 (0.5 s loop + 2 x 0.7 s retries)")
    return value


def bumped(version: str, by: int) -> str:
    """`version` with its last release number raised by `by` (0.1.0, 1 -> 0.1.1)."""
    *head, last = Version(version).release
    return ".".join(str(n) for n in [*head, last + by])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument(
        "--upgrades",
        type=int,
        default=5,
        help="rounds: restarts, plain installs, one upgrade (at least 1)",
    )
    ap.add_argument(
        "--session",
        type=session_seconds,
        default=4.0,
        help="the nodes' ZooKeeper session timeout, s (default 4, as the rolling-upgrade test)",
    )
    args = ap.parse_args()
    if args.upgrades < 1:
        ap.error("--upgrades must be at least 1")
    timing = {**TIMING, "MANAGED_SESSION_TIMEOUT": f"{args.session:g}"}
    load_start = os.getloadavg()
    base = Path(tempfile.mkdtemp(prefix="upgrade-bench-"))
    ensemble = Ensemble(base / "zk")
    cluster = ClusterUnderTest(hosts="", name="bench", base=base)
    children: list[subprocess.Popen[bytes]] = []
    rounds: list[Round] = []
    try:
        ensemble.start()
        ensemble.wait_ready(60)
        os.environ[CA_ENV] = str(ensemble.ca_file)  # the nodes and the CLI inherit it
        cluster.hosts = ensemble.connect_string
        cluster.start_nodes(3, timing=timing)
        client = zk.connect(cluster.hosts, auth=ZK_AUTH)
        vendor = Vendor(base / "vendor")
        trusted = cluster.cli("upgrade", "trust", str(vendor.repo / "metadata" / "1.root.json"))
        assert trusted.returncode == 0, trusted.stderr
        deps = dependency_wheels(base / "deps")
        for i in range(1, args.upgrades + 1):
            version = bumped(VERSION, i)
            rounds.append(one_round(cluster, client, timing, vendor, deps, version, children))
            print(f"round {i} done", file=sys.stderr, flush=True)
        zk.close(client)
    finally:
        for p in children:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        cluster.stop()
        ensemble.stop()
        shutil.rmtree(base, ignore_errors=True)
    report(rounds, args.session, [load_start, os.getloadavg()])


if __name__ == "__main__":
    main()
