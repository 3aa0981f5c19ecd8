"""Backup library benchmark: the engine against plain copies of the same bytes.

1 GiB of node data (large and small files), measured in one run, each comparison repeated
`--rounds` times with the two sides alternating who goes first:
  (a) backup to file://            vs  `tar -cf` of the same tree to the same disk (+ fsync)
  (b) backup to a moto S3 endpoint  vs  boto3 upload_fileobj of that tar to the same endpoint
  (c) backup to S3 primary + mirror vs  backup to the S3 primary alone
  (d) restore from S3               vs  a streamed boto3 get_object of the tar to a file
Same cache conditions for both sides: before every timed run the data is read once (so both
read it from the page cache) and `sync` empties the dirty pages of earlier steps (so nobody
pays for another's write-back). The S3 baseline uses the engine's own client settings.
Each engine operation runs in its own child process so its peak RSS is its own.
Run: .venv/bin/python benchmarks/backup.py [--gib 1.0] [--rounds 3] [--only abcd] [--workdir D]
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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backup import devs3  # noqa: E402

BACKUP_ID = "20250101T020000Z-0a1b2c3d"


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
        size = min(left, 16384 * (1 + n % 16))
        directory = root / "small" / f"d{n // 200:03}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{n:05}.dat").write_bytes(os.urandom(64) + block[: size - 64])
        left -= size
        n += 1


def same_start(*paths: Path) -> None:
    """Equal footing for the next timed run: every input file read once (page cache warm,
    as for a node whose data is in use), then no dirty pages left from earlier steps."""
    buffer = bytearray(1 << 20)
    for top in paths:
        for path in [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file()):
            with path.open("rb", buffering=0) as handle:
                while handle.readinto(buffer):
                    pass
    subprocess.run(["sync"], check=True, timeout=300)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process used so far (to show where an S3 run's time goes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fsync_file(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


def child(op: str, args: dict[str, Any]) -> None:
    """One engine operation; prints {"seconds", "cpu_seconds", "peak_rss_mib"}."""
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from backup.engine import (
        BackupContext,
        ResidencyPolicy,
        commit_manifest,
        open_targets,
        restore_part_directory,
        write_directory_part,
    )
    from backup.keys import read_private_key, read_public_key

    targets = open_targets(args["primary"], args.get("mirrors", []), ResidencyPolicy("EU"))
    started, cpu = time.monotonic(), time.process_time()
    if op == "backup":
        ctx = BackupContext(BACKUP_ID, read_public_key(Path(args["public"])))
        record = write_directory_part(
            Path(args["data"]), ctx=ctx, part="node-a", node="node-a", targets=targets
        )
        commit_manifest(
            ctx=ctx,
            cluster="bench",
            epoch=1,
            created=datetime.now(UTC),
            parts=[record],
            targets=targets,
            signing_key=Ed25519PrivateKey.generate(),
        )
    else:
        restore_part_directory(
            BACKUP_ID,
            "node-a",
            Path(args["destination"]),
            source=targets.primary,
            private_key=read_private_key(Path(args["private"])),
        )
    result = {
        "seconds": time.monotonic() - started,
        "cpu_seconds": time.process_time() - cpu,
        "peak_rss_mib": peak_rss_mib(),
    }
    print(json.dumps(result))


def peak_rss_mib() -> float:
    """This process's own peak RSS (VmHWM). ru_maxrss would not do: Linux carries the parent's
    peak over fork+exec, so a child of a big parent would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(op: str, **args: Any) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", op, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{op} failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def empty_bucket(server: devs3.DevS3, bucket: str) -> None:
    client = boto3.client("s3", region_name=server.region, endpoint_url=server.endpoint)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])


def compare(
    rounds: int,
    baseline: Callable[[], float],
    ours: Callable[[], dict[str, float]],
    ratio: Callable[[float, float], float],
) -> dict[str, Any]:
    """Alternate the two sides `rounds` times; medians and per-round ratios."""
    base_s: list[float] = []
    runs: list[dict[str, float]] = []
    for n in range(rounds):
        if n % 2 == 0:
            base_s.append(baseline())
            runs.append(ours())
        else:
            runs.append(ours())
            base_s.append(baseline())
    ours_s = [r["seconds"] for r in runs]
    per_round = [round(ratio(b, o), 3) for b, o in zip(base_s, ours_s, strict=True)]
    return {
        "baseline_s": [round(s, 2) for s in base_s],
        "ours_s": [round(s, 2) for s in ours_s],
        "ours_cpu_s": [round(r["cpu_seconds"], 2) for r in runs],
        **(
            {"moto_cpu_s": [round(r["moto_cpu_seconds"], 2) for r in runs]}
            if all("moto_cpu_seconds" in r for r in runs)
            else {}
        ),
        "load_avg": round(os.getloadavg()[0], 1),
        "per_round": per_round,
        "median": statistics.median(per_round),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="abcd", help="which comparisons: any of a, b, c, d")
    parser.add_argument("--workdir", type=Path, default=None)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="backup-bench-", dir=options.workdir))
    servers: list[devs3.DevS3] = []
    try:
        results = run(work, int(options.gib * 1024**3), options.rounds, options.only, servers)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))


def run(
    work: Path, total: int, rounds: int, only: str, servers: list[devs3.DevS3]
) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from backup.keys import write_key_pair
    from backup.targets import parse_target_url
    from backup.targets.location import S3Location
    from backup.targets.s3 import make_s3_client

    data = work / "data"
    make_data(data, total)
    write_key_pair(X25519PrivateKey.generate(), work / "key.pem", work / "key.pub")
    keys = {"public": str(work / "key.pub"), "private": str(work / "key.pem")}
    out: dict[str, Any] = {"data_bytes": total, "cpus": os.cpu_count(), "rounds": rounds}
    tar_path = work / "plain.tar"

    def plain_tar() -> float:
        tar_path.unlink(missing_ok=True)
        same_start(data)
        started = time.monotonic()
        subprocess.run(["tar", "-C", str(data), "-cf", str(tar_path), "."], check=True)
        fsync_file(tar_path)
        return time.monotonic() - started

    def backup(primary: str, mirrors: list[str] | None = None) -> dict[str, float]:
        same_start(data)
        result = run_child("backup", primary=primary, mirrors=mirrors or [], data=str(data), **keys)
        return result

    def file_backup() -> dict[str, float]:
        shutil.rmtree(work / "target", ignore_errors=True)
        return backup(f"file://{work}/target")

    if "a" in only:
        out["a_file"] = compare(rounds, plain_tar, file_backup, lambda b, o: b / o)
        shutil.rmtree(work / "target", ignore_errors=True)
    if not set(only) & set("bcd"):
        return out
    if not tar_path.exists():
        plain_tar()

    eu, fr = devs3.start_s3("eu-west-1"), devs3.start_s3("eu-central-1")
    servers += [eu, fr]
    devs3.create_bucket(eu, "bench-primary")
    devs3.create_bucket(fr, "bench-mirror")
    primary = eu.target_url("bench-primary", "b")
    mirror = fr.target_url("bench-mirror", "b")
    location = parse_target_url(primary)
    assert isinstance(location, S3Location)
    # Same client settings as the engine (region, endpoint, payload signing, checksums).
    client = make_s3_client(location)

    def upload() -> float:
        same_start(tar_path)
        started = time.monotonic()
        with tar_path.open("rb") as handle:
            client.upload_fileobj(handle, "bench-primary", "plain.tar")
        return time.monotonic() - started

    def s3_backup(mirrors: list[str]) -> dict[str, float]:
        empty_bucket(eu, "bench-primary")
        empty_bucket(fr, "bench-mirror")
        before = cpu_seconds(eu.pid) + cpu_seconds(fr.pid)
        result = backup(primary, mirrors)
        result["moto_cpu_seconds"] = cpu_seconds(eu.pid) + cpu_seconds(fr.pid) - before
        return result

    if "b" in only:
        out["b_s3"] = compare(rounds, upload, lambda: s3_backup([]), lambda b, o: b / o)
    if "c" in only:
        out["c_mirror"] = compare(
            rounds,
            lambda: s3_backup([])["seconds"],
            lambda: s3_backup([mirror]),
            lambda alone, mirrored: mirrored / alone,
        )
        out["c_mirror"]["goal"] = "slowdown = with mirror / alone <= 1.3"
    if "d" in only:
        out["d_restore"] = restore(work, client, keys, primary, lambda: s3_backup([]))
    out["peak_rss_mib_max"] = max(
        v["peak_rss_mib"] for v in out.values() if isinstance(v, dict) and "peak_rss_mib" in v
    )
    return out


def restore(
    work: Path,
    client: Any,
    keys: dict[str, str],
    primary: str,
    write_backup: Callable[[], dict[str, float]],
) -> dict[str, Any]:
    """Restore once against one streamed GET. boto3's download_fileobj issues ranged GETs in
    parallel, which moto_server serves very slowly (140 s for 1 GiB here): it would flatter us."""
    write_backup()  # empties the bucket first
    with (work / "plain.tar").open("rb") as handle:
        client.upload_fileobj(handle, "bench-primary", "plain.tar")
    download_to = work / "download.tar"
    subprocess.run(["sync"], check=True, timeout=300)
    started = time.monotonic()
    with download_to.open("wb") as handle:
        body = client.get_object(Bucket="bench-primary", Key="plain.tar")["Body"]
        for chunk in body.iter_chunks(1 << 20):
            handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    download = time.monotonic() - started
    download_to.unlink()
    subprocess.run(["sync"], check=True, timeout=300)
    restored = run_child("restore", primary=primary, destination=str(work / "restored"), **keys)
    shutil.rmtree(work / "restored")
    return {
        "get_object_s": round(download, 2),
        "restore_s": round(restored["seconds"], 2),
        "ratio": round(download / restored["seconds"], 3),
        "peak_rss_mib": restored["peak_rss_mib"],
    }


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], json.loads(sys.argv[3]))
    else:
        main()
