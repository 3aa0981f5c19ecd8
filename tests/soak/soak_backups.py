"""Whether a backup verifies and restores bit-exact: what `backups_sound` is judged on.

Used right after a backup ends (by the workload, while its S3 objects surely exist) and after
the soak (for every backup listed ok whose endpoints were not restarted since).
"""

from __future__ import annotations

import json
import random

from soak_stack import PLANTED, SoakStack


def verify_and_restore(stack: SoakStack, rid: str) -> str | None:
    """None when backup `rid` verifies with the key and restores bit-exact, else why not."""
    done = stack.cli("backup", "verify", rid, "--key", str(stack.key_file), timeout=120)
    if done.returncode != 0:
        return f"verify: {done.stderr.strip()}"
    shown = stack.cli("backup", "show", rid, "--json", timeout=60)
    if shown.returncode != 0:
        return f"show: {shown.stderr.strip()}"
    record = json.loads(shown.stdout)
    nodes = sorted({p["node"] for p in record["parts"] if p.get("node")})
    nodes = [n for n in nodes if n != "zookeeper"]
    parent = stack.base / "restored"
    parent.mkdir(parents=True, exist_ok=True)
    number = sum(1 for _ in parent.iterdir())
    into = parent / f"{number}-{rid}"
    into.mkdir()
    dirs = [f"--data-dir={n}={into / n}" for n in nodes]
    restored = stack.cli(
        "--cluster",
        f"soak-restored-{number}",
        "backup",
        "restore",
        rid,
        "--key",
        str(stack.key_file),
        "--target",
        str(record["targets"][0]),
        *dirs,
        timeout=180,
    )
    if restored.returncode != 0:
        return f"restore: {restored.stderr.strip()}"
    for node in nodes:
        planted = into / node / PLANTED
        expected = random.Random(f"{stack.seed}-{node}").randbytes(256 * 1024)
        if planted.exists() and planted.read_bytes() != expected:
            return f"restore: {node}/{PLANTED} differs from what was written"
        if not planted.exists() and node in {f"n{i}" for i in range(1, 6)}:
            return f"restore: {node}/{PLANTED} missing"
    return None
