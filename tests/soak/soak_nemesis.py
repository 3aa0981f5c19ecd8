"""The nemesis: faults chosen by the seed, injected one after another while the workload runs.

Kinds: SIGKILL a node (restarted later), SIGSTOP a node (often the leader, sometimes past its
session timeout, so it is fenced) then SIGCONT, kill one or two ZooKeeper servers (a minority
of five), now and then exactly three (a majority: no quorum for a few seconds), restart
Mission Control (SIGTERM or SIGKILL), kill an S3 endpoint and start it again, and, where the
sites run in network namespaces (`soak_sites`), cut a site's link (half the time the leader's;
one cut in four isolates `a` and `b` both, so no side has ZooKeeper's majority) and heal it.
Each fault is
recorded when injected and when healed (`heals: true`); `heal_all` ends every fault still
open and is recorded as `heal-all`; the last heal is the instant the recovery bound counts
from.

Guarantees: never more than two nodes down or paused at once, never more than two ZooKeeper
servers down except in the `kill-zk-majority` fault, which ends within 8 s (a cut that leaves no
majority anywhere is held as briefly, a minority site's cut 3-12 s); the same seed gives the
same sequence of choices (timing still varies with the machine); every kind comes once before
the weighted draws: first a pause of the leader past its session timeout, a cut of the
leader's site (where links can be cut) and a kill of the leader, then the other kinds in a
seeded order. In that first round every hold (a fault's, and the pause between two faults) is
its range's low end, so a short run meets every kind sooner, except the leader's pause and
cut: past its session timeout, then until another node leads (`_hold_leader_out`); later
rounds draw from the whole range. Each kind is recorded under its name in `KINDS` when
injected.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable

from soak_history import History
from soak_observer import Observer
from soak_sites import CUTS, SITE_OF_NODE, SITE_OF_SERVER
from soak_stack import SESSION_TIMEOUT, SoakStack

from cluster.dev.zookeeper import ZkServer

#: Fault kinds and their weights (each recorded under this name when injected).
KINDS = {
    "kill-node": 3,
    "pause-node": 3,
    "kill-zk": 3,
    "kill-zk-majority": 1,
    "restart-mc": 2,
    "kill-s3": 1,
    "cut": 2,
}
CORE_NODES = tuple(f"n{i}" for i in range(1, 6))
#: The first two faults, on the leader: a pause past its session timeout, then a kill.
LEADER_FIRST = ("pause-node", "kill-node")


class Nemesis:
    def __init__(
        self,
        stack: SoakStack,
        observer: Observer,
        history: History,
        seed: int,
        stop: threading.Event,
    ) -> None:
        self.stack = stack
        self.observer = observer
        self.history = history
        self.random = random.Random(seed)
        self.stop = stop
        self.paused: set[str] = set()
        self.killed: set[str] = set()
        self.zk_down: list[ZkServer] = []
        self.s3_down: set[str] = set()
        self.cut_sites: tuple[str, ...] = ()
        self.cuts = 0
        sites = stack.sites
        # Links are cut only where the sites are namespaces; elsewhere the summary says why not.
        self.kinds = {k: w for k, w in KINDS.items() if k != "cut" or not (sites and sites.skipped)}
        self._leader_next = False
        self._first_round = True

    def _record(self, kind: str, target: str, heals: bool, **extra: object) -> None:
        self.history.record(
            "nemesis", "fault", "ok", {"kind": kind, "target": target, "heals": heals, **extra}
        )

    def _hold(self, low: float, high: float) -> None:
        """Wait a seeded time in [low, high], or until the soak stops; in the first round `low`
        (the draw is made all the same, so the seeded choices after it do not change)."""
        drawn = self.random.uniform(low, high)
        self.stop.wait(low if self._first_round else drawn)

    def _hold_leader_out(self, leader: str | None) -> None:
        """Hold a fault of `leader` (the first round's pause and cut) past its session timeout
        (1.5 times it), then until another node leads (the observer reads the leader znode),
        at most 2.5 times it in all, or until the soak stops: the other side takes over before
        the fault heals unless that takes longer. One seeded draw, as `_hold`."""
        low, high = SESSION_TIMEOUT * 1.5, SESSION_TIMEOUT * 2.5
        self.random.uniform(low, high)
        deadline = time.monotonic() + high
        if self.stop.wait(low):
            return
        while self.observer.leader in (leader, None) and time.monotonic() < deadline:
            if self.stop.wait(0.25):
                return

    def run(self) -> None:
        self._hold(2, 6)
        kinds, weights = zip(*self.kinds.items(), strict=True)
        # Every kind once first, the leader's faults leading (a short run still meets each, and
        # a leader change), then by weight.
        # A cut of the leader's site, where there are sites to cut, between the two: the
        # leader the pause brought in is alive and acting when its site is cut off.
        rest = [k for k in kinds if k not in (*LEADER_FIRST, "cut")]
        pause, kill = LEADER_FIRST
        cut = ["cut"] if "cut" in kinds else []
        first = [*self.random.sample(rest, len(rest)), kill, *cut, pause]
        self._leader_next = True
        while not self.stop.is_set():
            self._first_round = bool(first)
            kind = first.pop() if first else self.random.choices(kinds, weights)[0]
            try:
                self._inject(kind)
            except Exception as e:  # a fault that cannot be injected is recorded, not fatal
                self.history.record("nemesis", "fault", "fail", {"kind": kind, "error": repr(e)})
            self._hold(1, 5)

    def _inject(self, kind: str) -> None:
        self._leader_next = self._leader_next and kind in (*LEADER_FIRST, "cut")
        actions: dict[str, Callable[[], None]] = {
            "kill-node": self._kill_node,
            "pause-node": self._pause_node,
            "kill-zk": lambda: self._kill_zk(self.random.choice((1, 2)), 3, 12),
            "kill-zk-majority": lambda: self._kill_zk(3, 2, 8),
            "restart-mc": self._restart_mc,
            "kill-s3": self._kill_s3,
            "cut": self._cut,
        }
        actions[kind]()

    def _pick_node(self) -> str:
        # Half the time the leader (always in the first round), since its faults are the ones
        # that test fencing.
        leader = self.observer.leader
        if leader in CORE_NODES and (self._leader_next or self.random.random() < 0.5):
            return leader
        return self.random.choice(CORE_NODES)

    def _kill_node(self) -> None:
        node = self._pick_node()
        self.stack.nodes[node].kill()
        self._record("kill-node", node, False)
        self._hold(1, 8)
        self.stack.start_node(node)
        self._record("restart-node", node, True)

    def _pause_node(self) -> None:
        node = self._pick_node()
        self.stack.nodes[node].signal(signal.SIGSTOP)
        self.paused.add(node)
        self._record("pause-node", node, False)
        # Shorter than the session sometimes, past it (the node is fenced) other times.
        if self._leader_next:
            self._hold_leader_out(node)
        else:
            self._hold(0.5, SESSION_TIMEOUT * 2.5)
        self.stack.nodes[node].signal(signal.SIGCONT)
        self.paused.discard(node)
        self._record("resume-node", node, True)

    def _kill_zk(self, count: int, low: float, high: float) -> None:
        assert self.stack.ensemble is not None
        servers = self.random.sample(self.stack.ensemble.servers, count)
        for server in servers:
            self.stack.ensemble.kill(server)
            self.zk_down.append(server)
        names = ",".join(f"zk{s.myid}" for s in servers)
        self._record("kill-zk" if count < 3 else "kill-zk-majority", names, False)
        self._hold(low, high)
        for server in servers:
            self.stack.start_zk(server)
            self.zk_down.remove(server)
        # The fault ends when the servers serve again (a JVM's start is not the product's).
        ready = self._zk_ready(servers)
        self._record("start-zk", names, True, ready=ready)

    def _zk_ready(self, servers: list[ZkServer]) -> bool:
        assert self.stack.ensemble is not None
        try:
            self.stack.ensemble.wait_ready(60, servers)
        except RuntimeError:
            return False
        return True

    def _restart_mc(self) -> None:
        kill = self.random.random() < 0.5
        self._record("restart-mc", "SIGKILL" if kill else "SIGTERM", False)
        self.stack.restart_mc(kill)
        self._record("mc-back", "mission-control", True)

    def _kill_s3(self) -> None:
        region = self.random.choice(sorted(self.stack.s3))
        process = self.stack.s3[region].process
        assert process is not None
        process.kill()
        self.s3_down.add(region)
        self._record("kill-s3", region, False)
        self._hold(2, 8)
        self.stack.start_s3(region)
        self.s3_down.discard(region)
        self._record("start-s3", region, True)

    def _pick_cut(self) -> tuple[str, ...]:
        draw = self.random.random()
        leader = self.observer.leader
        if leader in SITE_OF_NODE and not self.cuts:
            return (SITE_OF_NODE[leader],)
        if draw < 0.25:
            return CUTS[-1]  # `a` and `b` apart: no majority anywhere
        if leader in SITE_OF_NODE and draw < 0.625:
            return (SITE_OF_NODE[leader],)
        return self.random.choice(CUTS[:-1])

    def _cut(self) -> None:
        assert self.stack.sites is not None and self.stack.ensemble is not None
        leader = self.observer.leader
        sites = self._pick_cut()
        quorum = len(sites) == 1  # the others keep a majority of ZooKeeper
        self.stack.sites.cut(sites)
        self.cut_sites = sites
        self.cuts += 1
        self._record("cut", "+".join(sites), False, quorum_elsewhere=quorum)
        if self._leader_next:  # the leader's site, past its session: the other side takes over
            self._hold_leader_out(leader)
        else:
            self._hold(*((3, 12) if quorum else (2, 8)))
        self._heal_cut()
        self._record("heal-cut", "+".join(sites), True)
        # Healed when the link is back (a leader behind it may act at once); the servers
        # behind it serving again is recorded apart.
        ready = self._cut_ready(sites)
        self.history.record("nemesis", "cut-ready", "ok" if ready else "fail", {"sites": sites})

    def _heal_cut(self) -> None:
        if self.cut_sites and self.stack.sites is not None:
            self.stack.sites.heal(self.cut_sites)
        self.cut_sites = ()

    def _cut_ready(self, sites: tuple[str, ...]) -> bool:
        """The cut ends when the servers behind it serve again (they rejoin the quorum)."""
        assert self.stack.ensemble is not None
        servers = self.stack.ensemble.servers
        return self._zk_ready([s for s in servers if SITE_OF_SERVER[s.myid] in sites])

    def heal_all(self) -> None:
        """End every fault still open (after `run` returned); records what it healed."""
        healed = [f"heal cut {'+'.join(self.cut_sites)}"] if self.cut_sites else []
        self._heal_cut()
        healed += [f"resume {n}" for n in sorted(self.paused)]
        for node in sorted(self.paused):
            self.stack.nodes[node].signal(signal.SIGCONT)
        self.paused.clear()
        for node in CORE_NODES:
            if not self.stack.nodes[node].alive():
                self.stack.start_node(node)
                healed.append(f"start {node}")
        for server in list(self.zk_down):
            self.stack.start_zk(server)
            healed.append(f"start zk{server.myid}")
        self._zk_ready(list(self.zk_down))
        self.zk_down.clear()
        for region in sorted(self.s3_down):
            self.stack.start_s3(region)
            healed.append(f"start s3 {region}")
        self.s3_down.clear()
        self.history.record("nemesis", "heal-all", "ok", {"healed": healed})
