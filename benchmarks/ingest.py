"""Monitoring-data ingest benchmark: log records per second into one node's data API.

Three servers, each a process of its own serving HTTPS on loopback with a fresh store, measured
in turn (interleaved, `--runs` times each, the median reported) in ONE run:

- `masked`: the node's data API (`cluster.data.api`) with every masking stage on: the
  environment's rules are the defaults (card numbers, IP addresses) plus every other built-in
  detector (e-mail, IBAN, UUID, IDs) and a pattern rule;
- `unmasked`: the same API and environment with no processing rules;
- `default`: the same API with a new environment's rules (card numbers, IP addresses);
- `bare`: an aiohttp handler that parses the same JSON lines and writes the same rows through
  the same store (SQLite, WAL), with no token check, no validation and no masking.

The load is `--clients` keep-alive HTTPS connections posting batches of `--batch` JSON-line
records (realistic lines: half carry a card number, an IP address or an e-mail). Goals: masking
costs at most 20% (masked >= 0.8 x unmasked) and ingest reaches 0.5 x bare. Besides records
per second, the server's own CPU time per record is printed (psutil): on a shared machine it
moves far less than throughput does.

    .venv/bin/python benchmarks/ingest.py [--seconds 8] [--runs 3] [--clients 8] [--batch 100]
    .venv/bin/python benchmarks/ingest.py --in-process [--runs 5] [--batch 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import psutil
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cluster.data.api import create_app  # noqa: E402
from cluster.data.settings import DataSettings, Environment  # noqa: E402
from cluster.data.store import LogRow, MonitoringStore  # noqa: E402
from cluster.data.tokens import TokenRecord, new_token  # noqa: E402
from cluster.dev.processes import free_port  # noqa: E402
from contract.certs import write_dev_ca  # noqa: E402
from contract.privacy.rules import DEFAULT_RULES, ProcessingRule  # noqa: E402

T = TypeVar("T")
MODES = ("bare", "unmasked", "default", "masked")
LINES = [
    "payment accepted for order 7731 card 4111111111111111 from 203.0.113.77",
    "GET /api/cart 200 in 12 ms",
    "login ok for ann@example.com from 2001:db8::17",
    "cache miss for product shoes-42, fetching from origin",
    "refund to DE89370400440532013000 requested by session 123e4567-e89b-12d3-a456-426614174000",
    "worker 3 finished batch in 0.41 s",
]
MASKED_RULES = (
    *DEFAULT_RULES,
    ProcessingRule("mails", detector="email"),
    ProcessingRule("ibans", detector="iban"),
    ProcessingRule("uuids", detector="uuid"),
    ProcessingRule("ids", detector="id"),
    ProcessingRule("customer", pattern=r"customer=\w+", replacement="customer=<masked>"),
)

RULES = {"unmasked": (), "default": DEFAULT_RULES, "masked": MASKED_RULES}


class StaticState:
    """The `DataState` of a node whose settings and tokens do not change during the run."""

    def __init__(self, store: MonitoringStore, env: Environment, token: TokenRecord) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.node = "bench"
        self.internal_key: bytes | None = None
        self.store = store
        self._settings = DataSettings({env.name: env})
        self._token = token
        self._executor = ThreadPoolExecutor(max_workers=1)

    def settings(self) -> DataSettings:
        return self._settings

    def token(self, token_id: str) -> TokenRecord | None:
        return self._token if token_id == self._token.id else None

    async def run(self, fn: Callable[[MonitoringStore], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self.store)


def bare_app(state: StaticState) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        now = time.time()
        rows = [
            LogRow("prod", now, "info", doc["message"], doc.get("attributes", {}))
            for doc in map(json.loads, (await request.read()).splitlines())
        ]
        await state.run(partial(MonitoringStore.add_logs, rows=rows))
        return web.json_response({"stored": len(rows)})

    app = web.Application(client_max_size=2 << 20)
    app.router.add_post("/v1/logs", handle)
    return app


def serve(mode: str, port: int, directory: Path, token_file: Path) -> None:
    """The server process: one mode, until killed."""
    text, record = new_token("ingest", "prod", None, time.time())
    token_file.write_text(text)
    rules = RULES.get(mode, ())
    state = StaticState(MonitoringStore(directory), Environment("prod", rules=rules), record)
    app = bare_app(state) if mode == "bare" else create_app(state)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "tls" / "server.pem", directory / "tls" / "server-key.pem")
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=context, print=None,
                access_log=None)  # fmt: skip


def body(batch: int, offset: int) -> bytes:
    return "\n".join(
        json.dumps({"message": LINES[(offset + i) % len(LINES)], "level": "info"})
        for i in range(batch)
    ).encode()


async def load(
    port: int, token: str, ca: Path, seconds: float, clients: int, batch: int
) -> tuple[float, int]:
    context = ssl.create_default_context(cafile=str(ca))
    url = f"https://127.0.0.1:{port}/v1/logs"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    bodies = [body(batch, i) for i in range(len(LINES))]
    stored = 0
    deadline = time.monotonic() + seconds

    async def client(n: int, session: aiohttp.ClientSession) -> None:
        nonlocal stored
        i = n
        while time.monotonic() < deadline:
            async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as r:
                answer = await r.json()
                assert r.status == 200, answer
                stored += int(answer["stored"])
            i += 1

    connector = aiohttp.TCPConnector(ssl=context, limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        await asyncio.gather(*(client(n, session) for n in range(clients)))
        took = time.monotonic() - started
    return stored / took, stored


def measure(mode: str, args: argparse.Namespace, base: Path, run: int) -> tuple[float, float]:
    """Records per second, and the server's CPU microseconds per record."""
    directory = base / f"{mode}-{run}"
    (directory / "tls").mkdir(parents=True)
    tls = write_dev_ca(directory / "tls", ["127.0.0.1"])
    port = free_port()
    token_file = directory / "token"
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", mode, "--port", str(port), "--dir", str(directory)],
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not token_file.exists() or not _listening(port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"the {mode} server did not start")
            time.sleep(0.05)
        token = token_file.read_text()
        asyncio.run(load(port, token, tls.ca_cert, 1.0, args.clients, args.batch))  # warm-up
        server = psutil.Process(proc.pid)
        cpu = sum(server.cpu_times()[:2])
        rate, stored = asyncio.run(
            load(port, token, tls.ca_cert, args.seconds, args.clients, args.batch)
        )
        return rate, (sum(server.cpu_times()[:2]) - cpu) / stored * 1e6
    finally:
        proc.terminate()
        proc.wait(10)


def in_process(rounds: int, batch: int) -> None:
    """CPU per record of what a node does to a batch before storing it (`prepare_log_lines`:
    parse, validate, mask), without HTTP, TLS or SQLite: the best of `rounds` rounds per mode,
    the modes interleaved. Steadier than the servers' figures on a shared machine."""
    from cluster.data.ingest import prepare_log_lines

    bodies = [body(batch, i) for i in range(len(LINES))]
    envs = {mode: Environment("prod", rules=rules) for mode, rules in RULES.items()}
    best = dict.fromkeys(envs, float("inf"))
    for _ in range(rounds):
        for mode, env in envs.items():
            started = time.process_time()
            for _ in range(20):
                for data in bodies:
                    prepare_log_lines(data, env, 0.0)
            took = (time.process_time() - started) / (20 * len(bodies) * batch) * 1e6
            best[mode] = min(best[mode], took)
    print("in process, CPU per record: " + ", ".join(f"{m} {v:.2f} us" for m, v in best.items()))
    print(f"masking (masked - unmasked) {best['masked'] - best['unmasked']:.2f} us, default "
          f"rules {best['default'] - best['unmasked']:.2f} us; masked vs unmasked by CPU "
          f"{best['unmasked'] / best['masked']:.2f}")  # fmt: skip


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="only the masking stage's CPU per record, in this process",
    )
    parser.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.dir, args.dir / "token")
        return
    if args.in_process:
        in_process(max(args.runs, 5), args.batch)
        return
    rates: dict[str, list[float]] = {m: [] for m in MODES}
    cpus: dict[str, list[float]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        for run in range(args.runs):
            for mode in MODES:
                rate, cpu = measure(mode, args, Path(tmp), run)
                rates[mode].append(rate)
                cpus[mode].append(cpu)
                print(f"run {run + 1} {mode:9} {rate:10,.0f} records/s  server CPU {cpu:5.1f} us "
                      "per record", flush=True)  # fmt: skip
    median = {m: statistics.median(v) for m, v in rates.items()}
    cpu = {m: statistics.median(v) for m, v in cpus.items()}
    result: dict[str, Any] = {
        "records_per_s": {m: round(v) for m, v in median.items()},
        "server_cpu_us_per_record": {m: round(v, 1) for m, v in cpu.items()},
        "masked_vs_unmasked": round(median["masked"] / median["unmasked"], 3),
        "masked_vs_bare": round(median["masked"] / median["bare"], 3),
        "unmasked_vs_bare": round(median["unmasked"] / median["bare"], 3),
        "by_cpu_masked_vs_unmasked": round(cpu["unmasked"] / cpu["masked"], 3),
        "by_cpu_masked_vs_bare": round(cpu["bare"] / cpu["masked"], 3),
        "default_vs_unmasked": round(median["default"] / median["unmasked"], 3),
        "by_cpu_default_vs_unmasked": round(cpu["unmasked"] / cpu["default"], 3),
        "clients": args.clients,
        "batch": args.batch,
        "seconds": args.seconds,
        "runs": args.runs,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    print(
        f"masking costs {1 - result['masked_vs_unmasked']:.0%} of throughput, "
        f"{1 - result['by_cpu_masked_vs_unmasked']:.0%} by server CPU (goal <= 20%); "
        f"masked ingest is {result['masked_vs_bare']:.2f} x bare, "
        f"{result['by_cpu_masked_vs_bare']:.2f} by CPU (goal >= 0.5)"
    )


if __name__ == "__main__":
    main()
