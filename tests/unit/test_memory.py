"""The node's large buffers go back to the system when freed (cluster.memory)."""

from __future__ import annotations

import subprocess
import sys

CHILD = r"""
import sys, threading
from cluster.memory import return_large_buffers_to_os

def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

assert return_large_buffers_to_os(), "mallopt refused"
before = rss_kib()
held = []
def churn():
    # What a backup run does on its writer threads: large buffers filled, then freed.
    for _ in range(5):
        block = bytearray(8 << 20)
        block[::4096] = b"x" * len(block[::4096])
        held.append(rss_kib())
        del block
threads = [threading.Thread(target=churn) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(max(held) - before, rss_kib() - before)
"""


def test_large_buffers_are_unmapped_when_freed() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    peak, after = (int(v) for v in done.stdout.split())
    assert peak >= 8 * 1024 - 64  # the buffers were really touched
    assert after < 2 * 1024, f"{after} KiB still held after the buffers were freed"
