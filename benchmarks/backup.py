"""Backup benchmark: `managed backup` on a real one-node cluster against plain copies.

A real ZooKeeper ensemble (cluster/dev/zookeeper.py), a real `managed node run` process whose
data directory holds `--size` bytes (default 1 GiB: half in four large files, half in small
files), one moto_server per region. Each comparison is repeated `--rounds` times with the two
sides alternating who goes first:
  (a) `managed backup run --wait` to file://    vs  `tar -cf` of the same directory to the same
                                                     disk (+ fsync)                 goal >= 0.8
  (b) `managed backup run --wait` to moto S3    vs  boto3 upload_fileobj of that tar to the
                                                     same endpoint                  goal >= 0.8
  (c) run to an S3 primary + mirror (another    vs  the same run to the primary alone
      region's endpoint)                                                             goal <= 1.3
  (d) `managed backup restore` from S3          vs  a streamed boto3 get_object of the tar,
                                                     piped into `tar -x`           goal >= 0.8
  (v) `managed backup verify --key` from S3     vs  a streamed get_object of the same
                                                     objects, discarded            goal >= 0.8
  (e) `managed backup drill run --wait`         vs  `managed backup restore` of the same
                                                     backup (drill / restore)       reported
(a), (b), (d), (v): plain time / our time (1.0 = as fast as the plain copy); (c): with /
without; (e): drill / restore. The times are wall times of the CLI commands, start-up and
polling included, as a user sees them. Peak RSS is that of the node process that writes or
drills (its high-water mark reset before each run) and of the restore and verify processes
(goal < 200 MiB). Before every timed step the data is read once (warm page cache for both
sides) and `sync` flushes earlier steps' dirty pages.
(d) and (v) also give a CPU ratio: the plain side's CPU (user + system of this process while it
streams, plus `tar`'s) over the command's own (its process and children, from
`getrusage(RUSAGE_CHILDREN)`), what a machine whose two cores are shared can still show when its
wall times scatter. The S3 endpoint's CPU is reported beside it, for each side: it serves both.
`--compare-with DIR` runs the same restore and verify commands from another checkout (its
`backup` and `cluster` packages first on PYTHONPATH, e.g. a `git worktree` of the base commit),
alternating with this one and the plain side in every round, so old and new code are measured
in the same session on the same backup.
Run: .venv/bin/python benchmarks/backup.py [--size 1GiB] [--rounds 3] [--only abcdve]
     [--workdir D] [--zk-servers 3] [--compare-with DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backup.errors import ConfigError  # noqa: E402
from backup.throttle import parse_rate  # noqa: E402
from cluster.dev import s3 as devs3  # noqa: E402
from cluster.dev.processes import Process, free_port, start, wait_until  # noqa: E402
from cluster.dev.zookeeper import Ensemble  # noqa: E402
from cluster.zk.client import CA_ENV  # noqa: E402

ZK_AUTH = "bench:bench-secret"
GOALS = {
    "a_file": (">=", 0.8),
    "b_s3": (">=", 0.8),
    "c_mirror": ("<=", 1.3),
    "d_restore": (">=", 0.8),
    "v_verify": (">=", 0.8),
}
RSS_GOAL_MIB = 200.0


def make_data(root: Path, total: int) -> None:
    """Half in four large files, half in small files of 16-256 KiB, in nested directories."""
    root.mkdir(parents=True)
    block = os.urandom(1 << 20)
    large = total // 2 // 4
    for i in range(4):
        with (root / f"segment-{i}.bin").open("wb") as out:
            for offset in range(0, large, len(block)):
                out.write(os.urandom(64) + block[: min(len(block), large - offset) - 64])
    left, n = total - 4 * large, 0
    while left > 0:
        size = max(64, min(left, 16384 * (1 + n % 16)))
        directory = root / "small" / f"d{n // 200:03}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{n:05}.dat").write_bytes(os.urandom(64) + block[: size - 64])
        left -= size
        n += 1


def same_start(*paths: Path) -> None:
    """Equal footing for the next timed step: every input file read once (page cache warm,
    as for a node whose data is in use), then no dirty pages left from earlier steps."""
    buffer = bytearray(1 << 20)
    for top in paths:
        for path in [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file()):
            try:
                with path.open("rb", buffering=0) as handle:
                    while handle.readinto(buffer):
                        pass
            except OSError:
                continue  # the node's lock or a log being rotated
    subprocess.run(["sync"], check=True, timeout=300)


class PeakRss:
    """The peak RSS of a process over a stretch of time: its high-water mark (VmHWM) reset at
    the start where the kernel allows it (`clear_refs` 5), else the largest VmRSS sampled."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self._pid = pid
        self._interval = interval
        self._stop = threading.Event()
        self._peak_kib = 0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _status(self, field_name: str) -> int:
        try:
            for line in Path(f"/proc/{self._pid}/status").read_text().splitlines():
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak_kib = max(self._peak_kib, self._status("VmRSS"), self._status("VmHWM"))
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRss:
        with suppress(OSError):  # an older kernel: sampling VmRSS is what is left
            Path(f"/proc/{self._pid}/clear_refs").write_text("5")
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mib(self) -> float:
        return round(self._peak_kib / 1024, 1)


@dataclass
class Bench:
    """The cluster under test: ensemble, one node process, its data, key and targets."""

    work: Path
    zk_servers: int
    data: Path = field(init=False)
    cluster: str = field(default_factory=lambda: f"bench{uuid.uuid4().hex[:8]}")
    ensemble: Ensemble | None = None
    node: Process | None = None
    servers: dict[str, devs3.DevS3] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data = self.work / "data"

    @property
    def key(self) -> Path:
        return self.work / "customer.key"

    compare_with: Path | None = None  # another checkout whose code `timed(..., other=True)` runs

    def managed(self, *args: str, cluster: str | None = None, timeout: float = 3600) -> str:
        assert self.ensemble is not None
        argv = [sys.executable, "-m", "cluster", "--zk", self.ensemble.connect_string]
        argv += ["--cluster", cluster or self.cluster, "--zk-auth", ZK_AUTH, *args]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        if done.returncode != 0:
            raise SystemExit(f"managed {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def timed(
        self, *args: str, cluster: str | None = None, other: bool = False
    ) -> dict[str, float]:
        """Run a `managed` command (from `compare_with`'s code if `other`); its wall time, its
        own CPU (process and children), the node's and S3 endpoints' CPU, the node's and its
        own peak RSS."""
        assert self.ensemble is not None and self.node is not None
        argv = [sys.executable, "-m", "cluster", "--zk", self.ensemble.connect_string]
        argv += ["--cluster", cluster or self.cluster, "--zk-auth", ZK_AUTH, *args]
        code = self.compare_with if other else None
        env = {**os.environ, "PYTHONPATH": str(code)} if code else None
        s3 = [s.pid for s in self.servers.values()]
        node_cpu, s3_cpu = cpu_seconds([self.node.pid]), cpu_seconds(s3)
        children = children_cpu()
        started = time.monotonic()
        with PeakRss(self.node.pid) as node:
            proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                cwd=code,
                env=env,
            )
            with PeakRss(proc.pid) as own:
                out, err = proc.communicate(timeout=3600)
        seconds = time.monotonic() - started
        cli_cpu = children_cpu() - children
        if proc.returncode != 0:
            raise SystemExit(f"managed {' '.join(args)} failed: {err.decode().strip()}")
        return {
            "seconds": seconds,
            "node_rss_mib": node.mib,
            "cli_rss_mib": own.mib,
            "cpu_s": cli_cpu,
            "node_cpu_s": cpu_seconds([self.node.pid]) - node_cpu,
            "s3_cpu_s": cpu_seconds(s3) - s3_cpu,
        }

    @contextmanager
    def running(self, total: int) -> Iterator[Bench]:
        try:
            self.ensemble = Ensemble(self.work / "zk", size=self.zk_servers)
            self.ensemble.start()
            self.ensemble.wait_ready(60)
            os.environ[CA_ENV] = str(self.ensemble.ca_file)  # the node and the CLI inherit it
            make_data(self.data, total)
            devs3.use_dev_credentials()  # the node and the CLI inherit these
            address = f"127.0.0.1:{free_port()}"
            self.managed("node", "join", "n1", "--datacenter", "dc1", "--api-address", address)
            argv = [sys.executable, "-m", "cluster", "--zk", self.ensemble.connect_string]
            argv += ["--cluster", self.cluster, "node", "run", "n1", "--data-dir", str(self.data)]
            env = {"MANAGED_ZK_AUTH": ZK_AUTH}
            self.node = start("n1", argv, self.work / "n1.log", env=env)
            status = ["cluster", "status", "--json"]
            if not wait_until(lambda: '"leader": "n1"' in self.managed(*status), 60, 0.5):
                raise SystemExit(f"node n1 did not lead:\n{self.node.log_tail(20)}")
            self.managed("backup", "configure", "--geography", "EU", "--target", self.file_url)
            self.managed("backup", "keygen", str(self.key))
            yield self
        finally:
            if self.node is not None:
                self.node.stop(timeout=20)
            for server in self.servers.values():
                server.stop()
            if self.ensemble is not None:
                self.ensemble.stop()

    @property
    def file_url(self) -> str:
        return f"file://{self.work}/target"

    def s3(self, region: str, bucket: str) -> str:
        if region not in self.servers:
            self.servers[region] = devs3.start_s3(region)
            devs3.create_bucket(self.servers[region], bucket)
        return self.servers[region].target_url(bucket, "b")

    def empty(self, region: str, bucket: str) -> None:
        server = self.servers[region]
        client = boto3.client("s3", region_name=region, endpoint_url=server.endpoint)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=item["Key"])

    def backup(self) -> dict[str, float]:
        same_start(self.data)
        return self.timed("backup", "run", "--wait")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes (0 for one that is gone)."""
    total = 0.0
    for pid in pids:
        with suppress(psutil.NoSuchProcess):
            total += sum(psutil.Process(pid).cpu_times()[:2])
    return total


def children_cpu() -> float:
    """User + system CPU seconds of this process's children that have been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu() -> float:
    """User + system CPU seconds of this process (all its threads) and its waited children."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime + children_cpu()


Side = Callable[[], "float | dict[str, float]"]


def compare(
    rounds: int,
    baseline: Side,
    ours: Callable[[], dict[str, float]],
    ratio: Callable[[float, float], float],
    rss_of: str = "node",
    old: Callable[[], dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Alternate the sides `rounds` times (the order rotates every round); per-round ratios and
    their median. Peak RSS is the node's (`rss_of="node"`) or the command's own (`"cli"`).
    Where both sides report `cpu_s`, the same ratio of CPU seconds too. `old`, when given, is
    the same command from another checkout, measured against the same baseline (key `old`)."""
    sides: list[Side] = [baseline, ours, *([old] if old else [])]
    results: list[list[dict[str, float]]] = [[] for _ in sides]
    for n in range(rounds):
        for k in range(len(sides)):
            index = (n + k) % len(sides)
            measured = sides[index]()
            results[index].append(measured if isinstance(measured, dict) else {"seconds": measured})
    out = summary(results[0], results[1], ratio, rss_of)
    if old:
        out["old"] = summary(results[0], results[2], ratio, rss_of)
    return out


def summary(
    base: list[dict[str, float]],
    runs: list[dict[str, float]],
    ratio: Callable[[float, float], float],
    rss_of: str,
) -> dict[str, Any]:
    """Per-round and median ratios of `runs` against `base` (wall, and CPU where measured)."""
    per_round = [
        round(ratio(b["seconds"], o["seconds"]), 3) for b, o in zip(base, runs, strict=True)
    ]
    rss = "node_rss_mib" if "node" in rss_of else "cli_rss_mib"
    out: dict[str, Any] = {
        "baseline_s": [round(b["seconds"], 2) for b in base],
        "ours_s": [round(r["seconds"], 2) for r in runs],
        "per_round": per_round,
        "median": statistics.median(per_round),
        "load_avg": round(os.getloadavg()[0], 1),
        "peak_rss_mib": max(r[rss] for r in runs),
        "node_cpu_s": round(statistics.median(r.get("node_cpu_s", 0.0) for r in runs), 2),
        "s3_cpu_s": round(statistics.median(r.get("s3_cpu_s", 0.0) for r in runs), 2),
    }
    if all("cpu_s" in r for r in (*base, *runs)):
        cpu_rounds = [
            round(ratio(b["cpu_s"], o["cpu_s"]), 3) for b, o in zip(base, runs, strict=True)
        ]
        out |= {
            "baseline_cpu_s": [round(b["cpu_s"], 2) for b in base],
            "ours_cpu_s": [round(r["cpu_s"], 2) for r in runs],
            "cpu_per_round": cpu_rounds,
            "cpu_median": statistics.median(cpu_rounds),
            "baseline_s3_cpu_s": round(statistics.median(b["s3_cpu_s"] for b in base), 2),
        }
    return out


def run(bench: Bench, total: int, rounds: int, only: str) -> dict[str, Any]:
    data, work = bench.data, bench.work
    out: dict[str, Any] = {"data_bytes": total, "cpus": os.cpu_count(), "rounds": rounds}
    tar_path = work / "plain.tar"

    def plain_tar() -> float:
        tar_path.unlink(missing_ok=True)
        same_start(data)
        started = time.monotonic()
        subprocess.run(["tar", "-C", str(data), "-cf", str(tar_path), "."], check=True)
        with tar_path.open("rb+") as handle:
            os.fsync(handle.fileno())
        return time.monotonic() - started

    def file_backup() -> dict[str, float]:
        shutil.rmtree(work / "target", ignore_errors=True)
        return bench.backup()

    if "a" in only:
        out["a_file"] = compare(rounds, plain_tar, file_backup, lambda b, o: b / o)
        shutil.rmtree(work / "target", ignore_errors=True)
    if not set(only) & set("bcdve"):
        return out
    if not tar_path.exists():
        plain_tar()
    primary = bench.s3("eu-west-1", "bench-primary")
    mirror = bench.s3("eu-central-1", "bench-mirror")
    client = boto3.client(
        "s3", region_name="eu-west-1", endpoint_url=bench.servers["eu-west-1"].endpoint
    )

    def configure(*mirrors: str) -> None:
        extra = [a for m in mirrors for a in ("--mirror", m)] or ["--no-mirrors"]
        bench.managed("backup", "configure", "--target", primary, *extra)

    def s3_backup() -> dict[str, float]:
        bench.empty("eu-west-1", "bench-primary")
        bench.empty("eu-central-1", "bench-mirror")
        return bench.backup()

    def upload() -> float:
        same_start(tar_path)
        started = time.monotonic()
        with tar_path.open("rb") as handle:
            client.upload_fileobj(handle, "bench-primary", "plain.tar")
        return time.monotonic() - started

    configure()
    if "b" in only:
        out["b_s3"] = compare(rounds, upload, s3_backup, lambda b, o: b / o)
    if "c" in only:

        def alone() -> float:
            configure()
            return s3_backup()["seconds"]

        def mirrored() -> dict[str, float]:
            configure(mirror)
            return s3_backup()

        out["c_mirror"] = compare(rounds, alone, mirrored, lambda a, m: m / a)
        configure()
    if set(only) & set("dve"):
        out.update(reading(bench, client, primary, tar_path, rounds, only))
    return out


def streamed(client: Any, key: str, into: Callable[[bytes], object]) -> None:
    """One streamed GET of `key` from the primary bucket, each 1 MiB chunk handed to `into`.
    (boto3's download_fileobj issues ranged GETs in parallel, which moto_server serves very
    slowly: it would flatter us.)"""
    body = client.get_object(Bucket="bench-primary", Key=key)["Body"]
    for chunk in body.iter_chunks(1 << 20):
        into(chunk)


def reading(
    bench: Bench, client: Any, primary: str, tar_path: Path, rounds: int, only: str
) -> dict[str, Any]:
    """(d) restore, (v) verify and (e) drill, each against its plain counterpart from the same
    endpoint, of one backup (and the same bytes as a plain tar)."""
    bench.empty("eu-west-1", "bench-primary")
    bench.backup()
    backup_id = json.loads(bench.managed("backup", "list", "--json"))[-1]["id"]
    stored = [k for k in bench_keys(client) if backup_id in k]
    with tar_path.open("rb") as handle:
        client.upload_fileobj(handle, "bench-primary", "plain.tar")
    destination = bench.work / "restored"
    out: dict[str, Any] = {}

    s3 = [s.pid for s in bench.servers.values()]

    def plain(step: Callable[[], None]) -> dict[str, float]:
        """Time `step` (this process and the children it waits for): wall, CPU, S3's CPU."""
        cpu, s3_cpu, started = own_cpu(), cpu_seconds(s3), time.monotonic()
        step()
        return {
            "seconds": time.monotonic() - started,
            "cpu_s": own_cpu() - cpu,
            "s3_cpu_s": cpu_seconds(s3) - s3_cpu,
        }

    def untar() -> None:
        untar = subprocess.Popen(["tar", "-x", "-C", str(destination)], stdin=subprocess.PIPE)
        assert untar.stdin is not None
        streamed(client, "plain.tar", untar.stdin.write)
        untar.stdin.close()
        if untar.wait() != 0:
            raise SystemExit("tar -x failed")

    def download_untar() -> dict[str, float]:
        shutil.rmtree(destination, ignore_errors=True)
        destination.mkdir()
        subprocess.run(["sync"], check=True, timeout=300)
        return plain(untar)

    def restore_once(other: bool = False) -> dict[str, float]:
        shutil.rmtree(destination, ignore_errors=True)
        subprocess.run(["sync"], check=True, timeout=300)
        return bench.timed(
            "backup", "restore", backup_id, "--key", str(bench.key), "--target", primary,
            f"--data-dir=n1={destination}", cluster=f"restored{uuid.uuid4().hex[:8]}",
            other=other,
        )  # fmt: skip

    def read_all() -> None:
        for key in stored:
            streamed(client, key, len)

    def verify_once(other: bool = False) -> dict[str, float]:
        return bench.timed("backup", "verify", backup_id, "--key", str(bench.key), other=other)

    def old_side(step: Callable[..., dict[str, float]]) -> Callable[[], dict[str, float]] | None:
        return (lambda: step(other=True)) if bench.compare_with else None

    if "d" in only:
        out["d_restore"] = compare(
            rounds, download_untar, restore_once, lambda b, o: b / o, "cli", old_side(restore_once)
        )
    if "v" in only:
        out["v_verify"] = compare(
            rounds, lambda: plain(read_all), verify_once, lambda b, o: b / o, "cli",
            old_side(verify_once),
        )  # fmt: skip
    if "e" in only:
        scratch = bench.work / "scratch"
        bench.managed(
            "backup", "drill", "configure", "--scratch", str(scratch),
            "--key-file", str(bench.key),
        )  # fmt: skip

        def drill_once() -> dict[str, float]:
            subprocess.run(["sync"], check=True, timeout=300)
            return bench.timed("backup", "drill", "run", "--wait")

        out["e_drill"] = compare(
            rounds, lambda: restore_once()["seconds"], drill_once, lambda r, d: d / r
        )
    shutil.rmtree(destination, ignore_errors=True)
    return out


def bench_keys(client: Any) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket="bench-primary")
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def report(results: dict[str, Any]) -> str:
    """Each ratio next to its goal, and the peak RSS next to its own."""
    names = {
        "a_file": "(a) run --wait to file:// vs tar          ",
        "b_s3": "(b) run --wait to S3 vs upload_fileobj     ",
        "c_mirror": "(c) primary + mirror vs primary alone      ",
        "d_restore": "(d) restore vs get_object | tar -x         ",
        "v_verify": "(v) verify --key vs streamed read          ",
        "e_drill": "(e) drill run --wait / restore             ",
    }
    lines = [f"{results['data_bytes'] / 2**20:.0f} MiB of node data, {results['rounds']} round(s)"]
    for key, label in names.items():
        if key not in results:
            continue
        value = results[key]["median"]
        if key in GOALS:
            op, goal = GOALS[key]
            met = value >= goal if op == ">=" else value <= goal
            verdict = f"goal {op} {goal}: {'met' if met else 'MISSED'}"
        else:
            verdict = "no goal (reported)"
        rss = results[key]["peak_rss_mib"]
        rss_note = f"{'met' if rss < RSS_GOAL_MIB else 'MISSED'}"
        lines.append(
            f"{label} ratio {value:6.3f}  {verdict:<22}  peak RSS {rss:6.1f} MiB "
            f"(goal < {RSS_GOAL_MIB:.0f}: {rss_note})"
        )
        lines += details(results[key])
        if "old" in results[key]:
            old = results[key]["old"]
            lines.append(f"    old code (--compare-with): ratio {old['median']:6.3f}")
            lines += details(old)
    return "\n".join(lines)


def details(r: dict[str, Any]) -> list[str]:
    """The medians behind a ratio: wall and CPU seconds of both sides."""
    lines = [
        f"    ours: median {statistics.median(r['ours_s']):.2f} s wall, node CPU "
        f"{r['node_cpu_s']:.2f} s, S3 endpoints' CPU {r['s3_cpu_s']:.2f} s; plain: "
        f"median {statistics.median(r['baseline_s']):.2f} s"
    ]
    if "cpu_median" in r:
        lines.append(
            f"    CPU ratio {r['cpu_median']:6.3f}: ours median "
            f"{statistics.median(r['ours_cpu_s']):.2f} s (command + children), plain "
            f"{statistics.median(r['baseline_cpu_s']):.2f} s; S3 endpoint's CPU "
            f"{r['s3_cpu_s']:.2f} s for ours, {r['baseline_s3_cpu_s']:.2f} s for plain"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="1GiB", help="node data, e.g. 1GiB, 32MiB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--only", default="abcdve", help="which comparisons: any of a, b, c, d, v, e"
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--zk-servers", type=int, default=3, choices=(1, 3, 5))
    parser.add_argument(
        "--compare-with",
        type=Path,
        default=None,
        help="another checkout (e.g. the base commit): its restore and verify alternate with ours",
    )
    parser.add_argument("--json", action="store_true", help="also print the raw results")
    options = parser.parse_args()
    try:
        total = parse_rate(options.size)  # the same units as --bandwidth-limit, without /s
    except ConfigError:
        parser.error(f"--size {options.size!r}: write e.g. 1GiB or 32MiB")
    work = Path(tempfile.mkdtemp(prefix="backup-bench-", dir=options.workdir))
    try:
        bench = Bench(work, options.zk_servers)
        bench.compare_with = options.compare_with and options.compare_with.resolve()
        with bench.running(total):
            results = run(bench, total, max(1, options.rounds), options.only)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(report(results))
    if options.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
