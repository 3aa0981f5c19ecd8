"""Mission Control ingest benchmark.

Many simulated clusters (enrolled first) post health checks and heartbeats concurrently to ONE
`mission-control serve` process (a subprocess), on SQLite and on PostgreSQL. In the same run, a
bare aiohttp handler that only parses the same JSON is measured the same way; figures are
printed next to it as ratios. Goal: >= 1,500 health checks/s with p99 < 100 ms on PostgreSQL.

The load comes from separate processes (`http_load.py`: one keep-alive connection per
cluster, a lean client), so the figures are the server's. Targets are measured in turn, each
`--runs` times, interleaved (bare, sqlite, postgresql, bare, ...), and the median run is
reported: the machine this runs on is shared and busy, so compare ratios within a run.
Besides req/s and latency, the server's own CPU time per request is printed: it depends far
less on what else the machine is doing than throughput does.

    .venv/bin/python benchmarks/mc_ingest.py [--clusters 500] [--seconds 10] [--warmup 3]
        [--runs 3] [--rate 0] [--loaders 1] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import psutil
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "mission_control"))

from http_load import KINDS, Plan  # noqa: E402
from mc_messages import health_json  # noqa: E402
from mc_postgres import free_port, fresh_database, postgres_server  # noqa: E402
from mc_process import serve, stop, wait_until_serving  # noqa: E402

from mission_control.db.engine import create_engine  # noqa: E402
from mission_control.service.context import ServiceContext  # noqa: E402
from mission_control.service.fleet.enrollment import create_cluster  # noqa: E402

LOADER = Path(__file__).resolve().parent / "http_load.py"


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    pid: int
    clusters: list[tuple[str, str]]


@dataclass(frozen=True)
class Figures:
    rate: float
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Measurement:
    figures: dict[str, Figures]
    errors: int
    server_cpu_us: float  # server process CPU per completed request
    loader_cpu_us: float


def figures(latencies: list[float], seconds: float) -> Figures:
    ordered = sorted(latencies)
    if not ordered:
        return Figures(0.0, 0.0, 0.0)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Figures(len(ordered) / seconds, statistics.median(ordered) * 1000, p99 * 1000)


async def baseline_server(port: int) -> None:
    async def parse(request: web.Request) -> web.Response:
        json.loads(await request.read())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/api/v1/clusters/{cluster_id}/{kind}", parse)
    app.router.add_get("/api/v1/openapi.json", lambda _r: web.json_response({}))  # readiness
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def enroll_all(url: str, db_url: str, count: int) -> list[tuple[str, str]]:
    engine = create_engine(db_url)
    try:
        ctx = ServiceContext(engine=engine)
        tokens = [
            (await create_cluster(ctx, f"bench-{i}", "EU")).enrollment_token for i in range(count)
        ]
    finally:
        await engine.dispose()
    connector = aiohttp.TCPConnector(limit=50)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def enroll(token: str) -> tuple[str, str]:
            async with http.post(f"{url}/api/v1/enroll", json={"token": token}) as response:
                reply = await response.json()
                return reply["cluster_id"], reply["credential"]

        return list(await asyncio.gather(*(enroll(t) for t in tokens)))


def tree_times(process: psutil.Process) -> tuple[float, float]:
    """(user + system, system) CPU seconds of a server and its worker processes, read at once."""
    times = [p.cpu_times() for p in [process, *process.children(recursive=True)]]
    return sum(t.user + t.system for t in times), sum(t.system for t in times)


def tree_cpu(process: psutil.Process) -> float:
    """User + system CPU seconds of a server and its worker processes."""
    return tree_times(process)[0]


def measure(target: Target, args: argparse.Namespace, workdir: Path) -> Measurement:
    """One measurement window against `target`, load from `args.loaders` processes."""
    bodies = {"health": health_json(1), "heartbeat": {"epoch": 1}}
    start_at = time.time() + 1.5  # the loaders' start-up
    loaders = []
    for i in range(args.loaders):
        plan = Plan(
            "127.0.0.1",
            target.port,
            target.clusters[i :: args.loaders],
            bodies,
            start_at,
            args.warmup,
            args.seconds,
            args.rate / args.loaders,
        )
        plan_file = workdir / f"plan-{i}.json"
        plan_file.write_text(json.dumps(asdict(plan)))
        out = workdir / f"result-{i}.json"
        out.unlink(missing_ok=True)
        loaders.append((subprocess.Popen([sys.executable, str(LOADER), plan_file, out]), out))
    server = psutil.Process(target.pid)
    time.sleep(max(0.0, start_at + args.warmup - time.time()))
    cpu_before = tree_cpu(server)
    time.sleep(args.seconds)
    cpu_used = tree_cpu(server) - cpu_before
    latencies: dict[str, list[float]] = {k: [] for k in KINDS}
    errors, loader_cpu = 0, 0.0
    for process, out in loaders:
        try:
            process.wait(timeout=args.seconds + 90)
        finally:
            stop(process)
        result = json.loads(out.read_text())
        for kind in KINDS:
            latencies[kind] += result["latencies"][kind]
        errors += result["errors"]
        loader_cpu += result["cpu_s"]
    done = sum(len(v) for v in latencies.values()) or 1
    return Measurement(
        {k: figures(v, args.seconds) for k, v in latencies.items()},
        errors,
        cpu_used / done * 1e6,
        loader_cpu / done * 1e6,  # whole run incl. warm-up: an upper bound
    )


@contextlib.contextmanager
def bare_target(clusters: int) -> Iterator[Target]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--baseline-server", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", process, None)
        fake = [(str(uuid.uuid4()), "mcc.x.y") for _ in range(clusters)]
        yield Target("bare aiohttp", port, process.pid, fake)
    finally:
        stop(process)


@contextlib.contextmanager
def mission_control_target(
    name: str, db_url: str, clusters: int, workdir: Path, workers: int = 1
) -> Iterator[Target]:
    port = free_port()
    extra = ["--workers", str(workers)] if workers > 1 else []
    log = workdir / f"serve-{name.replace(' ', '-')}.log"
    with serve(db_url, port, extra=extra, log=log) as process:
        enrolled = asyncio.run(enroll_all(f"http://127.0.0.1:{port}", db_url, clusters))
        yield Target(name, port, process.pid, enrolled)


def line(name: str, kind: str, f: Figures, base: Figures | None, cpu_us: float) -> str:
    ratio = ""
    if base and base.rate and base.p50_ms and base.p99_ms:
        ratio = (
            f"  x{f.rate / base.rate:.2f} rate, x{f.p50_ms / base.p50_ms:.1f} p50, "
            f"x{f.p99_ms / base.p99_ms:.1f} p99"
        )
    return (
        f"{name:<13} {kind:<9} {f.rate:7.0f}/s  p50 {f.p50_ms:7.1f} ms  p99 {f.p99_ms:7.1f} ms"
        f"  cpu {cpu_us:5.0f} us/req{ratio}"
    )


def report(runs: list[dict[str, Measurement]]) -> None:
    """Each run, then per target the median of each figure and of each same-run ratio."""
    for number, run in enumerate(runs, 1):
        print(f"-- run {number}")
        base = run["bare aiohttp"]
        for name, m in run.items():
            for kind in KINDS:
                other = None if m is base else base.figures[kind]
                print(line(name, kind, m.figures[kind], other, m.server_cpu_us))
            if m.errors:
                print(f"{name:<12} errors    {m.errors}")
    print(f"-- median of {len(runs)} run(s), each figure and each same-run ratio on its own")
    for name in runs[0]:
        cpu = statistics.median(r[name].server_cpu_us for r in runs)
        loader = statistics.median(r[name].loader_cpu_us for r in runs)
        print(f"{name:<13} load generator cpu {loader:5.0f} us/req (an upper bound)")
        for kind in KINDS:
            mine = [r[name].figures[kind] for r in runs]
            f = Figures(
                statistics.median(x.rate for x in mine),
                statistics.median(x.p50_ms for x in mine),
                statistics.median(x.p99_ms for x in mine),
            )
            text = line(name, kind, f, None, cpu)
            if name != "bare aiohttp":
                pairs = [(r[name].figures[kind], r["bare aiohttp"].figures[kind]) for r in runs]
                pairs = [(a, b) for a, b in pairs if b.rate and b.p50_ms and b.p99_ms]
                if pairs:
                    rate = statistics.median(a.rate / b.rate for a, b in pairs)
                    p50 = statistics.median(a.p50_ms / b.p50_ms for a, b in pairs)
                    p99 = statistics.median(a.p99_ms / b.p99_ms for a, b in pairs)
                    text += f"  x{rate:.2f} rate, x{p50:.1f} p50, x{p99:.1f} p99"
            print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clusters", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=0, help="requests/s offered; 0: closed loop")
    parser.add_argument("--loaders", type=int, default=1, help="load generator processes")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--workers",
        default="1",
        help="comma-separated worker counts to measure on PostgreSQL (e.g. 1,2); SQLite: 1",
    )
    parser.add_argument("--baseline-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        asyncio.run(baseline_server(args.baseline_server))
        return
    mode = f"open loop at {args.rate:g} req/s" if args.rate else "closed loop"
    print(
        f"{args.clusters} clusters, {mode}, {args.seconds:g} s per run after {args.warmup:g} s "
        f"warm-up, {args.loaders} loader process(es), {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}, plain HTTP on loopback"
    )
    with tempfile.TemporaryDirectory(prefix="mc-bench-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        targets = [stack.enter_context(bare_target(args.clusters))]
        for backend in filter(None, args.backends.split(",")):
            if backend == "sqlite":
                db_url = f"sqlite:///{workdir / 'bench.db'}"
                targets.append(
                    stack.enter_context(
                        mission_control_target(backend, db_url, args.clusters, workdir)
                    )
                )
            elif backend == "postgresql":
                server = stack.enter_context(postgres_server())
                for workers in (int(w) for w in args.workers.split(",")):
                    db_url = stack.enter_context(fresh_database(server))
                    name = backend if workers == 1 else f"{backend} x{workers}"
                    targets.append(
                        stack.enter_context(
                            mission_control_target(name, db_url, args.clusters, workdir, workers)
                        )
                    )
            else:
                raise SystemExit(f"unknown backend {backend!r}")
        runs = [{t.name: measure(t, args, workdir) for t in targets} for _ in range(args.runs)]
        report(runs)


if __name__ == "__main__":
    main()
