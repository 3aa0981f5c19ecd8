"""Fleet scale, steady: Mission Control on PostgreSQL (`--workers 2`) under 10,000 simulated
clusters at their real cadence, open loop.

Each cluster sends a health check every 120 s, a license check every 300 s and a heartbeat
every 30 s, each at its own fixed phase (about 450 requests/s for 10,000 clusters), for
`--seconds` (10 minutes by default) after a warm-up. Open loop: a request leaves at its
scheduled time whatever happened to the ones before, and its latency counts from that time, so
a server that falls behind is charged for every request it kept waiting. Reported: p50, p99 and
max latency per kind and overall, stalls (requests answered more than 1 s after their time),
errors, and the server's CPU time per request (the server process and its workers), next to a
bare aiohttp handler that only parses the same JSON, measured in the same run at the same
offered load (`--bare-seconds`).

The load comes from a separate process (this file with `--loader`): a lean keep-alive HTTP/1.1
client with a bounded pool of connections (`--connections`, one request in flight on each, as
a load balancer in front of Mission Control would hold), so that it costs the server's machine
as little as possible. Its own lateness (how late it sent a request, its CPU) is
reported too: on a shared 2-core machine it is part of what the figures show.

    .venv/bin/python benchmarks/fleet.py [--clusters 10000] [--seconds 600] [--workers 2]
        [--bare-seconds 60] [--warmup 10] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "mission_control"))
sys.path.insert(0, str(HERE))

# The ingest benchmark's lean keep-alive connection (one request in flight) and CPU meter.
from http_load import _Connection  # noqa: E402
from mc_ingest import tree_times  # noqa: E402

#: Seconds between two messages of each kind from one cluster (the product's defaults).
CADENCE = {"health": 120.0, "license": 300.0, "heartbeat": 30.0}
STALL_S = 1.0


@dataclass(frozen=True)
class LoadPlan:
    port: int
    clusters: list[tuple[str, str]]  # (cluster id, credential)
    bodies: dict[str, dict[str, Any]]  # kind -> body; message_id is filled in per request
    start_at: float  # wall clock when sending starts
    warmup: float
    seconds: float
    seed: int
    speedup: float = 1.0
    connections: int = 256


@dataclass
class LoadResult:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in CADENCE})
    errors: int = 0
    late_sends: list[float] = field(default_factory=list)  # how late the loader sent, > 10 ms
    connections: int = 0
    cpu_s: float = 0.0


# --- the load generator (its own process) ---------------------------------------------------------


def schedule(plan: LoadPlan, start: float) -> list[tuple[float, int, str]]:
    """(due, cluster index, kind) for the whole run, each cluster at a random fixed phase."""
    rng = random.Random(plan.seed)
    end = start + plan.warmup + plan.seconds
    heap: list[tuple[float, int, str]] = []
    periods = {kind: period / plan.speedup for kind, period in CADENCE.items()}
    for index in range(len(plan.clusters)):
        for kind, period in periods.items():
            heap.append((start + rng.uniform(0, period), index, kind))
    heapq.heapify(heap)
    out = []
    while heap and heap[0][0] < end:
        due, index, kind = heapq.heappop(heap)
        out.append((due, index, kind))
        heapq.heappush(heap, (due + periods[kind], index, kind))
    return out


async def run_load(plan: LoadPlan) -> LoadResult:
    result = LoadResult()
    loop = asyncio.get_running_loop()
    start = time.perf_counter() + (plan.start_at - time.time())
    window = (start + plan.warmup, start + plan.warmup + plan.seconds)
    heads: dict[tuple[int, str], tuple[bytes, bytes]] = {}

    def template(index: int, kind: str) -> tuple[bytes, bytes]:
        key = (index, kind)
        if key not in heads:
            cluster_id, credential = plan.clusters[index]
            body = json.dumps({**plan.bodies[kind], "message_id": "#" * 36}).encode()
            head = (
                f"POST /api/v1/clusters/{cluster_id}/{kind} HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{plan.port}\r\nAuthorization: Bearer {credential}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            before, after = body.split(b"#" * 36)
            heads[key] = (head + before, after)
        return heads[key]

    # A bounded pool, as a load balancer's: a request waits for a free connection (its
    # latency still counts from its scheduled time) instead of opening ever more connections
    # while the server is slow, which would end in the listen backlog and SYN retries.
    idle: list[_Connection] = []
    free = asyncio.Semaphore(plan.connections)
    tasks: set[asyncio.Task[None]] = set()

    async def send(due: float, index: int, kind: str) -> None:
        before, after = template(index, kind)
        payload = before + str(uuid.uuid4()).encode() + after
        async with free:
            connection = None
            while idle and connection is None:
                candidate = idle.pop()
                connection = None if candidate.lost else candidate
            try:
                if connection is None:
                    _, connection = await loop.create_connection(
                        _Connection, "127.0.0.1", plan.port
                    )
                    result.connections += 1
                ok = await asyncio.wait_for(connection.request(payload), 60) == 200
            except (OSError, TimeoutError, ConnectionError):
                ok, connection = False, None
            done = time.perf_counter()
            if connection is not None:
                idle.append(connection)
        if window[0] <= due < window[1]:
            if ok:
                result.latencies[kind].append(done - due)
            else:
                result.errors += 1

    for due, index, kind in schedule(plan, start):
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        elif now - due > 0.01 and window[0] <= due < window[1]:
            result.late_sends.append(now - due)
        task = asyncio.create_task(send(due, index, kind))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=90)
    for c in idle:
        c.close()
    return result


def loader_main(plan_file: Path, result_file: Path) -> None:
    raw = json.loads(plan_file.read_text())
    plan = LoadPlan(**{**raw, "clusters": [tuple(c) for c in raw["clusters"]]})
    result = asyncio.run(run_load(plan))
    result.cpu_s = time.process_time()
    temp = result_file.with_suffix(".tmp")
    temp.write_text(json.dumps(asdict(result)))
    temp.replace(result_file)


# --- the benchmark ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    name: str
    result: LoadResult
    seconds: float
    server_cpu_s: float
    server_system_s: float  # of which in the kernel (sockets: loopback delivers in the sender)

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.result.latencies.values())

    @property
    def cpu_us(self) -> float:
        return self.server_cpu_s / max(1, self.requests) * 1e6


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def describe(m: Measured, bare: Measured | None) -> list[str]:
    every = [x for v in m.result.latencies.values() for x in v]
    lines = []
    for kind, values in [*m.result.latencies.items(), ("all", every)]:
        if not values:
            continue
        lines.append(
            f"{m.name:<18} {kind:<9} {len(values) / m.seconds:6.1f}/s  "
            f"p50 {statistics.median(values) * 1e3:7.1f} ms  "
            f"p99 {percentile(values, 0.99) * 1e3:7.1f} ms"
            f"  max {max(values) * 1e3:8.1f} ms"
        )
    stalls = sum(1 for x in every if x > STALL_S)
    late = m.result.late_sends
    ratio = f"  x{m.cpu_us / bare.cpu_us:.2f} of bare" if bare and bare.cpu_us else ""
    lines.append(
        f"{m.name:<18} stalls > {STALL_S:g} s: {stalls}   errors: {m.result.errors}   "
        f"server cpu {m.cpu_us:6.0f} us/req{ratio} "
        f"({100 * m.server_system_s / max(m.server_cpu_s, 1e-9):.0f}% system)   "
        f"connections {m.result.connections}"
    )
    lines.append(
        f"{m.name:<18} loader: {len(late)} sends > 10 ms late (max "
        f"{max(late, default=0) * 1e3:.0f} ms), cpu {m.result.cpu_s:.1f} s"
    )
    return lines


def measure(
    name: str,
    port: int,
    pid: int,
    clusters: list[tuple[str, str]],
    seconds: float,
    args: argparse.Namespace,
    workdir: Path,
    profile: Path | None = None,
) -> Measured:
    from mc_messages import health_json

    bodies = {
        "health": health_json(1),
        "license": {"epoch": 1, "host_units_in_use": 5},
        "heartbeat": {"epoch": 1},
    }
    start_at = time.time() + 3.0  # the loader's start-up (it builds the schedule first)
    plan = LoadPlan(port, clusters, bodies, start_at, args.warmup, seconds, args.seed, args.speedup)
    plan_file = workdir / f"plan-{name.split()[0]}.json"
    plan_file.write_text(json.dumps(asdict(plan)))
    out = workdir / f"result-{name.split()[0]}.json"
    out.unlink(missing_ok=True)
    loader = subprocess.Popen([sys.executable, __file__, "--loader", str(plan_file), str(out)])
    server = psutil.Process(pid)
    spy: subprocess.Popen[bytes] | None = None
    try:
        time.sleep(max(0.0, start_at + args.warmup - time.time()))
        cpu_before, system_before = tree_times(server)
        if profile is not None:
            spy = start_py_spy(pid, seconds, profile)
        time.sleep(seconds)
        cpu_after, system_after = tree_times(server)
        cpu_used, system_used = cpu_after - cpu_before, system_after - system_before
        loader.wait(timeout=seconds + 180)
    finally:
        for process in (p for p in (loader, spy) if p is not None):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
    raw = json.loads(out.read_text())
    return Measured(name, LoadResult(**raw), seconds, cpu_used, system_used)


def start_py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """Sample the server and its workers (py-spy, 100 Hz, out of process) for `seconds`."""
    beside = Path(sys.executable).parent / "py-spy"
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    argv = [spy, "record", "--pid", str(pid), "--subprocesses", "--format", "raw"]
    argv += ["--rate", "100", "--duration", str(int(seconds)), "--nonblocking", "-o", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


#: Where a sample's innermost frame is, by file path: the parts of a request's CPU.
PARTS = (
    ("asyncpg", "(asyncpg/"),
    ("sqlalchemy", "(sqlalchemy/"),
    ("pydantic", "(pydantic"),
    ("aiohttp", "(aiohttp/"),
    ("mission_control", "(mission_control/"),
    ("contract", "(contract/"),
    ("asyncio", "(asyncio/"),
    ("selectors and sockets", "(selectors.py"),
    ("json", "(json/"),
)


def profile_report(raw: Path, top: int = 20) -> list[str]:
    """py-spy's collapsed stacks as shares of the samples: by part (the innermost frame's
    package) and by Mission Control function (the innermost frame of our own code, with the
    libraries it called; none: the event loop and aiohttp's server around the handlers)."""
    parts: dict[str, int] = {}
    ours: dict[str, int] = {}
    total = 0
    for text in raw.read_text().splitlines():
        stack, _, count_text = text.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")[1:]  # the first is the process
        if not frames:
            continue
        total += count
        part = next((name for name, marker in PARTS if marker in frames[-1]), "other")
        parts[part] = parts.get(part, 0) + count
        own = [f for f in frames if "(mission_control/" in f and "serving.py" not in f]
        own = [f for f in own if "cli.py" not in f and "middleware.py" not in f]
        where = own[-1].split(":")[0] + ")" if own else "(none: event loop, HTTP server)"
        ours[where] = ours.get(where, 0) + count
    if not total:
        return ["profile: no samples"]
    lines = [f"profile: {total} samples; self time by part:"]
    for name, n in sorted(parts.items(), key=lambda x: -x[1]):
        lines.append(f"  {100 * n / total:5.1f}%  {name}")
    lines.append("by Mission Control function (with what it calls):")
    for where, n in sorted(ours.items(), key=lambda x: -x[1])[:top]:
        lines.append(f"  {100 * n / total:5.1f}%  {where}")
    return lines


@contextlib.contextmanager
def bare_server() -> Iterator[tuple[int, int]]:
    from mc_ingest import bare_target

    with bare_target(0) as target:
        yield target.port, target.pid


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clusters", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--bare-seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--speedup",
        type=float,
        default=1.0,
        help="send every kind this much more often (fewer clusters, same rate: development)",
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy's samples of Mission Control here (raw stacks)"
    )
    parser.add_argument(
        "--connections", type=int, default=256, help="the load generator's connections, at most"
    )
    parser.add_argument("--loader", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loader:
        loader_main(*args.loader)
        return
    from mc_ingest import enroll_all
    from mc_kit import share_a_secrets_key
    from mc_postgres import fresh_database, postgres_server
    from mc_process import serve

    from cluster.dev.processes import free_port

    share_a_secrets_key()  # PostgreSQL needs one given (it seals TOTP secrets)
    rate = args.clusters * args.speedup * sum(1 / p for p in CADENCE.values())
    print(
        f"{args.clusters} clusters, open loop at {rate:.0f} req/s (health {CADENCE['health']:g} s, "
        f"license {CADENCE['license']:g} s, heartbeat {CADENCE['heartbeat']:g} s), "
        f"{args.seconds:g} s after {args.warmup:g} s warm-up; "
        f"bare handler {args.bare_seconds:g} s; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, plain HTTP on loopback"
    )
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        workdir = Path(tmp)
        fake = [(str(uuid.uuid4()), "mcc.x.y") for _ in range(args.clusters)]
        with bare_server() as (port, pid):
            bare = measure("bare aiohttp", port, pid, fake, args.bare_seconds, args, workdir)
        for text in describe(bare, None):
            print(text)
        with postgres_server() as base, fresh_database(base) as db_url:
            port = free_port()
            extra = ["--workers", str(args.workers)]
            with serve(db_url, port, extra=extra, log=workdir / "serve.log") as process:
                t0 = time.monotonic()
                clusters = asyncio.run(
                    enroll_all(f"http://127.0.0.1:{port}", db_url, args.clusters)
                )
                print(f"enrolled {len(clusters)} clusters in {time.monotonic() - t0:.0f} s")
                name = f"mission-control x{args.workers}"
                mc = measure(
                    name, port, process.pid, clusters, args.seconds, args, workdir, args.profile
                )
        for text in describe(mc, bare):
            print(text)
        if args.profile is not None:
            for text in profile_report(args.profile):
                print(text)
        every = [x for v in mc.result.latencies.values() for x in v]
        p99 = percentile(every, 0.99) * 1e3
        stalls = sum(1 for x in every if x > STALL_S)
        ratio = mc.cpu_us / bare.cpu_us if bare.cpu_us else float("nan")
        verdict = "met" if p99 < 50 and stalls == 0 and ratio <= 2 else "NOT met"
        print(
            f"goal (p99 < 50 ms, no stall > 1 s, cpu <= 2x bare): {verdict}: "
            f"p99 {p99:.1f} ms, {stalls} stalls, cpu x{ratio:.2f}"
        )


if __name__ == "__main__":
    main()
