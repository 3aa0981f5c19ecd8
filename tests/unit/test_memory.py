"""cluster.memory: a node gives large buffers back to the system once they are freed
(measured in child processes, on glibc)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CHILD = r"""
import json, sys, threading
from cluster.memory import return_large_buffers_to_os

def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

fixed = return_large_buffers_to_os() if sys.argv[1] == "fixed" else False
before, peaks = rss_kib(), []
def churn():
    # What a backup run's S3 writers do on their threads: large buffers filled, then freed.
    for _ in range(5):
        block = bytearray(8 << 20)
        peaks.append(rss_kib())
        del block
threads = [threading.Thread(target=churn) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"fixed": fixed, "peak_kib": max(peaks) - before, "held_kib": rss_kib() - before}))
"""


def run_child(mode: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, int] = json.loads(done.stdout)
    return result


def test_large_buffers_are_unmapped_when_freed() -> None:
    fixed = run_child("fixed")
    if not fixed["fixed"]:
        pytest.skip("not glibc: mallopt is not available")
    assert fixed["peak_kib"] >= 8 * 1024 - 64, fixed  # the buffers were really there
    assert fixed["held_kib"] < 2 * 1024, f"still held after the buffers were freed: {fixed}"


def test_glibc_defaults_keep_them() -> None:
    """The control: what the fix is for (if a future glibc no longer keeps them, it can go)."""
    default = run_child("default")
    assert default["held_kib"] > 16 * 1024, default
