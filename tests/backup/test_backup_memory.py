"""A 2 GiB part is backed up with bounded memory (peak RSS of the writing process < 200 MiB)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, os, sys, time
from pathlib import Path
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from backup.engine import BackupContext, ResidencyPolicy, open_targets, write_part

class RepeatedBlocks:
    '''2 GiB of data made of one random 1 MiB block, generated as it is read.'''
    def __init__(self, total, block):
        self.left, self.block, self.pos = total, block, 0
    def read(self, size=-1):
        size = self.left if size < 0 else min(size, self.left)
        out = bytearray()
        while len(out) < size:
            take = min(size - len(out), len(self.block) - self.pos)
            out += self.block[self.pos:self.pos + take]
            self.pos = (self.pos + take) % len(self.block)
        self.left -= size
        return bytes(out)

root = Path(sys.argv[1])
total = int(sys.argv[2])
targets = open_targets(f"file://{root}", [], ResidencyPolicy("EU"))
ctx = BackupContext("20250101T020000Z-0a1b2c3d", X25519PrivateKey.generate().public_key())
started = time.monotonic()
record = write_part(RepeatedBlocks(total, os.urandom(1 << 20)), ctx=ctx, part="big", node="n",
                    targets=targets)
elapsed = time.monotonic() - started
print(json.dumps({
    # VmHWM, not ru_maxrss: Linux carries a parent's peak over fork+exec into ru_maxrss.
    "peak_rss_mib": next(int(line.split()[1]) / 1024 for line in
                         open("/proc/self/status") if line.startswith("VmHWM:")),
    "size_plain": record.size_plain, "frames": record.frames, "seconds": elapsed,
    "stored": (root / "data" / ctx.backup_id / "big.part").stat().st_size,
    "size_cipher": record.size_cipher,
}))
"""

TWO_GIB = 2 * 1024**3


def test_two_gib_part_peak_rss_under_200_mib(tmp_path: Path) -> None:
    target = tmp_path / "target"
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(target), str(TWO_GIB)],
            capture_output=True,
            text=True,
            timeout=150,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(done.stdout)
        assert result["size_plain"] == TWO_GIB
        assert result["frames"] == 2048
        assert result["stored"] == result["size_cipher"]
        assert result["peak_rss_mib"] < 200, result
    finally:
        subprocess.run(["rm", "-rf", str(target)], check=False, timeout=60)
